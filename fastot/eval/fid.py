"""Fréchet Inception Distance: feature statistics, the Fréchet distance, reference statistics.

A *feature extractor* is any callable mapping float images ``[B, 3, H, W]`` in [-1, 1] to features
``[B, D]``; the default is the FID Inception v3 (:mod:`fastot.eval.inception`), and tests pass a
small stand-in. An extractor that also has ``features_and_logits(x) -> (features, logits)`` (the
FID Inception does) can serve the Inception Score. Statistics files are ``.npz`` with arrays ``mu``
and ``sigma`` (the layout pytorch-fid reads and writes), plus ``n``, the number of images, and
optionally ``features``, the feature matrix that precision and recall need.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import linalg
from torch import Tensor

FeatureExtractor = Callable[[Tensor], Tensor]


def _sqrtm(a: np.ndarray) -> np.ndarray:
    # A singular product is common (fewer images than feature dimensions); the result is checked for
    # finiteness by the caller instead of warning here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        return linalg.sqrtm(a)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^{1/2}) between N(mu1, S1) and N(mu2, S2).

    When the product is singular (the square root is not finite), ``eps`` is added to both
    diagonals; a small imaginary part from numerical error is dropped.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape:
        raise ValueError(f"mean vectors differ in shape: {mu1.shape} vs {mu2.shape}")
    if s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"covariances must be [{mu1.size}, {mu1.size}], got {s1.shape} and {s2.shape}")
    diff = mu1 - mu2
    covmean = _sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        warnings.warn(
            f"the product of covariances is singular; adding {eps} to the diagonals", RuntimeWarning, 2
        )
        offset = np.eye(s1.shape[0]) * eps
        covmean = _sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        imag = np.abs(np.diagonal(covmean).imag).max()
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"the square root of the covariance product has an imaginary part {imag:.3g}")
        covmean = covmean.real
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


class RunningStats:
    """Mean and covariance of features accumulated batch by batch in float64 (no feature matrix kept)."""

    def __init__(self) -> None:
        self.n = 0
        self.sum: np.ndarray | None = None
        self.outer: np.ndarray | None = None

    def update(self, features: Tensor | np.ndarray) -> None:
        f = torch.as_tensor(features).detach().to("cpu", torch.float64)
        if f.dim() != 2:
            raise ValueError(f"features must be [B, D], got {list(f.shape)}")
        s, o = f.sum(0).numpy(), (f.T @ f).numpy()
        if self.sum is None:
            self.sum, self.outer = s, o
        else:
            self.sum += s
            self.outer += o
        self.n += f.shape[0]

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        if self.n < 2 or self.sum is None or self.outer is None:
            raise ValueError(f"need at least 2 images for statistics, got {self.n}")
        mu = self.sum / self.n
        sigma = (self.outer - self.n * np.outer(mu, mu)) / (self.n - 1)
        return mu, (sigma + sigma.T) / 2


def statistics_of(features: Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of features ``[N, D]`` (sigma with the unbiased N - 1 normaliser, like np.cov)."""
    f = np.asarray(torch.as_tensor(features).double().cpu().numpy())
    return f.mean(0), np.atleast_2d(np.cov(f, rowvar=False))


def prepare(images: Tensor, quantize: bool = True) -> Tensor:
    """Images as the extractor takes them: float [-1, 1], 3 channels; optionally rounded to 8 bits
    first, so generated images are measured as they would be saved to PNG."""
    x = images.detach().float()
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"images must be [B, 1 or 3, H, W], got {list(x.shape)}")
    x = x.clamp(-1, 1)
    if quantize:
        x = ((x + 1) * 127.5).round() / 127.5 - 1
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def features_and_logits(extractor: FeatureExtractor, images: Tensor) -> tuple[Tensor, Tensor]:
    """The extractor's features and class logits of prepared images (for the Inception Score)."""
    both = getattr(extractor, "features_and_logits", None)
    if both is None:
        raise ValueError(
            "the Inception Score needs class logits, and this feature extractor has no features_and_logits"
        )
    return both(images)


@dataclass
class Extracted:
    """What one pass of the extractor over a set of images gave."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int
    features: Tensor | None = None  # [n, D] float32, when kept
    logits: Tensor | None = None  # [n, classes] float32, when asked for


@torch.no_grad()
def extract(
    batches: Iterable[Tensor],
    extractor: FeatureExtractor,
    device: str | torch.device = "cpu",
    quantize: bool = True,
    limit: int | None = None,
    keep_features: bool = False,
    logits: bool = False,
) -> Extracted:
    """Statistics of the extractor's features over image batches in [-1, 1] (at most ``limit`` images),
    with the feature matrix (``keep_features``) and the class logits (``logits``) when asked for."""
    stats = RunningStats()
    kept: list[Tensor] = []
    kept_logits: list[Tensor] = []
    for batch in batches:
        if limit is not None:
            batch = batch[: limit - stats.n]
        if len(batch) == 0:
            break
        x = prepare(batch, quantize).to(device)
        if logits:
            f, lg = features_and_logits(extractor, x)
            kept_logits.append(lg.detach().to("cpu", torch.float32))
        else:
            f = extractor(x)
        stats.update(f)
        if keep_features:
            kept.append(f.detach().to("cpu", torch.float32))
        if limit is not None and stats.n >= limit:
            break
    mu, sigma = stats.result()
    return Extracted(
        mu,
        sigma,
        stats.n,
        torch.cat(kept) if keep_features else None,
        torch.cat(kept_logits) if logits else None,
    )


def compute_statistics(
    batches: Iterable[Tensor],
    extractor: FeatureExtractor,
    device: str | torch.device = "cpu",
    quantize: bool = True,
    limit: int | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """(mu, sigma, n) of the extractor's features over image batches in [-1, 1] (at most ``limit`` images)."""
    e = extract(batches, extractor, device, quantize, limit)
    return e.mu, e.sigma, e.n


def dataset_batches(dataset, batch_size: int = 100, num_workers: int = 0) -> Iterable[Tensor]:
    """A dataset's images in order (no flips), as float batches in [-1, 1]."""
    from torch.utils.data import DataLoader

    if num_workers > 0 and hasattr(dataset, "release"):
        dataset.release()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    yield from loader


def save_stats(
    path: str | os.PathLike,
    mu: np.ndarray,
    sigma: np.ndarray,
    n: int | None = None,
    features: Tensor | np.ndarray | None = None,
) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {} if n is None else {"n": np.asarray(n)}
    if features is not None:
        extra["features"] = np.asarray(torch.as_tensor(features).cpu().float().numpy())
    with path.open("wb") as f:  # a file object, so numpy does not append a second .npz
        np.savez(f, mu=mu, sigma=sigma, **extra)


def load_stats(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"statistics file {path} not found")
    with np.load(path) as f:
        if "mu" not in f or "sigma" not in f:
            raise ValueError(f"{path} has no 'mu' and 'sigma' arrays")
        return f["mu"], f["sigma"]


def load_features(path: str | os.PathLike) -> Tensor:
    """The feature matrix kept in a statistics file (``stats --features``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"statistics file {path} not found")
    with np.load(path) as f:
        if "features" not in f:
            raise ValueError(
                f"{path} holds no features, which precision and recall need: pass a dataset as the "
                "reference, or write the statistics with 'stats --features'"
            )
        return torch.from_numpy(f["features"])


def inception_extractor(
    weights: str | os.PathLike | None = None, device: str | torch.device = "cpu"
) -> FeatureExtractor:
    """The pretrained FID Inception v3 as a feature extractor (raises FileNotFoundError without weights)."""
    from fastot.eval.inception import load_fid_inception

    return load_fid_inception(weights, device)


def reference_features(
    ref: str | os.PathLike,
    extractor: FeatureExtractor,
    size: int | None = None,
    batch_size: int = 100,
    num_workers: int = 0,
    device: str | torch.device = "cpu",
    limit: int | None = None,
    keep_features: bool = False,
) -> Extracted:
    """Statistics (and, with ``keep_features``, the features) of ``ref``: a ``.npz`` statistics file,
    or a dataset path (see ``open_dataset``)."""
    p = Path(ref)
    if p.suffix == ".npz":
        mu, sigma = load_stats(p)
        features = load_features(p) if keep_features else None
        with np.load(p) as f:
            n = int(f["n"]) if "n" in f else (len(features) if features is not None else 0)
        return Extracted(mu, sigma, n, features)
    from fastot.data.datasets import open_dataset

    dataset = open_dataset(p, size)
    batches = dataset_batches(dataset, batch_size, num_workers)
    return extract(batches, extractor, device, quantize=False, limit=limit, keep_features=keep_features)


def reference_statistics(
    ref: str | os.PathLike,
    extractor: FeatureExtractor,
    size: int | None = None,
    batch_size: int = 100,
    num_workers: int = 0,
    device: str | torch.device = "cpu",
    limit: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Statistics of ``ref``: a ``.npz`` statistics file, or a dataset path (see ``open_dataset``)."""
    e = reference_features(ref, extractor, size, batch_size, num_workers, device, limit)
    return e.mu, e.sigma
