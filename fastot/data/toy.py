"""Exact samplers for the papers' toy distributions.

Every sampler draws fresh i.i.d. samples of any batch size from a seeded ``torch.Generator``
(mixture components are drawn per sample, so no batch-divisibility constraints).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from fastot.data.registry import register_sampler


class Sampler:
    """Base class: ``sample(n, generator) -> Tensor[n, dim]`` (float32, CPU)."""

    dim: int

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError


class Gaussian(Sampler):
    def __init__(self, dim: int = 2, mean: float = 0.0, std: float = 1.0) -> None:
        self.dim, self.mean, self.std = dim, mean, std

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.mean + self.std * torch.randn(n, self.dim, generator=generator)


class Mixture(Sampler):
    """Isotropic Gaussian mixture; ``centers`` [K, d], per-component std and weights."""

    def __init__(self, centers: Tensor, std: float | Sequence[float], weights: Sequence[float] | None = None):
        self.centers = torch.as_tensor(centers, dtype=torch.float32)
        k, self.dim = self.centers.shape
        self.stds = torch.as_tensor(std, dtype=torch.float32).expand(k).clone()
        w = torch.ones(k) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
        self.weights = w / w.sum()

    @property
    def std(self) -> float:
        return float(self.stds.max())

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        noise = torch.randn(n, self.dim, generator=generator)
        return self.centers[comp] + self.stds[comp, None] * noise


def _ring(k: int, radius: float, phase: float = 0.0) -> Tensor:
    ang = phase + 2 * math.pi * torch.arange(k, dtype=torch.float64) / k
    return (radius * torch.stack([ang.cos(), ang.sin()], dim=1)).float()


@register_sampler("gaussian")
def gaussian(dim: int = 2, mean: float = 0.0, std: float = 1.0) -> Sampler:
    return Gaussian(dim, mean, std)


@register_sampler("outlier_1d")
def outlier_1d(p: float = 0.01, std: float = 0.5) -> Sampler:
    """UOTM Sec. 5.1 target: (1-p) N(1, 0.5^2) + p N(-1, 0.5^2)."""
    return Mixture(torch.tensor([[1.0], [-1.0]]), std, [1.0 - p, p])


@register_sampler("table1_source")
def table1_source(std: float = 0.5) -> Sampler:
    """UOTM Table 1 source: 1/2 N(-1, 0.5^2) + 1/2 N(1, 0.5^2)."""
    return Mixture(torch.tensor([[-1.0], [1.0]]), std, [0.5, 0.5])


@register_sampler("table1_target")
def table1_target(std: float = 0.5) -> Sampler:
    """UOTM Table 1 target: 1/3 N(-1, 0.5^2) + 2/3 N(2, 0.5^2)."""
    return Mixture(torch.tensor([[-1.0], [2.0]]), std, [1.0 / 3.0, 2.0 / 3.0])


@register_sampler("8gaussians")
def eight_gaussians(radius: float = 12.0, std: float = math.sqrt(0.4)) -> Sampler:
    """8 equal modes on a circle (UOTM-SD toy: radius 12, covariance 0.4 I)."""
    return Mixture(_ring(8, radius), std)


@register_sampler("25gaussians")
def grid_25(spacing: float = 3.0, std: float = math.sqrt(0.005)) -> Sampler:
    """S-JKO App. B.1: modes at (3i, 3j), i, j in -2..2, covariance 0.005 I as the reference dataset
    draws it (the paper's text reads "x + 0.005 z", a std of 0.005)."""
    r = torch.arange(-2, 3, dtype=torch.float32) * spacing
    centers = torch.cartesian_prod(r, r)
    return Mixture(centers, std)


class TwoCircles(Sampler):
    """S-JKO App. B.1: uniform on circles of radii 4 and 8, plus 0.2 N(0, I) noise."""

    def __init__(self, radii: Sequence[float] = (4.0, 8.0), noise: float = 0.2) -> None:
        self.dim, self.radii, self.noise = 2, torch.tensor(list(radii), dtype=torch.float32), noise

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        r = self.radii[torch.randint(len(self.radii), (n,), generator=generator)]
        ang = 2 * math.pi * torch.rand(n, generator=generator)
        pts = r[:, None] * torch.stack([ang.cos(), ang.sin()], dim=1)
        return pts + self.noise * torch.randn(n, 2, generator=generator)


register_sampler("two_circles")(TwoCircles)


class Moons(Sampler):
    """Two interleaved half circles (centred), plus Gaussian noise; ``scale`` multiplies the result."""

    def __init__(self, noise: float = 0.1, scale: float = 1.0) -> None:
        self.dim, self.noise, self.scale = 2, noise, scale

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        upper = torch.rand(n, generator=generator) < 0.5
        t = math.pi * torch.rand(n, generator=generator)
        outer = torch.stack([t.cos(), t.sin()], dim=1)
        inner = torch.stack([1.0 - t.cos(), 0.5 - t.sin()], dim=1)
        pts = torch.where(upper[:, None], outer, inner) - torch.tensor([0.5, 0.25])
        return self.scale * (pts + self.noise * torch.randn(n, 2, generator=generator))


register_sampler("moons")(Moons)


class Uniform(Sampler):
    """Unif([low, high]^dim) (NOT App. C.1 target: [-2, 2]^2)."""

    def __init__(self, dim: int = 2, low: float = -2.0, high: float = 2.0) -> None:
        self.dim, self.low, self.high = dim, low, high

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.low + (self.high - self.low) * torch.rand(n, self.dim, generator=generator)


register_sampler("uniform")(Uniform)


@register_sampler("3gaussians")
def three_gaussians(radius: float = 2.0, std: float = 0.3) -> Sampler:
    """NOT Fig. 1 source: 3 isotropic Gaussians on a circle."""
    return Mixture(_ring(3, radius, phase=math.pi / 2), std)


class NoisyCircle(Sampler):
    """Uniform on a circle of ``radius`` plus ``noise`` N(0, I) (NOT Fig. 1 target)."""

    def __init__(self, radius: float = 3.0, noise: float = 0.1) -> None:
        self.dim, self.radius, self.noise = 2, radius, noise

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        ang = 2 * math.pi * torch.rand(n, generator=generator)
        pts = self.radius * torch.stack([ang.cos(), ang.sin()], dim=1)
        return pts + self.noise * torch.randn(n, 2, generator=generator)


register_sampler("noisy_circle")(NoisyCircle)
