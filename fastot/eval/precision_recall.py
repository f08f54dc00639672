"""Improved precision and recall (Kynkäänniemi et al., 2019) of generated samples in feature space.

Each set of features approximates a manifold: the union of balls around its points, the ball of a
point reaching its k-th nearest neighbour in the same set (the point itself excluded). Precision is
the fraction of generated samples inside the real manifold, recall the fraction of real samples
inside the generated one. A sample on a ball's boundary counts as inside.

Distances are computed by :func:`torch.cdist` in float64, block by block (at most ``chunk`` x
``chunk`` distances at a time), so memory stays bounded for 50k x 50k comparisons.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

DEFAULT_CHUNK = 4096  # a 4096 x 4096 float64 block of distances is 128 MiB


def _as_features(x: Tensor | np.ndarray, name: str) -> Tensor:
    f = torch.as_tensor(x).detach()
    if f.dim() != 2:
        raise ValueError(f"{name} features must be [N, D], got {list(f.shape)}")
    return f


def _blocks(n: int, chunk: int):
    for start in range(0, n, chunk):
        yield start, min(start + chunk, n)


def _distances(a: Tensor, b: Tensor) -> Tensor:
    return torch.cdist(a.to(torch.float64), b.to(torch.float64))


def knn_radii(features: Tensor | np.ndarray, k: int = 3, chunk: int = DEFAULT_CHUNK) -> Tensor:
    """Distance of each point ``[N, D]`` to its k-th nearest neighbour among the others (float64 ``[N]``)."""
    f = _as_features(features, "reference")
    n = f.shape[0]
    if k < 1:
        raise ValueError(f"k must be positive, got {k}")
    if n <= k:
        raise ValueError(f"the k-NN radius with k = {k} needs more than {k} points, got {n}")
    if chunk < 1:
        raise ValueError(f"chunk must be positive, got {chunk}")
    radii = torch.empty(n, dtype=torch.float64)
    for r0, r1 in _blocks(n, chunk):
        rows = f[r0:r1]
        best = torch.full((r1 - r0, k), float("inf"), dtype=torch.float64)
        for c0, c1 in _blocks(n, chunk):
            d = _distances(rows, f[c0:c1])
            # the point itself is no neighbour: drop it by index (duplicates still count, at distance 0)
            lo, hi = max(r0, c0), min(r1, c1)
            if lo < hi:
                idx = torch.arange(lo, hi)
                d[idx - r0, idx - c0] = float("inf")
            best = torch.cat([best, d], 1).topk(k, dim=1, largest=False).values
        radii[r0:r1] = best.max(1).values
    return radii


def inside_manifold(
    queries: Tensor | np.ndarray,
    reference: Tensor | np.ndarray,
    radii: Tensor,
    chunk: int = DEFAULT_CHUNK,
) -> Tensor:
    """Whether each query lies within ``radii[i]`` of some reference point ``i`` (bool ``[M]``)."""
    q, r = _as_features(queries, "query"), _as_features(reference, "reference")
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"features differ in dimension: {q.shape[1]} vs {r.shape[1]}")
    if radii.shape != (r.shape[0],):
        raise ValueError(f"need one radius per reference point ({r.shape[0]}), got {list(radii.shape)}")
    radii = radii.to(torch.float64)
    hit = torch.zeros(q.shape[0], dtype=torch.bool)
    for q0, q1 in _blocks(q.shape[0], chunk):
        block = hit[q0:q1]  # a view: updated in place
        for c0, c1 in _blocks(r.shape[0], chunk):
            todo = (~block).nonzero().squeeze(1)
            if len(todo) == 0:
                break
            d = _distances(q[q0:q1][todo], r[c0:c1])
            block[todo] |= (d <= radii[c0:c1]).any(1)
    return hit


def precision_recall(
    real_feats: Tensor | np.ndarray,
    fake_feats: Tensor | np.ndarray,
    k: int = 3,
    chunk: int = DEFAULT_CHUNK,
) -> dict[str, float]:
    """``{"precision", "recall"}`` of generated features ``[M, D]`` against real features ``[N, D]``."""
    real, fake = _as_features(real_feats, "real"), _as_features(fake_feats, "generated")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"features differ in dimension: {real.shape[1]} (real) vs {fake.shape[1]}")
    precision = inside_manifold(fake, real, knn_radii(real, k, chunk), chunk)
    recall = inside_manifold(real, fake, knn_radii(fake, k, chunk), chunk)
    return {"precision": precision.double().mean().item(), "recall": recall.double().mean().item()}
