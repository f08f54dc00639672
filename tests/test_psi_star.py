import math

import numpy as np
import pytest
import torch
from fastot_testing import CPU_FUSED, DTYPES, FUSED, TOL, assert_close, backends, check, shifted
from scipy.optimize import minimize_scalar

import fastot
from fastot.ops.psi_star import PSI_KINDS, reference, reference_grad

KINDS = PSI_KINDS


def _entropy(p: float) -> float:
    return sum(q * math.log(q) for q in (p, 1.0 - p) if q > 0)


# The divergence generators Psi whose convex conjugates the kinds are: (Psi, domain of x).
PRIMAL = {
    "kl": (lambda x: x * math.log(x) - x + 1 if x > 0 else 1.0, (0.0, 60.0)),
    "chi2": (lambda x: (x - 1.0) ** 2, (0.0, 60.0)),
    "softplus_unscaled": (_entropy, (0.0, 1.0)),
    "softplus": (lambda x: 2 * _entropy(x / 2) + 2 * math.log(2), (0.0, 2.0)),
}


@pytest.mark.parametrize("kind", sorted(PRIMAL))
def test_conjugate_matches_numerical_sup(kind):
    # psi_star(t) = sup_x (x t - Psi(x)), computed by bounded 1-d maximisation.
    psi, (lo, hi) = PRIMAL[kind]
    ts = np.linspace(-4.0, 3.0, 29)
    numeric = []
    for t in ts:
        res = minimize_scalar(
            lambda x, t=t: -(x * t - psi(x)), bounds=(lo, hi), method="bounded", options={"xatol": 1e-10}
        )
        # The sup may sit on the boundary of the domain (x = 0 for chi2 below t = -2).
        numeric.append(max(-res.fun, lo * t - psi(lo)))
    got = fastot.psi_star(torch.tensor(ts), kind, backend=CPU_FUSED)
    np.testing.assert_allclose(got.numpy(), numeric, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_convex_and_non_decreasing(kind):
    t = torch.linspace(-10, 10, 2001, dtype=torch.float64)
    v = fastot.psi_star(t, kind, backend=CPU_FUSED)
    assert (v.diff() >= -1e-12).all()
    assert (v.diff().diff() >= -1e-9).all()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha", [1.0, 0.2, 5.0])
@pytest.mark.parametrize("contiguous", [True, False])
def test_forward_backward_match_reference(backend, kind, dtype, alpha, contiguous):
    # float16 tops out at 65504: e^(t / 0.2) must stay below it for kl.
    t = backend.leaf((7, 9), dtype, contiguous, scale=0.5 if dtype == torch.float16 else 3.0)
    out = fastot.psi_star(t, kind, alpha, backend=backend.name)
    td = t.detach().cpu().double().requires_grad_()
    exp = reference(td, kind, alpha)
    assert out.shape == t.shape and out.dtype == dtype

    def rounded(e):  # kl overflows float16 where float64 does not: compare in the output dtype
        e = e.to(dtype).double()
        return e, max(1.0, e[e.isfinite()].abs().max().item())

    exp_r, scale = rounded(exp)
    assert_close(out.cpu(), exp_r, dtype, scale=scale)
    g = torch.randn(t.shape, dtype=torch.float64)
    (gt,) = torch.autograd.grad(out, t, backend.to(g.to(dtype)))
    (et,) = torch.autograd.grad(exp, td, g)
    et_r, scale = rounded(et)
    assert_close(gt.cpu(), et_r, dtype, scale=scale)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", [(3, 5, 7), (100003,)])
def test_any_shape_and_second_derivative(backend, dtype, kind, shape):
    # A strided [3, 5, 7] view, and an odd length with a tail after the vector loop.
    if dtype == torch.float16 and len(shape) == 1:
        pytest.skip("kl of this many samples of scale 3 overflows float16")
    t = backend.leaf(shape, dtype, len(shape) == 1, scale=3.0)
    out = fastot.psi_star(t, kind, 0.8, backend=backend.name)
    td = t.detach().cpu().double().requires_grad_()
    exp = reference(td, kind, 0.8)
    check(out, exp, dtype, floor=1.0)
    g = torch.randn(shape, dtype=torch.float64)
    (gt,) = torch.autograd.grad(out, t, backend.to(g.to(dtype)), create_graph=True)
    (et,) = torch.autograd.grad(exp, td, g, create_graph=True)
    check(gt.detach(), et.detach(), dtype, floor=1e-3)
    if dtype in (torch.float32, torch.float64) and kind != "identity":
        # The saved derivative output is itself differentiable. Its formula (shared by every
        # backend) runs in the input dtype, so half types are left out. softplus's second
        # derivative s (1 - s) cancels terms of order 1: compared absolutely at that scale.
        (g2,) = torch.autograd.grad(gt.sum(), t)
        (e2,) = torch.autograd.grad(et.sum(), td)
        check(g2, e2, dtype, floor=1.0)


# The interpreter evaluates in numpy, which warns on the intended overflows.
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("backend", backends(*FUSED), indirect=True)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extremes_of_the_compiled_op(backend, dtype):
    # Stable softplus / sigmoid at any magnitude, kl overflowing to +inf (never NaN), chi2 clamped at -2.
    vals = [-1e4, -1e3, -100.0, -20.0, -2.5, -2.0, -1.5, -1e-8, 0.0, 1e-8, 0.5, 20.0, 88.0, 89.0, 100.0, 1e4]
    t = torch.tensor(vals, dtype=dtype, device=backend.device)
    atol, rtol = TOL[dtype]
    for kind in KINDS:
        value, deriv = backend.op("psi_star")(t, kind, 1.0)
        assert not value.isnan().any() and not deriv.isnan().any(), kind
        exp_v, exp_d = reference(t.cpu(), kind, 1.0), reference_grad(t.cpu(), kind, 1.0)
        torch.testing.assert_close(value.cpu(), exp_v, rtol=rtol, atol=atol, msg=kind)
        torch.testing.assert_close(deriv.cpu(), exp_d, rtol=rtol, atol=atol, msg=kind)
    value, deriv = backend.op("psi_star")(t, "kl", 1.0)
    overflow = t > 709.0 if dtype == torch.float64 else t > 88.8
    assert value[overflow].eq(float("inf")).all() and deriv[overflow].eq(float("inf")).all()


@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck_and_gradgradcheck(backend, kind):
    # Keep away from chi2's kink at t = -2 alpha, where the derivative jumps.
    t = backend.to(torch.rand(6, dtype=torch.float64) * 3 - 1).requires_grad_()

    def f(a):
        return fastot.psi_star(a, kind, 0.8, backend=backend.name)

    assert torch.autograd.gradcheck(f, (t,))
    assert torch.autograd.gradgradcheck(f, (t,))


@pytest.mark.parametrize("kind", ["softplus", "softplus_unscaled", "chi2", "identity"])
def test_stable_for_huge_arguments_in_float32(kind):
    t = torch.tensor([-1e4, -100.0, 0.0, 100.0, 1e4], requires_grad=True)
    v = fastot.psi_star(t, kind, backend=CPU_FUSED)
    (g,) = torch.autograd.grad(v.sum(), t)
    assert torch.isfinite(v).all() and torch.isfinite(g).all()
    if kind.startswith("softplus"):
        factor = 2.0 if kind == "softplus" else 1.0
        assert v[-1].item() == pytest.approx(factor * 1e4 - (2 * math.log(2) if factor == 2 else 0), rel=1e-6)
        assert g[0].item() == 0.0 and g[-1].item() == pytest.approx(factor)


def test_kl_overflows_to_inf_not_nan():
    # Documented: kl = e^t - 1 overflows like exp (t > ~88.7 in float32) to +inf; never NaN.
    t = torch.tensor([-1e4, 80.0, 89.0, 1e4], requires_grad=True)
    v = fastot.psi_star(t, "kl", backend=CPU_FUSED)
    (g,) = torch.autograd.grad(v.sum(), t)
    assert v[0] == -1 and torch.isfinite(v[1])
    assert v[2].isposinf() and v[3].isposinf() and g[3].isposinf()
    assert not v.isnan().any() and not g.isnan().any()


def test_alpha_scaling_tends_to_identity():
    t = torch.linspace(-2, 2, 11, dtype=torch.float64)
    for kind in ("kl", "chi2", "softplus"):
        v = fastot.psi_star(t, kind, alpha=1e6, backend=CPU_FUSED)
        torch.testing.assert_close(v, t, atol=1e-5, rtol=0)


def test_unknown_kind_lists_the_kinds():
    with pytest.raises(ValueError, match="kl, chi2, softplus"):
        fastot.psi_star(torch.zeros(3), "js")


@pytest.mark.parametrize("backend", backends(*FUSED), indirect=True)
def test_compiled_op_lists_the_kinds_of_python(backend):
    # Each language lists the kinds once (C++: FASTOT_PSI_KINDS); the lists agree, in order.
    with pytest.raises(ValueError, match=f"kind must be one of {', '.join(PSI_KINDS)}; got 'js'"):
        backend.op("psi_star")(torch.zeros(3, device=backend.device), "js", 1.0)


def test_empty_input(backend):
    assert fastot.psi_star(backend.to(torch.empty(0, 5)), "kl", backend=backend.name).shape == (0, 5)


@pytest.mark.parametrize("backend", backends("cuda"), indirect=True)
def test_misaligned_input(backend):
    # Starting one element into a buffer: the CUDA kernel takes its scalar path.
    x = shifted((4, 1024), backend.device)
    assert x.is_contiguous() and x.data_ptr() % 16 != 0
    got = torch.ops.fastot.psi_star(x, "softplus", 0.7)[0]
    assert_close(got, reference(x.double(), "softplus", 0.7), torch.float32)


def test_zero_dim_input():
    out = fastot.psi_star(torch.tensor(0.5, dtype=torch.float64), "kl", backend=CPU_FUSED)
    assert out.shape == () and out.item() == pytest.approx(math.expm1(0.5))


# The float32 exp / expm1 / log1p of the fused kernels are their own polynomials (csrc/common/math.h,
# also run by the CUDA kernels): check them against float64 truth, as multiples of float32's eps.
_S = torch.cat(
    [
        torch.linspace(-87.0, 88.0, 1_000_001),
        torch.logspace(-30, 1.9, 50_000),
        -torch.logspace(-30, 1.9, 50_000),
    ]
)
_TRUTH = {
    "kl": (torch.expm1, torch.exp),
    "softplus_unscaled": (lambda s: torch.logaddexp(s, torch.zeros_like(s)), torch.sigmoid),
}


@pytest.mark.parametrize("backend", backends(*FUSED), indirect=True)
@pytest.mark.parametrize("kind", sorted(_TRUTH))
def test_float32_math_within_a_few_ulp_of_float64(backend, kind):
    # On a GPU this checks what no CPU run can: the compiled exp/log (Triton's float32 tl.exp
    # lowers to an approximate instruction). The interpreter takes every 8th point.
    s = _S[::8] if backend.name == "triton" and backend.device == "cpu" else _S
    t = backend.to(s).requires_grad_()
    v = fastot.psi_star(t, kind, backend=backend.name)
    (g,) = torch.autograd.grad(v.sum(), t)
    v, g = v.cpu(), g.cpu()
    sd = s.double()
    for got, truth in ((v, _TRUTH[kind][0](sd)), (g, _TRUTH[kind][1](sd))):
        finite = truth.abs() <= torch.finfo(torch.float32).max
        rel = (got.detach().double() - truth).abs()[finite] / truth.abs()[finite]
        assert rel.max() <= 3 * torch.finfo(torch.float32).eps
        assert got[~finite].isposinf().all()


def test_special_values_propagate():
    t = torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0, 1e-30, -1e-30, -103.0, -200.0])
    for kind in KINDS:
        fused = fastot.psi_star(t, kind, backend=CPU_FUSED)
        ref = fastot.psi_star(t, kind, backend="eager")
        torch.testing.assert_close(fused, ref, equal_nan=True, rtol=1e-6, atol=0, msg=kind)
    kl = fastot.psi_star(t, "kl", backend=CPU_FUSED)
    assert kl[4].item() == pytest.approx(1e-30, rel=1e-6) and kl[6].item() == pytest.approx(-1.0)


@pytest.mark.parametrize("backend", ["eager", CPU_FUSED])
def test_softplus_derivative_at_zero_is_half(backend):
    # max(s, 0) + log1p(e^-|s|) differentiates to 1 at s = 0 under autograd; the derivative is 1/2.
    t = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(fastot.psi_star(t, "softplus_unscaled", backend=backend).sum(), t)
    assert torch.equal(g, torch.full_like(g, 0.5))


# ---------------------------------------------------------------------------- the cross-op tables
# tests/test_errors.py, tests/test_registration.py and tests/test_build.py run every op through
# these (tests/test_op_stems.py checks that each op's file defines them).


def error_call(x, y, ys):
    """The op on well-formed x [B, d], y [B, d], ys [B, Z, d]: what the bad-input checks vary."""
    return lambda b: fastot.psi_star(x, "kl", backend=b)


def compile_call(x, y, backend):
    """A scalar or vector of the op on two [B, d] leaves, for torch.compile(fullgraph=True)."""
    return fastot.psi_star(x, "softplus", 0.5, backend=backend).sum(1)


def opcheck_cases(m, op):
    """(op, arguments) pairs for torch.library.opcheck; ``m(*shape)`` makes an input."""
    return [(op("psi_star"), (m(3, 5), "softplus", 0.7)), (op("psi_star"), (m(6), "kl", 1.0))]


def triton_cuda_jobs(k):
    """(kernel, constexprs, pointers accumulating in float32 / float64) for every kernel of the op's
    Triton module ``k``: tests/test_build.py compiles each for a CUDA target."""
    return [(k._psi_star_kernel, {"KIND": kind, "BLOCK_D": 1024}, ()) for kind in range(5)]
