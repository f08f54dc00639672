"""torch.library registration of the C++ ops: schemas, fake kernels, autograd, torch.compile."""

import threading

import pytest
import torch
from fastot_testing import CPU_FUSED, make

import fastot
from fastot._extension import STATUS
from fastot.ops import _backend

ops = torch.ops.fastot


def _samples(requires_grad: bool):
    def m(*shape):
        return make(shape, torch.float32, requires_grad=requires_grad)

    cost = m(5).detach().abs().requires_grad_(requires_grad)
    return [
        (ops.quadratic_cost, (m(4, 7), m(4, 7), 0.3)),
        (ops._quadratic_cost_backward, (make((4,), torch.float32), m(4, 7), m(4, 7), 0.3)),
        (ops.psi_star, (m(3, 5), "softplus", 0.7)),
        (ops.psi_star, (m(6), "kl", 1.0)),
        (ops.semi_dual_loss, (cost, m(5), m(3), "kl", "chi2", 1.0)),
        (ops.r1_penalty, (m(4, 6), 0.2)),
        (ops._r1_penalty_backward, (make((), torch.float32), m(4, 6), 0.2)),
        (ops.weak_quadratic_cost, (m(3, 5), m(3, 4, 5), 0.5, 0.3)),
        (ops.energy_kernel_cost, (m(3, 5), m(3, 4, 5), 0.5, 0.3)),
    ]


@pytest.mark.parametrize("requires_grad", [False, True])
def test_opcheck(requires_grad):
    for op, args in _samples(requires_grad):
        torch.library.opcheck(op, args)


def test_backward_ops_opcheck_without_grad():
    x, y = make((3, 5), torch.float32), make((3, 4, 5), torch.float32)
    g = make((3,), torch.float32)
    torch.library.opcheck(ops._weak_quadratic_cost_backward, (g, x, y, 0.5, 0.3))
    _, norms = ops.energy_kernel_cost(x, y, 0.5, 0.3)
    torch.library.opcheck(ops._energy_kernel_cost_backward, (g, x, y, norms, 0.5, 0.3))


CALLS = {
    "quadratic_cost": lambda x, y: fastot.quadratic_cost(x, y, 0.5, backend=CPU_FUSED),
    "psi_star": lambda x, y: fastot.psi_star(x, "softplus", 0.5, backend=CPU_FUSED).sum(1),
    "semi_dual_loss": lambda x, y: fastot.semi_dual_loss(
        x.sum(1).abs(), y.sum(1), x[:, 0], "kl", "kl", backend=CPU_FUSED
    ),
    "r1_penalty": lambda x, y: fastot.r1_penalty(x - y, 0.2, backend=CPU_FUSED),
    "weak_quadratic_cost": lambda x, y: fastot.weak_quadratic_cost(
        x, torch.stack([y, 2 * y], 1), 0.5, backend=CPU_FUSED
    ),
    "energy_kernel_cost": lambda x, y: fastot.energy_kernel_cost(
        x, torch.stack([y, 2 * y], 1), 0.5, backend=CPU_FUSED
    ),
}


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

FUSED_OPS = [
    "quadratic_cost",
    "psi_star",
    "semi_dual_loss",
    "r1_penalty",
    "weak_quadratic_cost",
    "energy_kernel_cost",
]


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
