"""Toy metrics against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fastot import metrics as M


def _gauss(n, mean, std, dim=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return mean + std * torch.randn(n, dim, generator=g)


def test_knn_kl_matches_gaussian_closed_form():
    # KL(N(0, 1) | N(1, 2^2)) = log 2 + (1 + 1) / 8 - 1/2
    p, q = _gauss(20000, 0.0, 1.0, seed=1), _gauss(20000, 1.0, 2.0, seed=2)
    exact = math.log(2) + 2 / 8 - 0.5
    assert M.knn_kl(p, q) == pytest.approx(exact, abs=0.03)
    # 2-D, independent coordinates: the KL doubles
    p2, q2 = _gauss(20000, 0.0, 1.0, dim=2, seed=3), _gauss(20000, 1.0, 2.0, dim=2, seed=4)
    assert M.knn_kl(p2, q2) == pytest.approx(2 * exact, abs=0.06)
    assert abs(M.knn_kl(_gauss(20000, 0, 1, seed=5), _gauss(20000, 0, 1, seed=6))) < 0.02


def test_energy_distance():
    a, b = _gauss(3000, 0, 1, seed=1), _gauss(3000, 0, 1, seed=2)
    assert abs(M.energy_distance(a, b)) < 0.01
    # 1-D N(0,1) vs N(mu,1): 2E|X-Y| - E|X-X'| - E|Y-Y'| with E|N(m, 2)| closed form
    mu = 2.0
    s = math.sqrt(2)
    e_xy = s * math.sqrt(2 / math.pi) * math.exp(-(mu**2) / (2 * s * s))
    e_xy += mu * math.erf(mu / (s * math.sqrt(2)))
    exact = 2 * e_xy - 2 * s * math.sqrt(2 / math.pi)
    a, b = _gauss(10000, 0, 1, seed=1), _gauss(10000, mu, 1, seed=3)
    assert M.energy_distance(a, b, max_samples=10000) == pytest.approx(exact, abs=0.06)
    assert M.energy_distance(a, b) > 10 * M.energy_distance(a, _gauss(10000, 0, 1, seed=4))


def test_mode_stats():
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    g = torch.Generator().manual_seed(0)
    good = centers[:3].repeat(100, 1) + 0.02 * torch.randn(300, 2, generator=g)
    bad = torch.full((100, 2), 5.0)  # between modes
    stats = M.mode_stats(torch.cat([good, bad]), centers, std=0.1)
    assert stats["modes_covered"] == 3 and stats["modes_total"] == 4
    assert stats["hq_fraction"] == pytest.approx(0.75, abs=0.01)


def test_gaussian_symmetric_kl():
    mean, cov = torch.tensor([1.0, -1.0]), torch.tensor([[2.0, 0.3], [0.3, 1.0]])
    g = torch.Generator().manual_seed(0)
    chol = torch.linalg.cholesky(cov)
    s = mean + torch.randn(200_000, 2, generator=g) @ chol.T
    assert M.gaussian_symmetric_kl(s, mean, cov) < 1e-3
    # N(0, I) vs N(m, I): symmetric KL = |m|^2
    z = torch.randn(200_000, 2, generator=g)
    assert M.gaussian_symmetric_kl(z, torch.tensor([1.0, 0.0]), torch.eye(2)) == pytest.approx(1.0, abs=0.02)


def test_monotonicity():
    x = np.linspace(-3, 3, 500)
    assert M.monotonicity(x, np.tanh(x)) == pytest.approx(1.0)
    assert M.monotonicity(x, -(x**3)) == pytest.approx(-1.0)
    assert abs(M.monotonicity(x, np.cos(8 * x))) < 0.2
