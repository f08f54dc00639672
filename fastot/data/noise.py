"""Gaussian image noise sources, registered as samplers; they draw from the generator ``sample`` gets.

Like the dataset samplers they expose ``.shape`` ``(C, H, W)`` and no ``.dim``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from fastot.data.digits import digit_moments
from fastot.data.registry import register_sampler

# The sampler names this module registers.
NOISE_SAMPLERS = ("gaussian_image", "noise_upsampled", "gaussian_digits")


@register_sampler("gaussian_image")
class GaussianImage:
    """N(0, std^2 I) images ``[C, H, W]``."""

    def __init__(self, channels: int = 3, size: int = 32, std: float = 1.0) -> None:
        self.shape = (int(channels), int(size), int(size))
        self.std = float(std)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.std * torch.randn(n, *self.shape, generator=generator)


@register_sampler("noise_upsampled")
class NoiseUpsampled:
    """``C x low x low`` Gaussian noise upsampled (bicubic) to ``C x size x size``."""

    def __init__(self, channels: int = 3, low: int = 8, size: int = 32, std: float = 1.0) -> None:
        self.shape = (int(channels), int(size), int(size))
        self.low, self.std = int(low), float(std)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        z = self.std * torch.randn(n, self.shape[0], self.low, self.low, generator=generator)
        return F.interpolate(z, size=self.shape[1:], mode="bicubic", align_corners=False)


@register_sampler("gaussian_digits")
class GaussianDigits:
    """N(m, Sigma) images ``[1, size, size]`` with the train digits' mean and covariance (+ ridge)."""

    def __init__(self, size: int = 16, ridge: float = 1e-3, channels: int = 1) -> None:
        if channels != 1:
            raise ValueError(f"channels: the digits' Gaussian is grey (1 channel), got {channels}")
        self.size, self.ridge = int(size), float(ridge)
        self.shape = (1, self.size, self.size)
        self.mean, self.cov = digit_moments(self.size, self.ridge)
        from fastot.groundtruth_gaussian import sqrtm_psd

        self.root = sqrtm_psd(self.cov)

    def optimal_map(self, x: Tensor) -> Tensor:
        """T*(x) = m + Sigma^(1/2) x for source images ``x`` ~ N(0, I), same shape as ``x``."""
        flat = x.reshape(len(x), -1).double()
        return (self.mean + flat @ self.root).reshape(x.shape).to(x.dtype)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        eps = torch.randn(n, self.shape[1] * self.shape[2], generator=generator, dtype=torch.float64)
        return self.optimal_map(eps.reshape(n, *self.shape)).float()
