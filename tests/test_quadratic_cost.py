import pytest
import torch
from fastot_testing import CPU_FUSED, DTYPES, assert_close, make

import fastot
from fastot.ops import _reference

SHAPES = [(1, 1), (5, 1), (1, 7), (4, 3, 5, 7), (3, 1000), (2, 3, 33, 17)]


def _expected(x, y, scale):
    return _reference.quadratic_cost(x.double().flatten(1), y.double().flatten(1), scale)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("contiguous", [True, False])
def test_forward_backward_match_reference(shape, dtype, contiguous):
    x = make(shape, dtype, contiguous, requires_grad=True)
    y = make(shape, dtype, contiguous, requires_grad=True)
    scale = 0.37
    out = fastot.quadratic_cost(x, y, scale, backend=CPU_FUSED)
    assert out.shape == (shape[0],) and out.dtype == dtype
    xd, yd = x.detach().double().requires_grad_(), y.detach().double().requires_grad_()
    exp = _reference.quadratic_cost(xd.flatten(1), yd.flatten(1), scale)
    assert_close(out, exp, dtype, scale=exp.abs().max().item())
    g = torch.randn(shape[0], dtype=torch.float64)
    gx, gy = torch.autograd.grad(out, (x, y), g.to(dtype))
    ex, ey = torch.autograd.grad(exp, (xd, yd), g)
    assert gx.shape == x.shape and gy.shape == y.shape
    assert_close(gx, ex, dtype, scale=ex.abs().max().item())
    assert_close(gy, ey, dtype, scale=ey.abs().max().item())


def test_large_row_float32_accuracy():
    # One CelebA-HQ-sized row: the fused kernel sums in tiles added in double.
    x, y = make((2, 3, 256, 256), torch.float32), make((2, 3, 256, 256), torch.float32)
    out = fastot.quadratic_cost(x, y, 1e-5, backend=CPU_FUSED)
    torch.testing.assert_close(out.double(), _expected(x, y, 1e-5), rtol=1e-6, atol=0)


def test_gradient_for_one_input_only():
    # The map loss needs d cost / d T(x) only: the other gradient must not be computed wrongly.
    x = make((3, 8), torch.float64)
    y = make((3, 8), torch.float64, requires_grad=True)
    (gy,) = torch.autograd.grad(fastot.quadratic_cost(x, y, 0.5, backend=CPU_FUSED).sum(), y)
    torch.testing.assert_close(gy, (y - x).detach())


def test_no_cancellation_for_large_norms():
    x = torch.full((2, 64), 1e4, dtype=torch.float32)
    y = x + 1e-2
    out = fastot.quadratic_cost(x, y, backend=CPU_FUSED)
    torch.testing.assert_close(out.double(), _expected(x, y, 1.0), rtol=1e-3, atol=0)


def test_gradcheck_and_gradgradcheck():
    x = make((3, 2, 3), torch.float64, requires_grad=True)
    y = make((3, 2, 3), torch.float64, requires_grad=True)

    def f(a, b):
        return fastot.quadratic_cost(a, b, 0.7, backend=CPU_FUSED)

    assert torch.autograd.gradcheck(f, (x, y))
    assert torch.autograd.gradgradcheck(f, (x, y))


def test_empty_batch_returns_empty():
    x = torch.empty(0, 3, 4)
    out = fastot.quadratic_cost(x, x, backend=CPU_FUSED)
    assert out.shape == (0,)


def test_nan_and_inf_propagate():
    x = make((3, 5), torch.float32)
    y = x.clone()
    x[1, 2] = float("nan")
    x[2, 0] = float("inf")
    out = fastot.quadratic_cost(x, y, backend=CPU_FUSED)
    assert out[0] == 0 and out[1].isnan() and out[2].isinf()
