"""Gaussian image noise sources, registered as samplers; they draw from the generator ``sample`` gets.

Like the dataset samplers they expose ``.shape`` ``(C, H, W)`` and no ``.dim``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from fastot.data.registry import register_sampler

# The sampler names this module registers.
NOISE_SAMPLERS = ("gaussian_image", "noise_upsampled")


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
