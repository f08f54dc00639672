import itertools

import pytest
import torch
from fastot_testing import CPU_FUSED, DTYPES, assert_close, make

import fastot
from fastot.ops import _reference

PAIRS = list(itertools.product(_reference.PSI_KINDS, repeat=2))


def _inputs(dtype, b=9, m=6, requires_grad=True):
    cost = make((b,), dtype).abs().requires_grad_(requires_grad)
    return (
        cost,
        make((b,), dtype, requires_grad=requires_grad),
        make((m,), dtype, requires_grad=requires_grad),
    )


@pytest.mark.parametrize("psi_source,psi_target", PAIRS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_backward_match_reference(psi_source, psi_target, dtype):
    cost, fake, real = _inputs(dtype)
    out = fastot.semi_dual_loss(cost, fake, real, psi_source, psi_target, 0.7, backend=CPU_FUSED)
    assert out.shape == () and out.dtype == dtype
    ins = [t.detach().double().requires_grad_() for t in (cost, fake, real)]
    exp = _reference.semi_dual_loss(*ins, psi_source, psi_target, 0.7)
    assert_close(out, exp, dtype, scale=max(1.0, abs(exp.item())))
    g = torch.randn((), dtype=torch.float64)
    got = torch.autograd.grad(out, (cost, fake, real), g.to(dtype))
    want = torch.autograd.grad(exp, ins, g)
    for a, e in zip(got, want, strict=True):
        assert_close(a, e, dtype, scale=max(1.0, e.abs().max().item()))


def test_scores_of_shape_b1_and_different_batch_sizes():
    cost, fake, real = _inputs(torch.float64, b=5, m=8, requires_grad=False)
    a = fastot.semi_dual_loss(cost[:, None], fake[:, None], real[:, None], backend=CPU_FUSED)
    b = _reference.semi_dual_loss(cost, fake, real)
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("psi_source,psi_target", [("kl", "softplus"), ("chi2", "identity")])
def test_gradcheck_and_gradgradcheck(psi_source, psi_target):
    cost, fake, real = _inputs(torch.float64, b=4, m=3)

    def f(c, v, r):
        return fastot.semi_dual_loss(c, v, r, psi_source, psi_target, 0.9, backend=CPU_FUSED)

    assert torch.autograd.gradcheck(f, (cost, fake, real))
    assert torch.autograd.gradgradcheck(f, (cost, fake, real))


def test_identity_pair_is_the_ot_loss():
    # OTM: Psi* = identity on both sides gives mean(v_fake - cost) - mean(v_real) exactly.
    cost, fake, real = _inputs(torch.float64, requires_grad=False)
    out = fastot.semi_dual_loss(cost, fake, real, "identity", "identity", backend=CPU_FUSED)
    torch.testing.assert_close(out, (fake - cost).mean() - real.mean())


def test_mismatched_cost_and_fake_shapes():
    cost, fake, real = _inputs(torch.float32, requires_grad=False)
    with pytest.raises(ValueError, match=r"cost and v_fake.*\[9\] and \[8\]"):
        fastot.semi_dual_loss(cost, fake[:8], real)


def test_empty_batch_is_an_error_not_nan():
    cost, fake, real = _inputs(torch.float32, requires_grad=False)
    with pytest.raises(ValueError, match="v_real is an empty batch"):
        fastot.semi_dual_loss(cost, fake, real[:0])
