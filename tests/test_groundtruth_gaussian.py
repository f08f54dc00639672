"""fastot.groundtruth_gaussian: the closed forms against direct computation."""

from __future__ import annotations

import pytest
import torch

from fastot import groundtruth_gaussian as gg


def _random_cov(d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    return a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)


def test_bures_distance_of_commuting_gaussians_is_the_sum_of_their_std_gaps():
    a, b = torch.tensor([0.5, 2.0, 3.0]), torch.tensor([1.0, 0.2, 3.0])
    m1, m2 = torch.tensor([0.0, 1.0, 0.0]), torch.tensor([1.0, 1.0, -1.0])
    direct = float(((m1 - m2) ** 2).sum() + ((a.sqrt() - b.sqrt()) ** 2).sum())
    assert gg.bures_wasserstein2(m1, torch.diag(a), m2, torch.diag(b)) == pytest.approx(direct)


def test_bures_distance_is_symmetric_and_zero_on_itself():
    s1, s2 = _random_cov(6, 0), _random_cov(6, 1)
    m = torch.zeros(6, dtype=torch.float64)
    assert gg.bures_wasserstein2(m, s1, m, s1) == pytest.approx(0.0, abs=1e-9)
    assert gg.bures_wasserstein2(m, s1, m, s2) == pytest.approx(gg.bures_wasserstein2(m, s2, m, s1))


def test_the_ot_map_pushes_the_source_to_the_target_and_is_a_gradient():
    cov = _random_cov(5, 2)
    root = gg.sqrtm_psd(cov)
    assert torch.allclose(root @ root, cov, atol=1e-10)
    assert torch.allclose(root, root.T)  # symmetric: the map is the gradient of a convex function
    assert torch.linalg.eigvalsh(root).min() > 0


def test_one_jko_step_minimises_its_objective_directly():
    """In 1-D: the closed-form step against a grid search of KL(N(mu, s^2) | N(b, lam)) + W2^2 / (2h)."""
    b, lam, h = torch.tensor([1.5]), torch.tensor([[0.3]]), 0.7
    mean, cov, _ = gg.jko_gaussian(b, lam, h, 1)
    mu, s = torch.meshgrid(torch.linspace(-1, 3, 801), torch.linspace(0.05, 2, 781), indexing="ij")
    a = 1 / lam.item()
    kl = 0.5 * (a * s**2 + a * (mu - b.item()) ** 2 - 1 - torch.log(a * s**2))
    w2 = mu**2 + (s - 1) ** 2
    i = torch.argmin(kl + w2 / (2 * h))
    assert mean.item() == pytest.approx(mu.flatten()[i].item(), abs=0.01)
    assert cov.sqrt().item() == pytest.approx(s.flatten()[i].item(), abs=0.01)


def test_small_jko_steps_follow_the_continuous_flow_and_many_reach_the_target():
    cov, b = _random_cov(4, 3), torch.tensor([1.0, -1.0, 0.5, 0.0], dtype=torch.float64)
    mean, jcov, m = gg.jko_gaussian(b, cov, 1e-3, 1000)
    fmean, fcov = gg.ou_flow(b, cov, 1.0)
    assert gg.bures_wasserstein2(mean, jcov, fmean, fcov) < 1e-4
    assert torch.allclose(m @ m.T, jcov)
    mean, jcov, _ = gg.jko_gaussian(b, cov, 10.0, 200)
    assert gg.bures_wasserstein2(mean, jcov, b, cov) < 1e-8
    with pytest.raises(ValueError, match="h"):
        gg.jko_gaussian(b, cov, 0.0, 3)


def test_the_presets_closed_forms_follow_their_algorithm():
    from fastot.config import load_config

    otm = gg.problem_of(load_config("gaussian-digits-otm"))
    assert otm.flow_mean is None
    torch.testing.assert_close(otm.exact_cov, otm.target_cov)
    sjko = gg.problem_of(load_config("gaussian-digits-sjko"))
    assert sjko.flow_mean is not None
    assert not torch.allclose(sjko.exact_cov, sjko.target_cov)  # 5 JKO steps of h = 1 stop short of nu


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["algorithm.cost_mean=true"], "algorithm.cost_mean"),
        (["algorithm.psi_target=kl"], "algorithm: "),
    ],
)
def test_configs_without_a_closed_form_are_refused_by_name(overrides, named):
    from fastot.config import load_config

    preset = "gaussian-digits-sjko" if "cost_mean" in overrides[0] else "gaussian-digits-otm"
    with pytest.raises(ValueError, match=named):
        gg.problem_of(load_config(preset, overrides))
