"""semi_dual_loss on every backend against its float64 reference."""

import itertools

import pytest
import torch
from fastot_testing import CPU_FUSED, DTYPES, check, make

import fastot
from fastot.ops.psi_star import PSI_KINDS
from fastot.ops.semi_dual_loss import reference

PAIRS = list(itertools.product(PSI_KINDS, repeat=2))
SOME_PAIRS = [("kl", "kl"), ("identity", "chi2"), ("softplus", "softplus_unscaled"), ("chi2", "identity")]
# (B, M, score shape): [B] scores, [B, 1] ones as a critic returns them, and batches large
# enough for the multi-block paths.
CASES = [(*kinds, 9, 6, "[B]") for kinds in PAIRS] + [
    (*kinds, b, m, "[B, 1]") for kinds in SOME_PAIRS for b, m in ((37, 21), (5001, 3333))
]


def _inputs(dtype, b=9, m=6, requires_grad=True):
    cost = make((b,), dtype).abs().requires_grad_(requires_grad)
    return (
        cost,
        make((b,), dtype, requires_grad=requires_grad),
        make((m,), dtype, requires_grad=requires_grad),
    )


@pytest.mark.parametrize("psi_source,psi_target,b,m,scores", CASES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_backward_match_reference(backend, psi_source, psi_target, b, m, scores, dtype):
    shape = (b,) if scores == "[B]" else (b, 1)
    cost = backend.to(make(shape, dtype).abs()).requires_grad_()
    fake, real = backend.leaf(shape, dtype), backend.leaf((m,), dtype)
    out = fastot.semi_dual_loss(cost, fake, real, psi_source, psi_target, 0.7, backend=backend.name)
    ins = [t.detach().cpu().double().flatten().requires_grad_() for t in (cost, fake, real)]
    exp = reference(*ins, psi_source, psi_target, 0.7)
    check(out, exp, dtype, floor=1.0)
    g = torch.randn((), dtype=torch.float64)
    got = torch.autograd.grad(out, (cost, fake, real), backend.to(g.to(dtype)))
    want = torch.autograd.grad(exp, ins, g)
    for a, e in zip(got, want, strict=True):
        check(a.flatten(), e, dtype, floor=1e-3)


def test_scores_of_shape_b1_and_different_batch_sizes():
    cost, fake, real = _inputs(torch.float64, b=5, m=8, requires_grad=False)
    a = fastot.semi_dual_loss(cost[:, None], fake[:, None], real[:, None], backend=CPU_FUSED)
    b = reference(cost, fake, real)
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("psi_source,psi_target", [("kl", "softplus"), ("chi2", "identity")])
def test_gradcheck_and_gradgradcheck(backend, psi_source, psi_target):
    cost, fake, real = (backend.to(t.detach()).requires_grad_() for t in _inputs(torch.float64, b=4, m=3))

    def f(c, v, r):
        return fastot.semi_dual_loss(c, v, r, psi_source, psi_target, 0.9, backend=backend.name)

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


# ---------------------------------------------------------------------------- the cross-op tables
# tests/test_errors.py, tests/test_registration.py and tests/test_build.py run every op through
# these (tests/test_op_stems.py checks that each op's file defines them).


def error_call(x, y, ys):
    """The op on well-formed x [B, d], y [B, d], ys [B, Z, d]: what the bad-input checks vary."""
    return lambda b: fastot.semi_dual_loss(x[:, 1], y[:, 0], y[:, 1], backend=b)


def compile_call(x, y, backend):
    """A scalar or vector of the op on two [B, d] leaves, for torch.compile(fullgraph=True)."""
    return fastot.semi_dual_loss(x.sum(1).abs(), y.sum(1), x[:, 0], "kl", "kl", backend=backend)


def opcheck_cases(m, op):
    """(op, arguments) pairs for torch.library.opcheck; ``m(*shape)`` makes an input."""
    return [(op("semi_dual_loss"), (m(5, positive=True), m(5), m(3), "kl", "chi2", 1.0))]


def triton_cuda_jobs(k):
    """(kernel, constexprs, pointers accumulating in float32 / float64) for every kernel of the op's
    Triton module ``k``: tests/test_build.py compiles each for a CUDA target."""
    return [(k._semi_dual_loss_kernel, {"SOURCE": 1, "TARGET": 3, "BLOCK": 1024}, ("part_ptr",))]
