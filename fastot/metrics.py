"""Sample-based metrics for the toy experiments.

- :func:`knn_kl`: kNN estimator of KL(P | Q) (Wang, Kulkarni & Verdu 2009), k = 2, scipy cKDTree.
- :func:`energy_distance`: 2 E||X - Y|| - E||X - X'|| - E||Y - Y'||.
- :func:`mode_stats`: mode coverage and high-quality-sample fraction for Gaussian-grid mixtures.
- :func:`gaussian_symmetric_kl`: KL(N1|N2) + KL(N2|N1) between a Gaussian fit of samples and a reference.
- :func:`monotonicity`: Spearman correlation of x and T(x) for 1-D maps (the OT map is increasing).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree
from scipy.stats import spearmanr


def _np(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    a = np.asarray(a, dtype=np.float64)
    return a.reshape(len(a), -1)


def knn_kl(p_samples, q_samples, k: int = 2) -> float:
    """KL(P | Q) from samples X ~ P (n) and Y ~ Q (m):

    D = d/n sum_i log(nu_k(i) / rho_k(i)) + log(m / (n - 1)),
    rho_k(i) = distance from x_i to its k-th neighbour in X without x_i, nu_k(i) = to its k-th in Y.
    """
    x, y = _np(p_samples), _np(q_samples)
    n, d = x.shape
    m = len(y)
    rho = cKDTree(x).query(x, k=k + 1)[0][:, k]  # column 0 is x_i itself
    nu = cKDTree(y).query(x, k=k)[0]
    nu = nu[:, k - 1] if nu.ndim == 2 else nu
    tiny = np.finfo(np.float64).tiny  # exact duplicates would give log(0)
    log_ratio = np.log(np.maximum(nu, tiny)) - np.log(np.maximum(rho, tiny))
    return float(d * np.mean(log_ratio) + np.log(m / (n - 1)))


def _mean_dist(a: torch.Tensor, b: torch.Tensor, chunk: int = 2048) -> float:
    total = 0.0
    for i in range(0, len(a), chunk):
        total += torch.cdist(a[i : i + chunk], b).sum().item()
    return total / (len(a) * len(b))


def energy_distance(x, y, max_samples: int = 5000, seed: int = 0) -> float:
    """Squared energy distance (V-statistic); inputs are subsampled to ``max_samples`` rows."""
    rng = np.random.default_rng(seed)
    a, b = _np(x), _np(y)
    if len(a) > max_samples:
        a = a[rng.choice(len(a), max_samples, replace=False)]
    if len(b) > max_samples:
        b = b[rng.choice(len(b), max_samples, replace=False)]
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    return 2 * _mean_dist(ta, tb) - _mean_dist(ta, ta) - _mean_dist(tb, tb)


def mode_stats(
    samples, centers, std: float, n_std: float = 3.0, min_fraction: float = 0.1
) -> dict[str, float]:
    """High-quality samples lie within ``n_std`` stds of their nearest centre; a mode is covered
    when it gets at least ``min_fraction`` of its fair share (n / K) of high-quality samples."""
    s, c = _np(samples), _np(centers)
    dist, idx = cKDTree(c).query(s, k=1)
    good = dist <= n_std * std
    counts = np.bincount(idx[good], minlength=len(c))
    covered = counts >= max(1.0, min_fraction * len(s) / len(c))
    return {"modes_covered": int(covered.sum()), "modes_total": len(c), "hq_fraction": float(good.mean())}


def _gauss_kl(m1: np.ndarray, s1: np.ndarray, m2: np.ndarray, s2: np.ndarray) -> float:
    d = len(m1)
    s2inv = np.linalg.inv(s2)
    diff = m2 - m1
    _, ld1 = np.linalg.slogdet(s1)
    _, ld2 = np.linalg.slogdet(s2)
    return 0.5 * float(np.trace(s2inv @ s1) + diff @ s2inv @ diff - d + ld2 - ld1)


def gaussian_symmetric_kl(samples, mean, cov) -> float:
    """Symmetric KL between N(sample mean, sample cov) and N(mean, cov)."""
    s = _np(samples)
    m1, s1 = s.mean(axis=0), np.atleast_2d(np.cov(s, rowvar=False))
    m2 = np.asarray(mean.cpu() if isinstance(mean, torch.Tensor) else mean, dtype=np.float64).reshape(-1)
    s2 = np.atleast_2d(np.asarray(cov.cpu() if isinstance(cov, torch.Tensor) else cov, dtype=np.float64))
    return _gauss_kl(m1, s1, m2, s2) + _gauss_kl(m2, s2, m1, s1)


def monotonicity(x, tx) -> float:
    """Spearman rank correlation of a 1-D map's inputs and outputs (1 = increasing)."""
    return float(spearmanr(_np(x).ravel(), _np(tx).ravel()).statistic)
