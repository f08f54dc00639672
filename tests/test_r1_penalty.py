import pytest
import torch
from fastot_testing import CPU_FUSED, DTYPES, assert_close, make

import fastot
from fastot.ops import _reference

SHAPES = [(1, 1), (6, 1), (1, 9), (4, 3, 5, 7), (2, 3, 64, 64), (1, 3, 256, 256)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("contiguous", [True, False])
def test_forward_backward_match_reference(shape, dtype, contiguous):
    g = make(shape, dtype, contiguous, requires_grad=True)
    out = fastot.r1_penalty(g, 0.2, backend=CPU_FUSED)
    gd = g.detach().double().requires_grad_()
    exp = _reference.r1_penalty(gd.flatten(1), 0.2)
    assert out.shape == () and out.dtype == dtype
    assert_close(out, exp, dtype, scale=max(1.0, exp.item()))
    w = torch.randn((), dtype=torch.float64)
    (got,) = torch.autograd.grad(out, g, w.to(dtype))
    (want,) = torch.autograd.grad(exp, gd, w)
    assert_close(got, want, dtype, scale=max(1e-3, want.abs().max().item()))


def test_gradcheck_and_gradgradcheck():
    g = make((3, 2, 2), torch.float64, requires_grad=True)

    def f(a):
        return fastot.r1_penalty(a, 0.5, backend=CPU_FUSED)

    assert torch.autograd.gradcheck(f, (g,))
    assert torch.autograd.gradgradcheck(f, (g,))


def _mlp() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.SiLU(), torch.nn.Linear(8, 1)).double()


def test_r1_regularizer_trains_the_potential_through_double_backward():
    # The parameter gradient of R1 needs d/dtheta of grad_x v: it must equal eager's.
    torch.manual_seed(1)
    net = _mlp()
    real = make((5, 3), torch.float64)
    # The output bias does not change grad_x v, so it gets no R1 gradient.
    params = [p for name, p in net.named_parameters() if name != "2.bias"]
    fused = fastot.r1_regularizer(net, real, 0.3, backend=CPU_FUSED)
    g_fused = torch.autograd.grad(fused, params)
    eager = fastot.r1_regularizer(net, real, 0.3, backend="eager")
    g_eager = torch.autograd.grad(eager, params)
    torch.testing.assert_close(fused, eager)
    for a, b in zip(g_fused, g_eager, strict=True):
        torch.testing.assert_close(a, b)
        assert a.abs().sum() > 0


def test_gradgradcheck_through_an_mlp_potential():
    torch.manual_seed(2)
    net = _mlp()
    real = make((4, 3), torch.float64, requires_grad=True)

    def f(x):
        (grad,) = torch.autograd.grad(net(x).sum(), x, create_graph=True)
        return fastot.r1_penalty(grad, 0.7, backend=CPU_FUSED)

    assert torch.autograd.gradcheck(f, (real,))
    assert torch.autograd.gradgradcheck(f, (real,))


def test_negative_weight_rejected():
    with pytest.raises(ValueError, match="weight must be >= 0"):
        fastot.r1_penalty(torch.ones(2, 3), -1.0)
