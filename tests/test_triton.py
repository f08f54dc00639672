"""Triton kernels (fastot.kernels) against the eager reference.

Without a GPU the kernels run on CPU tensors through the Triton interpreter; with one,
the ``cuda`` cases run the compiled kernels. Every op is checked forward and backward
through the public API (``backend="triton"``) against a float64 evaluation of
``fastot.ops._reference``.
"""

import os

import torch

# triton.jit reads this when the kernels are defined, i.e. when fastot is imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import subprocess
import textwrap

import pytest

pytest.importorskip("triton", reason="Triton is not installed; fastot uses its other backends")

from fastot_testing import TOL, assert_close, make, run_python

import fastot
from fastot._extension import STATUS
from fastot.ops import _reference

pytestmark = pytest.mark.triton

INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"
HAS_CUDA = torch.cuda.is_available()
ops = torch.ops.fastot

NEEDS_INTERPRETER = pytest.mark.skipif(not INTERPRET, reason="CPU tensors need TRITON_INTERPRET=1")
DEVICES = [
    pytest.param("cpu", marks=NEEDS_INTERPRETER),
    pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device")]),
]
DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.float64]
# Odd d, d = 1 and B = 1; 12288 = 3 * 64 * 64 (an image row) is long enough to be split
# across programs when B is small.
ROWS = [(1, 1), (3, 7), (2, 33), (4, 1000), (1, 3 * 64 * 64)]


def test_kernels_loaded():
    # Triton imports, so the kernels must have loaded: a failure here is a bug, not a skip.
    assert STATUS.triton, STATUS.why.get("triton")
    assert "triton" in fastot.available("cuda" if HAS_CUDA else "cpu")


def _grads(out: torch.Tensor, inputs, g: torch.Tensor):
    return torch.autograd.grad(out, inputs, g)


def _check_grads(actual, expected, dtype):
    for a, e in zip(actual, expected, strict=True):
        assert a.shape == e.shape and a.dtype == dtype
        assert_close(a, e, dtype, scale=max(1e-3, e.abs().max().item()))


def _to(t: torch.Tensor, device: str) -> torch.Tensor:
    """``t`` on ``device`` with the same strides (``.to`` would make a strided view contiguous)."""
    if device != "cpu":
        t = torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=device).copy_(t)
    return t


def _inputs(device, dtype, contiguous, *shapes, scale: float = 1.0):
    """Leaf tensors requiring grad; non-contiguous ones are strided views (see ``make``)."""
    return [_to(make(s, dtype, contiguous, scale=scale), device).requires_grad_() for s in shapes]


def _double(*ts):
    return [t.detach().cpu().double().requires_grad_() for t in ts]


# --- quadratic_cost -------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROWS)
def test_quadratic_cost(device, dtype, rows):
    x, y = _inputs(device, dtype, True, rows, rows)
    out = fastot.quadratic_cost(x, y, 0.7, backend="triton")
    xd, yd = _double(x, y)
    exp = _reference.quadratic_cost(xd, yd, 0.7)
    assert out.shape == (rows[0],) and out.dtype == dtype
    assert_close(out.cpu(), exp, dtype, scale=exp.abs().max().item())
    g = torch.randn(rows[0], dtype=torch.float64)
    _check_grads([t.cpu() for t in _grads(out, (x, y), g.to(device, dtype))], _grads(exp, (xd, yd), g), dtype)


@pytest.mark.parametrize("device", DEVICES)
def test_quadratic_cost_non_contiguous_feature_dims(device):
    # [B, 3, 4, 5] views flattened by the public API; one gradient requested at a time.
    x, y = _inputs(device, torch.float32, False, (3, 3, 4, 5), (3, 3, 4, 5))
    out = fastot.quadratic_cost(x, y, 0.3, backend="triton")
    xd, yd = _double(x, y)
    exp = _reference.quadratic_cost(xd.flatten(1), yd.flatten(1), 0.3)
    assert_close(out.cpu(), exp, torch.float32, scale=exp.abs().max().item())
    g = torch.randn(3, dtype=torch.float64)
    (gy,) = _grads(out, (y,), g.to(device, torch.float32))
    (ey,) = _grads(exp, (yd,), g)
    _check_grads([gy.cpu()], [ey], torch.float32)


# --- psi_star and semi_dual_loss ------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", _reference.PSI_KINDS)
def test_psi_star(device, dtype, kind):
    # A [3, 5, 7] non-contiguous tensor: psi_star is elementwise over any shape.
    (t,) = _inputs(device, dtype, False, (3, 5, 7), scale=3.0)
    out = fastot.psi_star(t, kind, 0.8, backend="triton")
    assert out.shape == t.shape and out.dtype == dtype
    (td,) = _double(t)
    exp = _reference.psi_star(td, kind, 0.8)
    assert_close(out.cpu(), exp, dtype, scale=max(1.0, exp.abs().max().item()))
    g = torch.randn(t.shape, dtype=torch.float64)
    (gt,) = torch.autograd.grad(out, t, g.to(device, dtype), create_graph=True)
    (et,) = torch.autograd.grad(exp, td, g, create_graph=True)
    _check_grads([gt.detach().cpu()], [et.detach()], dtype)
    if dtype in (torch.float32, torch.float64) and kind != "identity":
        # Second derivative: the saved derivative output is itself differentiable. Its
        # formula (shared with the C++ ops) runs in the input dtype, so half types are left out.
        (g2,) = torch.autograd.grad(gt.sum(), t)
        (e2,) = torch.autograd.grad(et.sum(), td)
        _check_grads([g2.cpu()], [e2], dtype)


# The interpreter evaluates in numpy, which warns on the intended overflows.
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_psi_star_extremes(device, dtype):
    # Stable softplus / sigmoid at any magnitude, kl overflowing to +inf (never NaN), chi2 clamped at -2.
    vals = [
        -1e4,
        -1000.0,
        -100.0,
        -20.0,
        -2.5,
        -2.0,
        -1.5,
        -1e-8,
        0.0,
        1e-8,
        0.5,
        20.0,
        88.0,
        89.0,
        100.0,
        1e4,
    ]
    t = torch.tensor(vals, dtype=dtype, device=device)
    for kind in _reference.PSI_KINDS:
        value, deriv = ops.psi_star_triton(t, kind, 1.0)
        exp_v = _reference.psi_star(t.cpu(), kind, 1.0)
        exp_d = _reference.psi_star_grad(t.cpu(), kind, 1.0)
        assert not value.isnan().any() and not deriv.isnan().any(), kind
        torch.testing.assert_close(value.cpu(), exp_v, rtol=TOL[dtype][1], atol=TOL[dtype][0], msg=kind)
        torch.testing.assert_close(deriv.cpu(), exp_d, rtol=TOL[dtype][1], atol=TOL[dtype][0], msg=kind)
    value, deriv = ops.psi_star_triton(t, "kl", 1.0)
    overflow = t > 709.0 if dtype == torch.float64 else t > 88.8
    assert value[overflow].eq(float("inf")).all() and deriv[overflow].eq(float("inf")).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "kinds", [("kl", "kl"), ("identity", "chi2"), ("softplus", "softplus_unscaled"), ("chi2", "identity")]
)
def test_semi_dual_loss(device, dtype, kinds):
    # [B, 1] scores as a critic returns them; the data batch has another size.
    cost = make((37, 1), dtype).abs().to(device).requires_grad_()
    fake, real = _inputs(device, dtype, True, (37, 1), (21,))
    out = fastot.semi_dual_loss(cost, fake, real, *kinds, alpha=0.9, backend="triton")
    assert out.shape == () and out.dtype == dtype
    cd, fd, rd = _double(cost, fake, real)
    exp = _reference.semi_dual_loss(cd.flatten(), fd.flatten(), rd, *kinds, alpha=0.9)
    assert_close(out.cpu(), exp, dtype, scale=max(1.0, exp.abs().item()))
    g = torch.randn((), dtype=torch.float64)
    got = _grads(out, (cost, fake, real), g.to(device, dtype))
    _check_grads([a.cpu() for a in got], _grads(exp, (cd, fd, rd), g), dtype)


# --- r1_penalty -----------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROWS)
def test_r1_penalty(device, dtype, rows):
    (grad,) = _inputs(device, dtype, rows[1] > 1, rows)
    out = fastot.r1_penalty(grad, 0.6, backend="triton")
    assert out.shape == () and out.dtype == dtype
    (gd,) = _double(grad)
    exp = _reference.r1_penalty(gd, 0.6)
    assert_close(out.cpu(), exp, dtype, scale=exp.abs().item())
    g = torch.randn((), dtype=torch.float64)
    _check_grads([_grads(out, (grad,), g.to(device, dtype))[0].cpu()], _grads(exp, (gd,), g), dtype)


@pytest.mark.parametrize("device", DEVICES)
def test_r1_regularizer_double_backward(device):
    # R1 trains the potential through the backward of its own input gradient.
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()
    real = torch.randn(6, 5, dtype=torch.float64)
    grads = {}
    for backend in ("eager", "triton"):
        net.zero_grad()
        dev_net = net.to(device)
        fastot.r1_regularizer(dev_net, real.to(device), 0.7, backend=backend).backward()
        # The last bias does not move the input gradient: no gradient on either backend.
        grads[backend] = [None if p.grad is None else p.grad.cpu().clone() for p in dev_net.parameters()]
        net.to("cpu")
    assert sum(g is not None for g in grads["eager"]) == 3
    for a, e in zip(grads["triton"], grads["eager"], strict=True):
        assert (a is None) == (e is None)
        if e is not None:
            torch.testing.assert_close(a, e)


# --- weak_quadratic_cost and energy_kernel_cost -----------------------------------------------

WEAK = {
    "weak_quadratic_cost": (fastot.weak_quadratic_cost, _reference.weak_quadratic_cost),
    "energy_kernel_cost": (fastot.energy_kernel_cost, _reference.energy_kernel_cost),
}
# (B, Z, feature dims...): Z = 2 at d = 12288 leaves few programs, so d is split; Z = 12
# gives K = 78 > 64 energy norms per row, more than one block of them.
SAMPLES = [(1, 2, 1), (3, 4, 7), (2, 3, 33), (2, 12, 5), (2, 5, 1000), (1, 2, 3, 64, 64)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SAMPLES)
@pytest.mark.parametrize("name", WEAK)
def test_weak_costs(device, dtype, shape, name):
    op, ref = WEAK[name]
    b, z, *feat = shape
    # Non-contiguous whenever a feature dim can be strided.
    x, y = _inputs(device, dtype, feat != [1], (b, *feat), (b, z, *feat))
    out = op(x, y, 0.6, 0.3, backend="triton")
    assert out.shape == (b,) and out.dtype == dtype
    xd, yd = _double(x, y)
    exp = ref(xd.flatten(1), yd.flatten(2), 0.6, 0.3)
    assert_close(out.cpu(), exp, dtype, scale=max(1.0, exp.abs().max().item()))
    g = torch.randn(b, dtype=torch.float64)
    got = _grads(out, (x, y), g.to(device, dtype))
    _check_grads([a.cpu() for a in got], _grads(exp, (xd, yd), g), dtype)


@pytest.mark.parametrize("device", DEVICES)
def test_energy_kernel_cost_zero_distances(device):
    # Coinciding points: the gradient of a norm at 0 is 0 (never NaN), as in the reference.
    x, y = make((2, 6), torch.float64), make((2, 4, 6), torch.float64)
    y[:, 1] = y[:, 0]
    y[:, 2] = x
    x, y = x.to(device).requires_grad_(), y.to(device).requires_grad_()
    out = fastot.energy_kernel_cost(x, y, 0.8, 1.0, backend="triton")
    xd, yd = _double(x, y)
    exp = _reference.energy_kernel_cost(xd, yd, 0.8, 1.0)
    assert_close(out.cpu(), exp, torch.float64)
    got = _grads(out, (x, y), torch.ones(2, dtype=torch.float64, device=device))
    _check_grads(
        [a.cpu() for a in got], _grads(exp, (xd, yd), torch.ones(2, dtype=torch.float64)), torch.float64
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_energy_norms_dtype(device, dtype):
    x, y = make((3, 5), dtype).to(device), make((3, 4, 5), dtype).to(device)
    cost, norms = ops.energy_kernel_cost_triton(x, y, 0.5, 1.0)
    assert cost.dtype == dtype and norms.shape == (3, 4 + 6)
    assert norms.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    # ||x - y_z|| first, then ||y_i - y_j|| for i < j in row-major order.
    xd, yd = x.cpu().double(), y.cpu().double()
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    exp = torch.cat(
        [
            (xd[:, None] - yd).norm(dim=-1),
            torch.stack([(yd[:, i] - yd[:, j]).norm(dim=-1) for i, j in pairs], 1),
        ],
        dim=1,
    )
    assert_close(norms.cpu(), exp, dtype, scale=exp.abs().max().item())


@pytest.mark.parametrize("name", WEAK)
def test_weak_costs_double_backward_raises(name):
    op, _ = WEAK[name]
    device = "cuda" if HAS_CUDA else "cpu"
    x = make((2, 3), torch.float64).to(device).requires_grad_()
    y = make((2, 3, 3), torch.float64).to(device).requires_grad_()
    (gy,) = torch.autograd.grad(op(x, y, 0.5, 0.7, backend="triton").sum(), y, create_graph=True)
    with pytest.raises(RuntimeError, match=r"double backward of fastot::\w+ is not supported"):
        gy.sum().backward()


# --- empty batches, registration, compile ---------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_empty_batch(device):
    x, y = _inputs(device, torch.float32, True, (0, 5), (0, 5))
    ys = make((0, 3, 5), torch.float32).to(device).requires_grad_()
    for out, inputs in (
        (fastot.quadratic_cost(x, y, 1.0, backend="triton"), (x, y)),
        (fastot.weak_quadratic_cost(x, ys, 0.5, backend="triton"), (x, ys)),
        (fastot.energy_kernel_cost(x, ys, 0.5, backend="triton"), (x, ys)),
    ):
        assert out.shape == (0,)
        grads = torch.autograd.grad(out, inputs, torch.empty(0, device=device))
        assert [g.shape for g in grads] == [t.shape for t in inputs]
    assert fastot.psi_star(x, "kl", backend="triton").shape == (0, 5)
    assert ops._r1_penalty_backward_triton(torch.ones((), device=device), x, 1.0).shape == (0, 5)
    _, norms = ops.energy_kernel_cost_triton(x, ys, 0.5, 1.0)
    assert norms.shape == (0, 6)


OP_NAMES = [
    "quadratic_cost",
    "_quadratic_cost_backward",
    "psi_star",
    "semi_dual_loss",
    "r1_penalty",
    "_r1_penalty_backward",
    "weak_quadratic_cost",
    "_weak_quadratic_cost_backward",
    "energy_kernel_cost",
    "_energy_kernel_cost_backward",
]


@pytest.mark.skipif(not STATUS.cpp, reason="needs the C++ op schemas to compare with")
@pytest.mark.parametrize("name", OP_NAMES)
def test_schema_mirrors_cpp_op(name):
    def args_and_returns(op) -> str:
        return str(op.default._schema).split("(", 1)[1]

    assert args_and_returns(getattr(ops, name + "_triton")) == args_and_returns(getattr(ops, name))


def _opcheck_samples(device):
    def m(*shape, requires_grad=True):
        return make(shape, torch.float32, requires_grad=requires_grad).to(device).detach().requires_grad_()

    cost = m(5).detach().abs().requires_grad_()
    return [
        (ops.quadratic_cost_triton, (m(4, 7), m(4, 7), 0.3)),
        (ops._quadratic_cost_backward_triton, (m(4), m(4, 7), m(4, 7), 0.3)),
        (ops.psi_star_triton, (m(3, 5), "softplus", 0.7)),
        (ops.semi_dual_loss_triton, (cost, m(5), m(3), "kl", "chi2", 1.0)),
        (ops.r1_penalty_triton, (m(4, 6), 0.2)),
        (ops._r1_penalty_backward_triton, (m(), m(4, 6), 0.2)),
        (ops.weak_quadratic_cost_triton, (m(3, 5), m(3, 4, 5), 0.5, 0.3)),
        (ops.energy_kernel_cost_triton, (m(3, 5), m(3, 4, 5), 0.5, 0.3)),
    ]


@NEEDS_INTERPRETER
def test_opcheck_interpreted():
    # Fake-tensor and AOT checks trace the implementation, which under the interpreter
    # launches the kernel on FakeTensors (see test_compile_fullgraph); schema and
    # autograd registration are checked here, everything on CUDA.
    for op, args in _opcheck_samples("cpu"):
        torch.library.opcheck(op, args, test_utils=("test_schema", "test_autograd_registration"))


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device")
def test_opcheck_cuda():
    for op, args in _opcheck_samples("cuda"):
        torch.library.opcheck(op, args)


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device")
def test_compile_fullgraph_cuda():
    x, y = _inputs("cuda", torch.float32, True, (8, 300), (8, 300))

    @torch.compile(fullgraph=True)
    def f(a, b):
        return (ops.quadratic_cost_triton(a, b, 0.5) * 2.0).sum()

    out = f(x, y)
    torch.testing.assert_close(out, 2.0 * _reference.quadratic_cost(x.detach(), y.detach(), 0.5).sum())
    gx, gy = torch.autograd.grad(out, (x, y))
    torch.testing.assert_close(gx, 2.0 * (x - y).detach())
    torch.testing.assert_close(gy, -gx)


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    return run_python(["-c", textwrap.dedent(code)], env={"TRITON_INTERPRET": None, **env}, timeout=600)


@NEEDS_INTERPRETER
def test_compile_fullgraph_interpreted():
    pytest.skip(
        "torch.compile cannot run Triton kernels under TRITON_INTERPRET=1: torch.library.wrap_triton "
        "returns the bare InterpretedFunction instead of a traceable kernel wrapper, so tracing the "
        "triton_op with FakeTensors launches the interpreter on them ('Cannot access data pointer "
        "of Tensor'). test_compile_fullgraph_traces_kernels checks the tracing without the "
        "interpreter; test_compile_fullgraph_cuda runs it."
    )


def test_compile_fullgraph_traces_kernels():
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


def test_kernels_compile_for_a_cuda_target():
    # Compiles every kernel to a cubin for sm_80 (Triton ships ptxas), which checks what the
    # interpreter does not: constexpr-only globals, static dtype branches, scalar argument types.
    pytest.importorskip("triton.backends.nvidia.compiler", reason="Triton was built without its CUDA backend")
    res = _run(
        """
        import importlib
        import triton
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
        import fastot  # noqa: F401

        def mod(name):
            return importlib.import_module("fastot.kernels." + name)

        qc, ps, r1, ut = mod("quadratic_cost"), mod("psi_star"), mod("r1_penalty"), mod("_utils")
        wq, ek = mod("weak_quadratic_cost"), mod("energy_kernel_cost")
        FLOATS = {"scale", "coef", "w_over_b", "w0", "w1", "gamma", "alpha", "w_transport", "w_spread"}

        def build(kernel, constexprs, dt, acc_ptrs=()):
            fn = kernel
            while not isinstance(fn, triton.runtime.jit.JITFunction):
                fn = fn.fn
            sig = {}
            for name in fn.arg_names:
                if name in constexprs:
                    sig[name] = "constexpr"
                elif name.endswith("_ptr"):
                    sig[name] = "*" + (("fp64" if dt == "fp64" else "fp32") if name in acc_ptrs else dt)
                else:
                    sig[name] = "fp64" if name in FLOATS else "i32"
            src = ASTSource(fn=fn, signature=sig, constexprs=constexprs)
            return triton.compile(src, target=GPUTarget("cuda", 80, 32)).asm["cubin"]

        for dt in ("fp32", "bf16", "fp64"):
            jobs = [
                (qc._quadratic_cost_fwd_kernel, {"DIRECT": True, "BLOCK_D": 1024}, ()),
                (qc._quadratic_cost_fwd_kernel, {"DIRECT": False, "BLOCK_D": 4096}, ("out_ptr",)),
                (qc._quadratic_cost_bwd_kernel, {"BLOCK_D": 256}, ()),
                (ut._finish_rows_kernel, {"TERMS": 2, "BLOCK_N": 16}, ("part_ptr",)),
                (r1._r1_penalty_fwd_kernel, {"DIRECT": False, "BLOCK_D": 1024}, ("out_ptr",)),
                (r1._r1_penalty_bwd_kernel, {"BLOCK_D": 1024}, ()),
                (wq._weak_quadratic_cost_fwd_kernel, {"DIRECT": True, "BLOCK_D": 1024}, ()),
                (wq._weak_quadratic_cost_bwd_kernel, {"BLOCK_D": 1024}, ()),
                (ek._energy_sq_dist_kernel, {"BLOCK_D": 1024}, ("part_ptr",)),
                (ek._energy_finish_kernel, {"BLOCK_K": 64, "BLOCK_N": 16}, ("part_ptr", "norms_ptr")),
                (ek._energy_bwd_kernel, {"BLOCK_D": 1024}, ("norms_ptr",)),
                (ps._semi_dual_loss_kernel, {"SOURCE": 1, "TARGET": 3, "BLOCK": 1024}, ("part_ptr",)),
            ]
            jobs += [(ps._psi_star_kernel, {"KIND": kind, "BLOCK_D": 1024}, ()) for kind in range(5)]
            for kernel, constexprs, acc_ptrs in jobs:
                assert build(kernel, constexprs, dt, acc_ptrs), (kernel, dt)
        print("ok")
        """,
        TRITON_DEFAULT_FP_FUSION="1",
    )
    assert res.returncode == 0, res.stderr
    assert "ok" in res.stdout


def test_import_without_triton_falls_back():
    # A missing Triton must leave fastot importable with STATUS.triton False and a reason.
    code = """
        import sys
        sys.modules["triton"] = None
        import torch, fastot
        from fastot._extension import STATUS
        assert not STATUS.triton, STATUS
        assert "Triton kernels unavailable" in STATUS.why["triton"], STATUS.why
        print("ok", fastot.quadratic_cost(torch.ones(2, 3), torch.zeros(2, 3)).tolist())
    """
    res = _run(code, TRITON_INTERPRET="1")
    assert res.returncode == 0, res.stderr
    assert "ok [3.0, 3.0]" in res.stdout
