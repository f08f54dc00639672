"""Real images that ship offline: scikit-learn's digits (with a fixed train / held-out split), grey
patches of its two sample photographs (outliers), and the Gaussian with the digits' moments.

- :func:`digit_split` is the one split every digits user shares: the generators train on ``train``,
  the feature network (:mod:`fastot.eval.digits`) is fitted on ``train`` and scored on ``test``, and
  the memorisation check compares generated samples with ``test``.
- :func:`photo_patches` cuts ``size`` x ``size`` grey patches from ``load_sample_images()``: a second
  real source, different from digits, for the outlier experiment (UOTM paper Fig. 3 at digits scale).
- :func:`digit_moments` gives (m, Sigma) of the train digits, the target of the image-scale closed
  form: between N(0, I) and N(m, Sigma) the balanced OT map is T*(x) = m + Sigma^(1/2) x.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from fastot.data import formats
from fastot.data.transforms import check_channels, set_channels

SPLITS = ("all", "train", "test")
TEST_FRACTION = 0.2  # 360 of the 1,797 digits are held out
SPLIT_SEED = 0


def digit_split(split: str = "all") -> np.ndarray:
    """Indices of the digits in ``split`` ('all', 'train' or 'test'), seeded and sorted."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    n = len(formats.load_digits_images())
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_test = round(TEST_FRACTION * n)
    pick = {"all": perm, "test": perm[:n_test], "train": perm[n_test:]}[split]
    return np.sort(pick)


def digit_labels(split: str = "all") -> np.ndarray:
    """The class (0-9) of every digit in ``split``."""
    from sklearn.datasets import load_digits

    return load_digits().target[digit_split(split)].astype(np.int64)


def digit_images(size: int = 16, channels: int = 1, split: str = "all") -> Tensor:
    """uint8 ``[N, channels, size, size]``: the 8x8 digits of ``split`` upsampled, white on black."""
    x = torch.from_numpy(formats.load_digits_images()[digit_split(split)])[:, None]
    x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)
    images = (x.clamp(0, 1) * 255).round_().to(torch.uint8)
    return set_channels(images, check_channels(channels))


def photo_patches(n: int, size: int = 16, seed: int = 0, scale: int = 4) -> Tensor:
    """uint8 ``[n, 1, size, size]`` grey patches at random places of the two sample photographs
    (downscaled ``scale`` times so that a patch holds structure, not a flat colour), contrast-stretched
    to the full range like the digits."""
    from sklearn.datasets import load_sample_images

    photos = [
        torch.from_numpy(np.asarray(im, dtype=np.float32)).mean(-1) for im in load_sample_images().images
    ]
    photos = [F.avg_pool2d(p[None, None], scale)[0, 0] for p in photos]
    g = torch.Generator().manual_seed(seed)
    out = torch.empty(n, 1, size, size)
    for i in range(n):
        p = photos[int(torch.randint(len(photos), (1,), generator=g))]
        r = int(torch.randint(p.shape[0] - size + 1, (1,), generator=g))
        c = int(torch.randint(p.shape[1] - size + 1, (1,), generator=g))
        patch = p[r : r + size, c : c + size]
        lo, hi = patch.min(), patch.max()
        out[i, 0] = (patch - lo) / (hi - lo).clamp_min(1.0)
    return (out * 255).round_().to(torch.uint8)


def digits_with_outliers(
    size: int = 16, channels: int = 1, outlier_fraction: float = 0.01, outlier_seed: int = 0
) -> tuple[Tensor, Tensor]:
    """The train digits plus ``round(outlier_fraction * N)`` photo patches: uint8 images and the
    outlier mask (patches last)."""
    if not 0 <= outlier_fraction < 1:
        raise ValueError(f"outlier_fraction must be in [0, 1), got {outlier_fraction}")
    digits = digit_images(size, channels, "train")
    k = round(outlier_fraction * len(digits))
    patches = set_channels(photo_patches(k, size, seed=1000 + outlier_seed), channels)
    mask = torch.cat([torch.zeros(len(digits), dtype=torch.bool), torch.ones(k, dtype=torch.bool)])
    return torch.cat([digits, patches]), mask


def digit_moments(size: int = 16, ridge: float = 1e-3) -> tuple[Tensor, Tensor]:
    """Mean [d] and covariance [d, d] (float64, d = size^2) of the train digits in [-1, 1], plus
    ``ridge`` I: the upsampled 8x8 digits span only 64 dimensions, the ridge makes Sigma full rank."""
    if ridge <= 0:
        raise ValueError(f"ridge must be > 0, got {ridge}")
    x = digit_images(size, 1, "train").double().flatten(1) / 127.5 - 1
    mean = x.mean(0)
    cov = torch.cov(x.T) + ridge * torch.eye(x.shape[1], dtype=torch.float64)
    return mean, (cov + cov.T) / 2
