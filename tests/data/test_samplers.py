"""Toy samplers: exact mixture laws, seeding, any batch size; the OU closed form."""

from __future__ import annotations

import math

import pytest
import torch

from fastot.data import IMAGE_SAMPLERS, SAMPLERS, build_sampler, ou_parameters, ou_solution
from fastot.train.errors import ConfigError

N = 200_000


def _draw(name, n=N, **kw):
    return build_sampler({"name": name, **kw}, "data.target").sample(n, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", sorted(set(SAMPLERS) - set(IMAGE_SAMPLERS)))
def test_seeded_any_batch_size(name):
    s = build_sampler({"name": name}, "data.target")
    for n in (1, 7, 25, 33):
        a = s.sample(n, torch.Generator().manual_seed(3))
        assert a.shape == (n, s.dim) and a.dtype == torch.float32 and torch.isfinite(a).all()
    a = s.sample(50, torch.Generator().manual_seed(3))
    b = s.sample(50, torch.Generator().manual_seed(3))
    c = s.sample(50, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_outlier_mixture():
    x = _draw("outlier_1d")[:, 0]
    assert (x < 0).float().mean().item() == pytest.approx(0.01 * 0.9772 + 0.99 * 0.0228, abs=2e-3)
    assert x.mean().item() == pytest.approx(0.99 - 0.01, abs=0.01)
    assert x.var().item() == pytest.approx(0.25 + 0.99 * 0.01 * 4, abs=0.01)


def test_table1_pair():
    src = _draw("table1_source")[:, 0]
    tgt = _draw("table1_target")[:, 0]
    assert src.mean().item() == pytest.approx(0.0, abs=0.01)
    assert src.var().item() == pytest.approx(1.25, abs=0.02)
    assert tgt.mean().item() == pytest.approx(1.0, abs=0.01)  # -1/3 + 4/3
    assert tgt.var().item() == pytest.approx(0.25 + (1 / 3 * 1 + 2 / 3 * 4) - 1.0, abs=0.03)
    assert ((tgt > 0.5).float().mean().item()) == pytest.approx(2 / 3 * 0.9987 + 1 / 3 * 0.0013, abs=5e-3)


def test_25_gaussian_grid():
    x = _draw("25gaussians")
    centres = torch.round(x / 3) * 3
    assert set(centres.unique().tolist()) == {-6.0, -3.0, 0.0, 3.0, 6.0}
    # Covariance 0.005 I, as the reference dataset draws it (std 0.0707).
    assert (x - centres).std().item() == pytest.approx(0.005**0.5, rel=0.02)
    _, counts = torch.unique(centres, dim=0, return_counts=True)
    assert len(counts) == 25 and (counts.float() / N - 1 / 25).abs().max() < 0.003


def test_eight_gaussians_and_circles():
    x = _draw("8gaussians")
    ang = torch.atan2(x[:, 1], x[:, 0])
    assert x.norm(dim=1).mean().item() == pytest.approx(12.0, abs=0.1)
    k = torch.round(ang / (math.pi / 4)) % 8
    _, counts = torch.unique(k, return_counts=True)
    assert len(counts) == 8
    r = _draw("two_circles").norm(dim=1)
    assert ((r - 4).abs() < 1).float().mean().item() == pytest.approx(0.5, abs=0.01)
    assert ((r - 8).abs() < 1).float().mean().item() == pytest.approx(0.5, abs=0.01)
    assert (r - torch.where(r < 6, 4.0, 8.0)).std().item() == pytest.approx(0.2, rel=0.05)
    c = _draw("noisy_circle").norm(dim=1)
    assert c.mean().item() == pytest.approx(3.0, abs=0.01)


def test_uniform_moons_three_gaussians():
    u = _draw("uniform")
    assert u.min().item() >= -2 and u.max().item() <= 2
    assert u.mean(0).abs().max().item() < 0.02 and u.var(0).sub(16 / 12).abs().max().item() < 0.02
    m = _draw("moons", noise=0.0)
    outer = m + torch.tensor([0.5, 0.25])
    on_outer = (outer.norm(dim=1) - 1).abs() < 1e-5
    on_inner = ((outer - torch.tensor([1.0, 0.5])).norm(dim=1) - 1).abs() < 1e-5
    assert (on_outer | on_inner).all()
    g = _draw("3gaussians")
    assert g.mean(0).abs().max().item() < 0.02  # three equal modes at 120 degrees


def test_ou_closed_form_matches_simulation():
    dim, t = 3, 0.5
    a, b = ou_parameters(dim, seed=1)
    eig = torch.linalg.eigvalsh(a)
    assert (eig >= 0.5 - 1e-9).all() and (eig <= 2 + 1e-9).all()
    mean, cov = ou_solution(dim, t, seed=1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(100_000, dim, generator=g, dtype=torch.float64)
    steps = 200
    dt = t / steps
    for _ in range(steps):  # Euler-Maruyama for dX = -A(X - b) dt + sqrt(2) dW
        noise = torch.randn(x.shape, generator=g, dtype=torch.float64)
        x = x - (x - b) @ a.T * dt + math.sqrt(2 * dt) * noise
    torch.testing.assert_close(x.mean(0), mean, atol=0.02, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), cov, atol=0.03, rtol=0)
    # t -> infinity: the stationary law N(b, A^-1), which the target sampler draws
    m_inf, c_inf = ou_solution(dim, 50.0, seed=1)
    y = (
        build_sampler({"name": "ou_target", "dim": dim, "seed": 1}, "data.target")
        .sample(100_000, torch.Generator().manual_seed(0))
        .double()
    )
    torch.testing.assert_close(y.mean(0), m_inf, atol=0.02, rtol=0)
    torch.testing.assert_close(torch.cov(y.T), c_inf, atol=0.03, rtol=0)
    m0, c0 = ou_solution(dim, 0.0, seed=1)
    torch.testing.assert_close(c0, torch.eye(dim, dtype=torch.float64))
    assert m0.abs().max() < 1e-12


def test_unknown_sampler_or_argument_names_the_key():
    with pytest.raises(ConfigError) as e:
        build_sampler({"name": "no_such_sampler"}, "data.target")
    assert e.value.key == "data.target.name"
    with pytest.raises(ConfigError) as e:
        build_sampler({"name": "25gaussians", "radius": 2}, "data.target")
    assert e.value.key == "data.target.radius"
