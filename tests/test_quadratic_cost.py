"""quadratic_cost on every backend against its float64 reference."""

import math

import pytest
import torch
from fastot_testing import CPU_FUSED, DTYPES, assert_close, backends, check, make, shifted, skip_gpu_sized

import fastot
from fastot.ops.quadratic_cost import reference

# Feature dims of any rank; odd d, d = 1 and B = 1; 12288 = 3 * 64 * 64 is long enough to be
# split across Triton programs when B is small, and 16 images of 3 x 256 x 256 across CUDA blocks.
SHAPES = [
    (1, 1),
    (5, 1),
    (1, 7),
    (3, 7),
    (2, 33),
    (5, 33),
    (4, 3, 5, 7),
    (2, 3, 33, 17),
    (3, 1000),
    (4, 1001),
    (3, 4096),
    (1, 3 * 64 * 64),
    (16, 3 * 256 * 256),
]


def _expected(x, y, scale):
    return reference(x.double().flatten(1), y.double().flatten(1), scale)


def _double(*ts):
    return [t.detach().cpu().double().requires_grad_() for t in ts]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("contiguous", [True, False])
def test_forward_backward_match_reference(backend, shape, dtype, contiguous):
    d = math.prod(shape[1:])
    if dtype == torch.float16 and 0.37 * 2 * d > torch.finfo(dtype).max:
        pytest.skip("a cost of this many features overflows float16")
    skip_gpu_sized(backend, shape[0] * d)
    x, y = backend.leaf(shape, dtype, contiguous), backend.leaf(shape, dtype, contiguous)
    out = fastot.quadratic_cost(x, y, 0.37, backend=backend.name)
    xd, yd = _double(x, y)
    exp = reference(xd.flatten(1), yd.flatten(1), 0.37)
    check(out, exp, dtype)
    g = torch.randn(shape[0], dtype=torch.float64)
    gx, gy = torch.autograd.grad(out, (x, y), backend.to(g.to(dtype)))
    ex, ey = torch.autograd.grad(exp, (xd, yd), g)
    check(gx, ex, dtype)
    check(gy, ey, dtype)


@pytest.mark.parametrize("shape", [(3, 4, 5), (3, 3, 4, 5)])
def test_one_gradient_requested(backend, shape):
    # Only d/dy of strided views: the backward op runs with x and y swapped.
    x, y = backend.leaf(shape, torch.float32, False), backend.leaf(shape, torch.float32, False)
    out = fastot.quadratic_cost(x, y, 0.3, backend=backend.name)
    xd, yd = _double(x, y)
    exp = reference(xd.flatten(1), yd.flatten(1), 0.3)
    check(out, exp, torch.float32)
    g = torch.randn(3, dtype=torch.float64)
    (gy,) = torch.autograd.grad(out, (y,), backend.to(g.float()))
    (ey,) = torch.autograd.grad(exp, (yd,), g)
    check(gy, ey, torch.float32)


def test_gradient_for_one_input_only(backend):
    # The map loss needs d cost / d T(x) only: the other gradient must not be computed wrongly.
    x = backend.to(make((3, 8), torch.float64))
    y = backend.to(make((3, 8), torch.float64)).requires_grad_()
    (gy,) = torch.autograd.grad(fastot.quadratic_cost(x, y, 0.5, backend=backend.name).sum(), y)
    torch.testing.assert_close(gy, (y - x).detach())


@pytest.mark.parametrize("backend", backends(CPU_FUSED), indirect=True)
def test_large_row_float32_accuracy(backend):
    # One CelebA-HQ-sized row: the fused kernel sums in tiles added in double.
    x, y = make((2, 3, 256, 256), torch.float32), make((2, 3, 256, 256), torch.float32)
    out = fastot.quadratic_cost(x, y, 1e-5, backend=backend.name)
    torch.testing.assert_close(out.double(), _expected(x, y, 1e-5), rtol=1e-6, atol=0)


def test_no_cancellation_for_large_norms(backend):
    x = torch.full((2, 64), 1e4, dtype=torch.float32)
    y = x + 1e-2
    out = fastot.quadratic_cost(backend.to(x), backend.to(y), backend=backend.name)
    torch.testing.assert_close(out.cpu().double(), _expected(x, y, 1.0), rtol=1e-3, atol=0)


def test_gradcheck_and_gradgradcheck(backend):
    x = backend.to(make((3, 2, 3), torch.float64)).requires_grad_()
    y = backend.to(make((3, 2, 3), torch.float64)).requires_grad_()

    def f(a, b):
        return fastot.quadratic_cost(a, b, 0.7, backend=backend.name)

    assert torch.autograd.gradcheck(f, (x, y))
    assert torch.autograd.gradgradcheck(f, (x, y))


def test_empty_batch(backend):
    x, y = backend.leaf((0, 3, 4), torch.float32), backend.leaf((0, 3, 4), torch.float32)
    out = fastot.quadratic_cost(x, y, 1.0, backend=backend.name)
    assert out.shape == (0,)
    grads = torch.autograd.grad(out, (x, y), torch.empty(0, device=backend.device))
    assert [g.shape for g in grads] == [x.shape, y.shape]


def test_nan_and_inf_propagate(backend):
    x = make((3, 5), torch.float32)
    y = x.clone()
    x[1, 2] = float("nan")
    x[2, 0] = float("inf")
    out = fastot.quadratic_cost(backend.to(x), backend.to(y), backend=backend.name)
    assert out[0] == 0 and out[1].isnan() and out[2].isinf()


@pytest.mark.parametrize("backend", backends("cuda"), indirect=True)
def test_misaligned_rows(backend):
    # Contiguous rows starting one element into a buffer: the CUDA kernels take their scalar path.
    ops = torch.ops.fastot
    x, y = shifted((4, 1024), backend.device), shifted((4, 1024), backend.device)
    assert x.is_contiguous() and x.data_ptr() % 16 != 0
    xd, yd = x.double(), y.double()
    g = torch.randn(4, dtype=torch.float32, device=backend.device)
    assert_close(ops.quadratic_cost(x, y, 0.5), reference(xd, yd, 0.5), torch.float32, 1e3)
    assert_close(ops._quadratic_cost_backward(g, x, y, 0.5), (g[:, None] * (xd - yd)), torch.float32)


@pytest.mark.parametrize("backend", backends("cuda"), indirect=True)
def test_auto_backend_prefers_cuda(backend):
    assert "cuda" in fastot.available("cuda")
    x, y = backend.leaf((3, 8), torch.float32), backend.leaf((3, 8), torch.float32)
    torch.testing.assert_close(fastot.quadratic_cost(x, y), fastot.quadratic_cost(x, y, backend="cuda"))


# ---------------------------------------------------------------------------- the cross-op tables
# tests/test_errors.py, tests/test_registration.py and tests/test_build.py run every op through
# these (tests/test_op_stems.py checks that each op's file defines them).


def error_call(x, y, ys):
    """The op on well-formed x [B, d], y [B, d], ys [B, Z, d]: what the bad-input checks vary."""
    return lambda b: fastot.quadratic_cost(x, y, backend=b)


def compile_call(x, y, backend):
    """A scalar or vector of the op on two [B, d] leaves, for torch.compile(fullgraph=True)."""
    return fastot.quadratic_cost(x, y, 0.5, backend=backend)


def opcheck_cases(m, op):
    """(op, arguments) pairs for torch.library.opcheck; ``m(*shape)`` makes an input."""
    return [
        (op("quadratic_cost"), (m(4, 7), m(4, 7), 0.3)),
        (op("_quadratic_cost_backward"), (m(4), m(4, 7), m(4, 7), 0.3)),
    ]


def triton_cuda_jobs(k):
    """(kernel, constexprs, pointers accumulating in float32 / float64) for every kernel of the op's
    Triton module ``k``: tests/test_build.py compiles each for a CUDA target."""
    return [
        (k._quadratic_cost_fwd_kernel, {"DIRECT": True, "BLOCK_D": 1024}, ()),
        (k._quadratic_cost_fwd_kernel, {"DIRECT": False, "BLOCK_D": 4096}, ("out_ptr",)),
        (k._quadratic_cost_bwd_kernel, {"BLOCK_D": 256}, ()),
    ]
