"""fastot.groundtruth against closed forms and an independent unbalanced solver."""

from __future__ import annotations

import math

import pytest
import torch

from fastot import groundtruth as gt
from fastot.data.toy import Gaussian, Mixture, outlier_1d


def _grid_1d(mean: float, std: float, n: int = 300) -> gt.Measure:
    return gt.discretize(Gaussian(1, mean, std), n)


def _cdf(m: gt.Measure, at: torch.Tensor) -> torch.Tensor:
    return (m.weights[None, :] * (m.points[None, :, 0] <= at[:, None])).sum(1)


def test_discretize_keeps_mass_mean_and_std_of_a_mixture() -> None:
    m = gt.discretize(Mixture(torch.tensor([[-1.0], [2.0]]), 0.5, [1 / 3, 2 / 3]), 800)
    mean = float((m.weights * m.points[:, 0]).sum())
    var = float((m.weights * (m.points[:, 0] - mean) ** 2).sum())
    true_mean = -1 / 3 + 4 / 3
    true_var = 0.25 + (1 / 3 * 1 + 2 / 3 * 4) - true_mean**2
    assert abs(mean - true_mean) < 1e-3 and abs(var - true_var) < 2e-3


def test_quantile_map_is_the_affine_map_between_gaussians() -> None:
    mu, nu = _grid_1d(0.0, 1.0), _grid_1d(2.0, 0.5)
    x = torch.linspace(-2, 2, 9, dtype=torch.float64)
    torch.testing.assert_close(gt.quantile_map(mu, nu, x), 2 + 0.5 * x, atol=0.02, rtol=0)


def test_balanced_semi_dual_recovers_the_quantile_map_in_1d() -> None:
    mu = _grid_1d(0.0, 1.0)
    nu = gt.discretize(Mixture(torch.tensor([[-1.0], [2.0]]), 0.5, [1 / 3, 2 / 3]), 300)
    sol = gt.solve_semi_dual(mu, nu, tau=0.05, psi_source="identity", psi_target="identity")
    x = torch.linspace(-2, 2, 17, dtype=torch.float64)
    torch.testing.assert_close(sol.map(x), gt.quantile_map(mu, nu, x), atol=0.05, rtol=0)
    assert sol.mismatch < 1e-6
    # Balanced: the plan keeps both marginals.
    assert torch.allclose(sol.source_density, torch.ones_like(sol.source_density))


def test_gaussian_to_gaussian_map_in_2d_matches_the_closed_form() -> None:
    g = torch.Generator().manual_seed(0)
    n = 500
    x = torch.randn(n, 2, generator=g, dtype=torch.float64)
    cov = torch.tensor([[2.0, 0.6], [0.6, 0.5]], dtype=torch.float64)
    m = torch.tensor([3.0, -1.0], dtype=torch.float64)
    y = m + torch.randn(n, 2, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    w = torch.full((n,), 1.0 / n, dtype=torch.float64)
    sol = gt.solve_semi_dual(
        gt.Measure(x, w), gt.Measure(y, w), tau=0.5, psi_source="identity", psi_target="identity"
    )
    # N(0, I) -> N(m, S): T(x) = m + S^{1/2} x (the symmetric square root).
    evals, evecs = torch.linalg.eigh(cov)
    exact = m + x @ (evecs @ torch.diag(evals.sqrt()) @ evecs.T)
    rms = (sol.transported - exact).square().sum(1).mean().sqrt()
    assert rms < 0.3, rms  # sampling noise of 500 points; the identity would be ~3.5 off
    assert (x - exact).square().sum(1).mean().sqrt() > 3


def test_uot_with_a_vanishing_cost_generates_the_target() -> None:
    mu, nu = _grid_1d(0.0, 1.0, 200), gt.discretize(outlier_1d(0.05, 0.5), 200)
    sol = gt.solve_semi_dual(mu, nu, tau=1e-4, psi_source="kl", psi_target="kl")
    at = torch.linspace(-2, 3, 21, dtype=torch.float64)
    assert float((_cdf(sol.pushforward(), at) - _cdf(nu, at)).abs().max()) < 0.03


def test_uot_with_huge_marginal_weights_is_balanced_ot() -> None:
    mu, nu = _grid_1d(0.0, 1.0, 250), gt.discretize(outlier_1d(0.05, 0.5), 250)
    x = torch.linspace(-1.5, 1.5, 13, dtype=torch.float64)
    # alpha * KL*(t / alpha) is the conjugate of alpha * KL: alpha -> inf enforces the marginals.
    strict = gt.solve_semi_dual(mu, nu, tau=0.05, psi_source="kl", psi_target="kl", alpha=1e3)
    torch.testing.assert_close(strict.map(x), gt.quantile_map(mu, nu, x), atol=0.05, rtol=0)
    loose = gt.solve_semi_dual(mu, nu, tau=0.05, psi_source="kl", psi_target="kl")
    assert float((loose.map(x) - gt.quantile_map(mu, nu, x)).abs().max()) > 0.1  # unbalanced really differs


def test_source_fixed_uot_keeps_the_source_and_reweights_the_target() -> None:
    mu, nu = _grid_1d(0.0, 1.0, 200), gt.discretize(outlier_1d(0.05, 0.5), 200)
    sol = gt.solve_semi_dual(mu, nu, tau=0.05, psi_source="identity", psi_target="kl")
    assert torch.allclose(sol.source_density, torch.ones_like(sol.source_density))
    # Half of N(0, 1) lies below 0, closer to the mode at -1 than to the mode at 1: the plan
    # up-weights the left mode, which is why T#mu has more mass below 0 than nu.
    tm = sol.target_marginal()
    assert float(tm.weights[tm.points[:, 0] < 0].sum()) > 1.1 * float(nu.weights[nu.points[:, 0] < 0].sum())


@pytest.mark.parametrize("kind", ["kl", "softplus", "chi2"])
def test_optimality_conditions_hold_for_every_divergence(kind: str) -> None:
    mu, nu = _grid_1d(0.0, 1.0, 150), gt.discretize(outlier_1d(0.05, 0.5), 150)
    sol = gt.solve_semi_dual(mu, nu, tau=0.05, psi_source=kind, psi_target=kind)
    assert sol.mismatch < 1e-6
    # The plan's mass is the same seen from either side, and the objective is below v = 0's.
    assert math.isclose(
        float((mu.weights * sol.source_density).sum()),
        float((nu.weights * sol.target_density).sum()),
        rel_tol=1e-5,
    )
    assert sol.objective < 0


def test_outlier_optimum_puts_more_mass_below_zero_than_the_data() -> None:
    # The finding docs/reproductions.md reports: UOT re-inflates the costly left tail in T#mu.
    mu, nu = gt.discretize(Gaussian(1), 400), gt.discretize(outlier_1d(0.01, 0.5), 400)
    pf = gt.solve_semi_dual(mu, nu, tau=0.05).pushforward()
    p_opt = float(pf.weights[pf.points[:, 0] < 0].sum())
    p_data = float(nu.weights[nu.points[:, 0] < 0].sum())
    assert abs(p_data - 0.0323) < 1e-3
    assert 0.045 < p_opt < 0.055


def test_kl_solution_agrees_with_pot_unbalanced_sinkhorn() -> None:
    pytest.importorskip("ot")
    mu, nu = _grid_1d(0.0, 1.0, 120), gt.discretize(outlier_1d(0.05, 0.5), 120)
    ours = gt.solve_semi_dual(mu, nu, tau=0.05, eps=2e-3)
    pot = gt.sinkhorn_unbalanced_map(mu, nu, tau=0.05, reg_m=1.0, eps=2e-3)
    central = mu.points[:, 0].abs() < 2
    diff = (ours.transported - pot)[central].abs().max()
    assert diff < 0.01, diff


def test_jko_steps_follow_the_gaussian_closed_form() -> None:
    # KL(.|N(0,1)) from N(2, 0.5^2): each step minimises KL(N(m,s^2)|N(0,1)) + tau((m-m')^2 + (s-s')^2),
    # so m <- 2 tau m / (1 + 2 tau) and s is the positive root of (1 + 2 tau) s^2 - 2 tau s' s - 1.
    tau, mean, std = 0.5, 2.0, 0.5
    for rho in gt.jko_steps(_grid_1d(mean, std), _grid_1d(0.0, 1.0), tau, 3):
        mean = 2 * tau * mean / (1 + 2 * tau)
        std = (tau * std + math.sqrt(tau**2 * std**2 + 1 + 2 * tau)) / (1 + 2 * tau)
        got_mean = float((rho.weights * rho.points[:, 0]).sum())
        got_std = float((rho.weights * (rho.points[:, 0] - got_mean) ** 2).sum().sqrt())
        assert abs(got_mean - mean) < 0.01 and abs(got_std - std) < 0.01


def test_bad_arguments_name_themselves() -> None:
    mu = _grid_1d(0.0, 1.0, 20)
    with pytest.raises(ValueError, match="tau"):
        gt.solve_semi_dual(mu, mu, tau=0.0)
    with pytest.raises(ValueError, match="eps"):
        gt.solve_semi_dual(mu, mu, tau=1.0, eps=-1.0)
    with pytest.raises(ValueError, match="steps"):
        gt.jko_steps(mu, mu, 1.0, 0)
    with pytest.raises(ValueError, match="weights"):
        gt.Measure(torch.zeros(3, 1), torch.ones(4))
