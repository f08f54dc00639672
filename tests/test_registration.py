"""torch.library registration of every compiled op family: schemas, fake kernels, autograd, torch.compile."""

import subprocess
import textwrap
import threading

import pytest
import torch
from fastot_testing import CPU_FUSED, FUSED, OP_NAMES, backends, make, per_op, run_python

import fastot
from fastot._extension import STATUS
from fastot.ops import _backend
from fastot.ops._library import op_names
from fastot.ops.quadratic_cost import reference

ops = torch.ops.fastot


def _samples(backend, requires_grad: bool):
    def m(*shape, grad=requires_grad, positive=False):
        t = make(shape, torch.float32)
        return backend.to(t.abs() if positive else t).requires_grad_(grad)

    def op(name):
        return backend.op(name)

    return [case for cases in per_op("opcheck_cases").values() for case in cases(m, op)]


@pytest.mark.parametrize("backend", backends(*FUSED), indirect=True)
@pytest.mark.parametrize("requires_grad", [False, True])
def test_opcheck(backend, requires_grad):
    interpreted = backend.name == "triton" and backend.device == "cpu"
    # Fake-tensor and AOT checks trace the implementation, which under the Triton interpreter
    # launches the kernel on FakeTensors (see test_compile_fullgraph_interpreted): there the
    # schema and the autograd registration are checked; everything on CUDA.
    utils = ("test_schema", "test_autograd_registration") if interpreted else None
    for op, args in _samples(backend, requires_grad):
        torch.library.opcheck(op, args, **({"test_utils": utils} if utils else {}))


@pytest.mark.parametrize("backend", backends("cpp"), indirect=True)
def test_opcheck_of_the_cpu_only_helpers(backend):
    # R1's one-pass CPU path: called below autograd on tensors that need no gradient.
    g = make((4, 6), torch.float32)
    torch.library.opcheck(ops._r1_penalty_and_grad.default, (g, 0.2))
    torch.library.opcheck(ops._r1_penalty_grad_for_.default, (torch.zeros(4, 6), torch.tensor(2.0), g, 0.2))


@pytest.mark.skipif(not (STATUS.cpp and STATUS.triton), reason="needs both the C++ and the Triton ops")
@pytest.mark.parametrize("name", OP_NAMES)
def test_triton_schema_mirrors_cpp_op(name):
    def args_and_returns(op) -> str:
        return str(op.default._schema).split("(", 1)[1]

    assert args_and_returns(getattr(ops, name + "_triton")) == args_and_returns(getattr(ops, name))


CALLS = {name: (lambda x, y, f=f: f(x, y, CPU_FUSED)) for name, f in per_op("compile_call").items()}


@pytest.mark.parametrize("name", CALLS)
def test_torch_compile_fullgraph(name):
    fn = CALLS[name]
    torch._dynamo.reset()
    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    x = make((3, 6), torch.float32, requires_grad=True)
    y = make((3, 6), torch.float32, requires_grad=True)
    out = compiled(x, y)
    expected = fn(x, y)
    torch.testing.assert_close(out, expected)
    g1 = torch.autograd.grad(out.sum(), (x, y), allow_unused=True, materialize_grads=True)
    g2 = torch.autograd.grad(expected.sum(), (x, y), allow_unused=True, materialize_grads=True)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b)


def test_torch_compile_inductor_uotm_loss():
    # The default backend too: a UOTM potential loss (cost + semi-dual) in one graph.
    torch._dynamo.reset()

    def loss(x, y, vf, vr):
        cost = fastot.quadratic_cost(x, y, 0.1, backend=CPU_FUSED)
        return fastot.semi_dual_loss(cost, vf, vr, "softplus", "softplus", backend=CPU_FUSED)

    x, y = make((4, 10), torch.float32), make((4, 10), torch.float32, requires_grad=True)
    vf, vr = make((4,), torch.float32, requires_grad=True), make((4,), torch.float32, requires_grad=True)
    out = torch.compile(loss, fullgraph=True)(x, y, vf, vr)
    torch.testing.assert_close(out, loss(x, y, vf, vr))


# --- the default backend inside torch.compile: no backend= argument, as users call the ops ---

FUSED_OPS = op_names()


def _every_op(x, y):
    ys = torch.stack([y, 2 * y], 1)
    cost = fastot.quadratic_cost(x, y, scale=1e-3)
    return torch.stack(
        [
            cost.sum(),
            fastot.psi_star(x, "softplus").sum(),
            fastot.semi_dual_loss(cost, x[:, 0], y[:, 1], "kl", "chi2"),
            fastot.r1_penalty(x - y, 0.2),
            fastot.weak_quadratic_cost(x, ys, 0.5).sum(),
            fastot.energy_kernel_cost(x, ys, 0.5).sum(),
        ]
    )


def _every_op_in_eager_block(x, y):
    with fastot.use_backend("eager"):
        return _every_op(x, y)


class _RecordingBackend:
    """aot_eager (forward and backward traced), recording the ops each Dynamo graph calls."""

    def __init__(self):
        from torch._dynamo.backends.registry import lookup_backend

        self.graphs: list[set[str]] = []
        self._aot_eager = lookup_backend("aot_eager")

    def __call__(self, gm, example_inputs):
        # Subgraphs (autograd.Function bodies) are submodules of the graph module.
        self.graphs.append(
            {
                str(node.target)
                for module in gm.modules()
                if isinstance(module, torch.fx.GraphModule)
                for node in module.graph.nodes
                if node.op == "call_function"
            }
        )
        return self._aot_eager(gm, example_inputs)

    def fastot_ops(self, i: int) -> set[str]:
        return {t for t in self.graphs[i] if t.startswith("fastot.")}


def _check_against_uncompiled(compiled, fn):
    x = make((3, 6), torch.float32, requires_grad=True)
    y = make((3, 6), torch.float32, requires_grad=True)
    out, expected = compiled(x, y), fn(x, y)
    torch.testing.assert_close(out, expected)
    # Each op's own output gets its own random cotangent, so every op's backward is checked.
    g = torch.randn(len(FUSED_OPS))
    got, want = torch.autograd.grad(out, (x, y), g), torch.autograd.grad(expected, (x, y), g)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)


def test_default_backend_compiles_fullgraph_and_follows_use_backend():
    assert STATUS.cpp, STATUS.why.get("cpp")
    torch._dynamo.reset()
    rec = _RecordingBackend()
    compiled = torch.compile(_every_op, fullgraph=True, backend=rec)
    _check_against_uncompiled(compiled, _every_op)
    assert len(rec.graphs) == 1
    # auto picks the C++ kernels on CPU tensors
    assert rec.fastot_ops(0) == {f"fastot.{name}" for name in FUSED_OPS}

    # The same compiled function under use_backend("eager"): a recompile to the reference ops.
    with fastot.use_backend("eager"):
        _check_against_uncompiled(compiled, _every_op)
    assert len(rec.graphs) == 2
    assert rec.fastot_ops(1) == set()

    # Back outside the block, the cached fused graph runs again (no third compile).
    _check_against_uncompiled(compiled, _every_op)
    assert len(rec.graphs) == 2


def test_use_backend_block_inside_a_compiled_function():
    torch._dynamo.reset()
    rec = _RecordingBackend()
    compiled = torch.compile(_every_op_in_eager_block, fullgraph=True, backend=rec)
    _check_against_uncompiled(compiled, _every_op_in_eager_block)
    assert len(rec.graphs) == 1 and rec.fastot_ops(0) == set()
    # The traced block's exit was replayed: outside it, the default selection is back.
    assert _backend._selection.name is None
    assert _backend.resolve(torch.device("cpu"), None) == "cpp"


def test_use_backend_is_per_thread_in_compiled_code():
    torch._dynamo.reset()
    rec = _RecordingBackend()
    compiled = torch.compile(_every_op, fullgraph=True, backend=rec)
    x, y = make((3, 6), torch.float32), make((3, 6), torch.float32)
    with fastot.use_backend("eager"):
        compiled(x, y)
        # Another thread does not see this thread's block: it gets the fused graph.
        worker = threading.Thread(target=compiled, args=(x, y))
        worker.start()
        worker.join()
    assert len(rec.graphs) == 2
    assert rec.fastot_ops(0) == set()
    assert rec.fastot_ops(1) == {f"fastot.{name}" for name in FUSED_OPS}


# --- Triton ops under torch.compile -----------------------------------------------------------


@pytest.mark.parametrize("backend", backends("triton-compiled"), indirect=True)
def test_compile_fullgraph_triton(backend):
    x, y = backend.leaf((8, 300), torch.float32), backend.leaf((8, 300), torch.float32)

    @torch.compile(fullgraph=True)
    def f(a, b):
        return (ops.quadratic_cost_triton(a, b, 0.5) * 2.0).sum()

    out = f(x, y)
    torch.testing.assert_close(out, 2.0 * reference(x.detach(), y.detach(), 0.5).sum())
    gx, gy = torch.autograd.grad(out, (x, y))
    torch.testing.assert_close(gx, 2.0 * (x - y).detach())
    torch.testing.assert_close(gy, -gx)


@pytest.mark.parametrize("backend", backends("triton-interpreted"), indirect=True)
def test_compile_fullgraph_interpreted(backend):
    pytest.skip(
        "torch.compile cannot run Triton kernels under TRITON_INTERPRET=1: torch.library.wrap_triton "
        "returns the bare InterpretedFunction instead of a traceable kernel wrapper, so tracing the "
        "triton_op with FakeTensors launches the interpreter on them ('Cannot access data pointer "
        "of Tensor'). test_compile_fullgraph_traces_triton_kernels checks the tracing without the "
        "interpreter; test_compile_fullgraph_triton runs it."
    )


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    return run_python(["-c", textwrap.dedent(code)], env={"TRITON_INTERPRET": None, **env}, timeout=600)


@pytest.mark.triton
@pytest.mark.skipif(not STATUS.triton, reason="Triton is unavailable")
def test_compile_fullgraph_traces_triton_kernels():
    # Without the interpreter the kernels are real JIT functions: torch.compile must see the
    # kernel launches inside the op (triton_kernel_wrapper nodes). The compiled graph is
    # captured, not run, so no GPU is needed.
    res = _run(
        """
        import torch, fastot
        from torch._dynamo.backends.common import aot_autograd

        class Captured(Exception):
            pass

        graphs = []

        def capture(gm, example_inputs):
            graphs.append(gm.code)

            def run(*args):
                raise Captured

            return run

        @torch.compile(fullgraph=True, backend=aot_autograd(fw_compiler=capture))
        def f(x, y):
            return torch.ops.fastot.quadratic_cost_triton(x, y, 0.5) * 2.0

        try:
            f(torch.randn(4, 7, requires_grad=True), torch.randn(4, 7))
        except Captured:
            pass
        assert len(graphs) == 1 and "triton_kernel_wrapper_functional" in graphs[0], graphs
        print("ok")
        """
    )
    assert res.returncode == 0, res.stderr
    assert "ok" in res.stdout
