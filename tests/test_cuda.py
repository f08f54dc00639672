"""CUDA kernels (fastot._C_cuda) and compiled Triton kernels against the eager reference.

Every op runs forward and backward through the public API with ``backend="cuda"`` and
``backend="triton"`` on a GPU, and is compared with ``fastot.ops._reference`` evaluated in
float64 on the same device. Without a GPU these tests skip; the build checks at the top
run everywhere.
"""

import pytest
import torch
from fastot_testing import TOL, assert_close, make

import fastot
from fastot._extension import STATUS
from fastot.ops import _reference

HAS_CUDA = torch.cuda.is_available()
ops = torch.ops.fastot

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


# --- build checks (no GPU needed) -----------------------------------------------------------


def test_cuda_build_loads_cuda_kernels():
    # A build that compiled the CUDA kernels must load them: importing needs no GPU.
    if STATUS.build.get("WITH_CUDA"):
        assert STATUS.cuda, STATUS.why.get("cuda")
    else:
        assert not STATUS.cuda
        assert STATUS.why.get("cuda"), "a missing CUDA backend must say why"


@pytest.mark.skipif(not STATUS.cuda, reason="fastot was built without its CUDA kernels")
@pytest.mark.parametrize("name", OP_NAMES)
def test_cuda_kernel_registered(name):
    assert torch._C._dispatch_has_kernel_for_dispatch_key(f"fastot::{name}", "CUDA")


# --- GPU tests ------------------------------------------------------------------------------

DEVICE = "cuda"
BACKENDS = ["cuda", "triton"]
DTYPES = [torch.float32, torch.bfloat16]
# Odd d, d = 1, B = 1, and a batch of 16 images of 3 x 256 x 256 (rows split across blocks).
ROWS = [(1, 1), (3, 7), (5, 33), (4, 1001), (16, 3 * 256 * 256)]


def needs_gpu(fn):
    fn = pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device")(fn)
    return pytest.mark.cuda(fn)


def _backend(name: str) -> str:
    """``name`` if it can run here; a CUDA build that cannot load its kernels is a failure."""
    if name == "cuda" and not STATUS.cuda:
        if STATUS.build.get("WITH_CUDA"):
            pytest.fail(f"fastot was built with CUDA kernels but they did not load: {STATUS.why.get('cuda')}")
        pytest.skip("fastot was built without its CUDA kernels")
    if name == "triton" and not STATUS.triton:
        pytest.skip(STATUS.why.get("triton", "Triton is unavailable"))
    return name


def _leaf(shape, dtype, contiguous=True, scale=1.0):
    """A CUDA leaf requiring grad; a non-contiguous one keeps the strides of ``make``'s view."""
    t = make(shape, dtype, contiguous, scale=scale)
    t = torch.empty_strided(t.shape, t.stride(), dtype=dtype, device=DEVICE).copy_(t)
    return t.requires_grad_()


def _double(*ts):
    return [t.detach().double().requires_grad_() for t in ts]


def _check(actual, expected, dtype, floor=1.0):
    assert actual.dtype == dtype and actual.shape == expected.shape
    assert_close(
        actual, expected, dtype, scale=max(floor, expected.abs().max().item() if expected.numel() else 0)
    )


def _check_grads(actual, expected, dtype):
    for a, e in zip(actual, expected, strict=True):
        _check(a, e, dtype, floor=1e-3)


@needs_gpu
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("contiguous", [True, False])
def test_quadratic_cost(backend, dtype, rows, contiguous):
    backend = _backend(backend)
    x, y = _leaf(rows, dtype, contiguous), _leaf(rows, dtype, contiguous)
    out = fastot.quadratic_cost(x, y, 0.7, backend=backend)
    xd, yd = _double(x, y)
    exp = _reference.quadratic_cost(xd, yd, 0.7)
    _check(out, exp, dtype)
    g = torch.randn(rows[0], dtype=torch.float64, device=DEVICE)
    got = torch.autograd.grad(out, (x, y), g.to(dtype))
    _check_grads(got, torch.autograd.grad(exp, (xd, yd), g), dtype)


@needs_gpu
@pytest.mark.parametrize("backend", BACKENDS)
def test_quadratic_cost_one_gradient(backend):
    # Only d/dy requested: the backward op runs with x and y swapped.
    backend = _backend(backend)
    x, y = _leaf((3, 4, 5), torch.float32, False), _leaf((3, 4, 5), torch.float32, False)
    out = fastot.quadratic_cost(x, y, 0.3, backend=backend)
    xd, yd = _double(x, y)
    exp = _reference.quadratic_cost(xd.flatten(1), yd.flatten(1), 0.3)
    g = torch.randn(3, dtype=torch.float64, device=DEVICE)
    (gy,) = torch.autograd.grad(out, (y,), g.float())
    _check_grads([gy], torch.autograd.grad(exp, (yd,), g), torch.float32)


@needs_gpu
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", _reference.PSI_KINDS)
@pytest.mark.parametrize("shape", [(3, 5, 7), (100003,)])
def test_psi_star(backend, dtype, kind, shape):
    # Any shape: a strided [3, 5, 7] view, and an odd length with a tail after the vector loop.
    backend = _backend(backend)
    t = _leaf(shape, dtype, len(shape) == 1, scale=3.0)
    out = fastot.psi_star(t, kind, 0.8, backend=backend)
    (td,) = _double(t)
    exp = _reference.psi_star(td, kind, 0.8)
    _check(out, exp, dtype)
    g = torch.randn(shape, dtype=torch.float64, device=DEVICE)
    (gt,) = torch.autograd.grad(out, t, g.to(dtype), create_graph=True)
    (et,) = torch.autograd.grad(exp, td, g, create_graph=True)
    _check_grads([gt.detach()], [et.detach()], dtype)
    if dtype == torch.float32 and kind != "identity":
        (g2,) = torch.autograd.grad(gt.sum(), t)
        (e2,) = torch.autograd.grad(et.sum(), td)
        _check_grads([g2], [e2], dtype)


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_psi_star_extremes_cuda(dtype):
    # Stable softplus / sigmoid at any magnitude, kl overflowing to +inf (never NaN).
    _backend("cuda")
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
    t = torch.tensor(vals, dtype=dtype, device=DEVICE)
    for kind in _reference.PSI_KINDS:
        value, deriv = ops.psi_star(t, kind, 1.0)
        assert not value.isnan().any() and not deriv.isnan().any(), kind
        atol, rtol = TOL[dtype]
        torch.testing.assert_close(value, _reference.psi_star(t, kind, 1.0), rtol=rtol, atol=atol, msg=kind)
        torch.testing.assert_close(
            deriv, _reference.psi_star_grad(t, kind, 1.0), rtol=rtol, atol=atol, msg=kind
        )
    value, deriv = ops.psi_star(t, "kl", 1.0)
    overflow = t > 709.0 if dtype == torch.float64 else t > 88.8
    assert value[overflow].eq(float("inf")).all() and deriv[overflow].eq(float("inf")).all()


@needs_gpu
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "kinds", [("kl", "kl"), ("identity", "chi2"), ("softplus", "softplus_unscaled"), ("chi2", "identity")]
)
@pytest.mark.parametrize("sizes", [(37, 21), (5001, 3333)])
def test_semi_dual_loss(backend, dtype, kinds, sizes):
    # [B, 1] scores as a critic returns them; large batches take the multi-block path.
    backend = _backend(backend)
    b, m = sizes
    cost = _leaf((b, 1), dtype).detach().abs().requires_grad_()
    fake, real = _leaf((b, 1), dtype), _leaf((m,), dtype)
    out = fastot.semi_dual_loss(cost, fake, real, *kinds, alpha=0.9, backend=backend)
    cd, fd, rd = _double(cost, fake, real)
    exp = _reference.semi_dual_loss(cd.flatten(), fd.flatten(), rd, *kinds, alpha=0.9)
    _check(out, exp, dtype)
    g = torch.randn((), dtype=torch.float64, device=DEVICE)
    got = torch.autograd.grad(out, (cost, fake, real), g.to(dtype))
    _check_grads(got, torch.autograd.grad(exp, (cd, fd, rd), g), dtype)


@needs_gpu
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("contiguous", [True, False])
def test_r1_penalty(backend, dtype, rows, contiguous):
    backend = _backend(backend)
    grad = _leaf(rows, dtype, contiguous)
    out = fastot.r1_penalty(grad, 0.6, backend=backend)
    (gd,) = _double(grad)
    exp = _reference.r1_penalty(gd, 0.6)
    _check(out, exp, dtype)
    g = torch.randn((), dtype=torch.float64, device=DEVICE)
    got = torch.autograd.grad(out, (grad,), g.to(dtype))
    _check_grads(got, torch.autograd.grad(exp, (gd,), g), dtype)


@needs_gpu
@pytest.mark.parametrize("backend", BACKENDS)
def test_r1_regularizer_double_backward(backend):
    # R1 trains the potential through the backward of its own input gradient.
    backend = _backend(backend)
    torch.manual_seed(1)
    net = (
        torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double().to(DEVICE)
    )
    real = torch.randn(6, 5, dtype=torch.float64, device=DEVICE)
    grads = {}
    for name in ("eager", backend):
        net.zero_grad()
        fastot.r1_regularizer(net, real, 0.7, backend=name).backward()
        grads[name] = [None if p.grad is None else p.grad.clone() for p in net.parameters()]
    for a, e in zip(grads[backend], grads["eager"], strict=True):
        assert (a is None) == (e is None)
        if e is not None:
            torch.testing.assert_close(a, e)


WEAK = {
    "weak_quadratic_cost": (fastot.weak_quadratic_cost, _reference.weak_quadratic_cost),
    "energy_kernel_cost": (fastot.energy_kernel_cost, _reference.energy_kernel_cost),
}
# (B, Z, d): odd d, K = Z + Z (Z - 1) / 2 = 78 norms at Z = 12, and 16 images of 3 x 256 x 256.
SAMPLES = [(1, 2, 1), (3, 4, 7), (2, 3, 33), (2, 12, 5), (2, 5, 1001), (16, 2, 3 * 256 * 256)]


@needs_gpu
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SAMPLES)
@pytest.mark.parametrize("name", WEAK)
@pytest.mark.parametrize("contiguous", [True, False])
def test_weak_costs(backend, dtype, shape, name, contiguous):
    backend = _backend(backend)
    op, ref = WEAK[name]
    b, z, d = shape
    x, y = _leaf((b, d), dtype, contiguous), _leaf((b, z, d), dtype, contiguous)
    out = op(x, y, 0.6, 0.3, backend=backend)
    xd, yd = _double(x, y)
    exp = ref(xd, yd, 0.6, 0.3)
    _check(out, exp, dtype)
    g = torch.randn(b, dtype=torch.float64, device=DEVICE)
    got = torch.autograd.grad(out, (x, y), g.to(dtype))
    _check_grads(got, torch.autograd.grad(exp, (xd, yd), g), dtype)


@needs_gpu
@pytest.mark.parametrize("backend", BACKENDS)
def test_energy_kernel_cost_zero_distances(backend):
    # Coinciding points: the gradient of a norm at 0 is 0 (never NaN), as in the reference.
    backend = _backend(backend)
    x, y = make((2, 6), torch.float64), make((2, 4, 6), torch.float64)
    y[:, 1] = y[:, 0]
    y[:, 2] = x
    x, y = x.to(DEVICE).requires_grad_(), y.to(DEVICE).requires_grad_()
    out = fastot.energy_kernel_cost(x, y, 0.8, 1.0, backend=backend)
    xd, yd = _double(x, y)
    exp = _reference.energy_kernel_cost(xd, yd, 0.8, 1.0)
    _check(out, exp, torch.float64)
    ones = torch.ones(2, dtype=torch.float64, device=DEVICE)
    got = torch.autograd.grad(out, (x, y), ones)
    _check_grads(got, torch.autograd.grad(exp, (xd, yd), ones), torch.float64)
    assert not any(t.isnan().any() for t in got)


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
def test_energy_norms_cuda(dtype):
    _backend("cuda")
    x, y = make((3, 5), dtype).to(DEVICE), make((3, 4, 5), dtype).to(DEVICE)
    cost, norms = ops.energy_kernel_cost(x, y, 0.5, 1.0)
    assert cost.dtype == dtype and norms.shape == (3, 4 + 6)
    assert norms.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    xd, yd = x.double(), y.double()
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    exp = torch.cat(
        [
            (xd[:, None] - yd).norm(dim=-1),
            torch.stack([(yd[:, i] - yd[:, j]).norm(dim=-1) for i, j in pairs], 1),
        ],
        dim=1,
    )
    assert_close(norms, exp, dtype, scale=exp.abs().max().item())


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_cuda_other_dtypes(dtype):
    # float16 and float64 through every row op, one odd and one vectorisable width.
    _backend("cuda")
    for d in (33, 4096):
        x, y = _leaf((3, d), dtype), _leaf((3, d), dtype)
        ys = _leaf((3, 3, d), dtype)
        xd, yd, ysd = _double(x, y, ys)
        for out, exp, inputs, ref_inputs in (
            (
                fastot.quadratic_cost(x, y, 0.5, backend="cuda"),
                _reference.quadratic_cost(xd, yd, 0.5),
                (x, y),
                (xd, yd),
            ),
            (fastot.r1_penalty(x, 0.5, backend="cuda"), _reference.r1_penalty(xd, 0.5), (x,), (xd,)),
            (
                fastot.weak_quadratic_cost(x, ys, 0.5, backend="cuda"),
                _reference.weak_quadratic_cost(xd, ysd, 0.5),
                (x, ys),
                (xd, ysd),
            ),
            (
                fastot.energy_kernel_cost(x, ys, 0.5, backend="cuda"),
                _reference.energy_kernel_cost(xd, ysd, 0.5),
                (x, ys),
                (xd, ysd),
            ),
        ):
            _check(out, exp, dtype)
            g = torch.randn(exp.shape, dtype=torch.float64, device=DEVICE)
            got = torch.autograd.grad(out, inputs, g.to(dtype))
            _check_grads(got, torch.autograd.grad(exp, ref_inputs, g), dtype)


@needs_gpu
def test_cuda_misaligned_inputs():
    # Contiguous rows starting one element into a buffer: the kernels take their scalar path.
    _backend("cuda")

    def shifted(*shape):
        n = 1
        for s in shape:
            n *= s
        return torch.randn(n + 1, dtype=torch.float32, device=DEVICE)[1:].view(shape)

    x, y, ys = shifted(4, 1024), shifted(4, 1024), shifted(4, 3, 1024)
    assert x.is_contiguous() and x.data_ptr() % 16 != 0
    xd, yd, ysd = x.double(), y.double(), ys.double()
    g = torch.randn(4, dtype=torch.float32, device=DEVICE)
    assert_close(ops.quadratic_cost(x, y, 0.5), _reference.quadratic_cost(xd, yd, 0.5), torch.float32, 1e3)
    assert_close(ops._quadratic_cost_backward(g, x, y, 0.5), (g[:, None] * (xd - yd)), torch.float32)
    assert_close(ops.r1_penalty(x, 0.5), _reference.r1_penalty(xd, 0.5), torch.float32, 1e3)
    assert_close(ops.psi_star(x, "softplus", 0.7)[0], _reference.psi_star(xd, "softplus", 0.7), torch.float32)
    assert_close(
        ops.weak_quadratic_cost(x, ys, 0.5, 1.0),
        _reference.weak_quadratic_cost(xd, ysd, 0.5),
        torch.float32,
        1e3,
    )
    assert_close(
        ops.energy_kernel_cost(x, ys, 0.5, 1.0)[0],
        _reference.energy_kernel_cost(xd, ysd, 0.5),
        torch.float32,
        10,
    )


@needs_gpu
def test_cuda_empty_batch():
    _backend("cuda")
    x, y = _leaf((0, 5), torch.float32), _leaf((0, 5), torch.float32)
    ys = _leaf((0, 3, 5), torch.float32)
    for out, inputs in (
        (fastot.quadratic_cost(x, y, 1.0, backend="cuda"), (x, y)),
        (fastot.weak_quadratic_cost(x, ys, 0.5, backend="cuda"), (x, ys)),
        (fastot.energy_kernel_cost(x, ys, 0.5, backend="cuda"), (x, ys)),
    ):
        assert out.shape == (0,)
        grads = torch.autograd.grad(out, inputs, torch.empty(0, device=DEVICE))
        assert [g.shape for g in grads] == [t.shape for t in inputs]
    assert fastot.psi_star(x, "kl", backend="cuda").shape == (0, 5)
    assert ops._r1_penalty_backward(torch.ones((), device=DEVICE), x, 1.0).shape == (0, 5)
    _, norms = ops.energy_kernel_cost(x, ys, 0.5, 1.0)
    assert norms.shape == (0, 6)


@needs_gpu
def test_cuda_r1_backward_host_grad_out():
    # A host scalar grad_out is read on the host; a device one by the kernel: same result.
    _backend("cuda")
    grad = _leaf((5, 300), torch.float32).detach()
    on_host = ops._r1_penalty_backward(torch.tensor(1.5), grad, 0.4)
    on_device = ops._r1_penalty_backward(torch.tensor(1.5, device=DEVICE), grad, 0.4)
    torch.testing.assert_close(on_host, on_device)
    torch.testing.assert_close(on_host, 0.4 / 5 * 1.5 * grad)


@needs_gpu
def test_opcheck_cuda():
    _backend("cuda")

    def m(*shape):
        return _leaf(shape, torch.float32)

    cost = m(5).detach().abs().requires_grad_()
    samples = [
        (ops.quadratic_cost, (m(4, 7), m(4, 7), 0.3)),
        (ops._quadratic_cost_backward, (m(4).detach(), m(4, 7), m(4, 7), 0.3)),
        (ops.psi_star, (m(3, 5), "softplus", 0.7)),
        (ops.semi_dual_loss, (cost, m(5), m(3), "kl", "chi2", 1.0)),
        (ops.r1_penalty, (m(4, 6), 0.2)),
        (ops._r1_penalty_backward, (m().detach(), m(4, 6), 0.2)),
        (ops.weak_quadratic_cost, (m(3, 5), m(3, 4, 5), 0.5, 0.3)),
        (ops.energy_kernel_cost, (m(3, 5), m(3, 4, 5), 0.5, 0.3)),
    ]
    for op, args in samples:
        torch.library.opcheck(op, args)
    x, y, g = m(3, 5).detach(), m(3, 4, 5).detach(), m(3).detach()
    torch.library.opcheck(ops._weak_quadratic_cost_backward, (g, x, y, 0.5, 0.3))
    _, norms = ops.energy_kernel_cost(x, y, 0.5, 0.3)
    torch.library.opcheck(ops._energy_kernel_cost_backward, (g, x, y, norms, 0.5, 0.3))


@needs_gpu
def test_cuda_auto_backend_prefers_cuda():
    _backend("cuda")
    assert "cuda" in fastot.available(DEVICE)
    x, y = _leaf((3, 8), torch.float32), _leaf((3, 8), torch.float32)
    torch.testing.assert_close(fastot.quadratic_cost(x, y), fastot.quadratic_cost(x, y, backend="cuda"))
