"""The "small" DCGAN-like ResNet map and potential of OTM* (Rout et al.) / Balaji et al. (UOTM, S-JKO).

UOTM App. B (CIFAR-10, *small*) and S-JKO App. C: "the Gaussian distribution with the size of 3x8x8
is bicubically upsampled to 3x32x32" and serves as the source, and the networks are the ResNet GAN of
Rout et al. (~0.4M parameters for the map, S-JKO App. C).

Where the upsampling happens: the **data side** draws ``e ~ N(0, I)`` of shape [B, 3, 8, 8] and
provides ``x = bicubic_upsample(e)`` of shape [B, 3, 32, 32]; the cost compares ``x`` with ``T(x)``.
The map recovers the 192-d latent ``e`` from ``x`` exactly with the fixed pseudo-inverse of the
(linear, injective) upsampling operator and feeds it to its linear stem, as the reference generator
does with its 192-d prior. The map also accepts the raw [B, 3, 8, 8] (or [B, 192]) noise.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fastot.nn.registry import register_map, register_potential


def upsample_matrix(src: int, dst: int, mode: str = "bicubic") -> Tensor:
    """The [dst, src] matrix of 1-D ``F.interpolate(mode, align_corners=False)``, ``src`` -> ``dst`` pixels.

    2-D bicubic/bilinear interpolation is separable, so ``up(e) = U e U^T`` per channel.
    """
    eye = torch.eye(src, dtype=torch.float64).reshape(src, 1, 1, src)
    cols = F.interpolate(eye, size=(1, dst), mode=mode, align_corners=False)
    return cols.reshape(src, dst).T.contiguous()


def upsample_source(e: Tensor, size: int = 32, mode: str = "bicubic") -> Tensor:
    """The small model's source: noise [B, C, s, s] upsampled to [B, C, size, size] (align_corners=False)."""
    return F.interpolate(e, size=(size, size), mode=mode, align_corners=False)


class GenBlock(nn.Module):
    """BN -> ReLU -> nearest up x2 -> conv3x3 -> BN -> ReLU -> conv3x3, plus the upsampled input."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(ch),
            nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(ch, ch, 3, padding=1),
            nn.BatchNorm2d(ch),
            nn.ReLU(),
            nn.Conv2d(ch, ch, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x) + F.interpolate(x, scale_factor=2.0, mode="nearest")


class DCGANResNetMap(nn.Module):
    """ResNet generator of Rout et al. / Balaji et al. as a map (UOTM App. B "small"; S-JKO App. C).

    latent (C*s*s [+ z_dim]) -> Linear -> [ngf, 4, 4] -> log2(image_size/4) up-blocks -> BN-ReLU-conv3x3
    -> tanh.
    ``x`` is the upsampled source [B, C, image_size, image_size] (or the raw [B, C, s, s] / [B, C*s*s] noise).
    ``z_dim`` 0 (default) gives the deterministic map of the papers; z_dim > 0 concatenates z to the latent.
    """

    def __init__(
        self,
        channels: int = 3,
        image_size: int = 32,
        source_size: int = 8,
        ngf: int = 64,
        z_dim: int = 0,
        upsample_mode: str = "bicubic",
    ) -> None:
        super().__init__()
        n_up = int(math.log2(image_size // 4)) if image_size >= 4 else -1
        if n_up < 0 or 4 * 2**n_up != image_size:
            raise ValueError(f"image_size must be 4 * 2^k, got {image_size}")
        self.channels, self.image_size, self.source_size, self.z_dim = (
            channels,
            image_size,
            source_size,
            z_dim,
        )
        self.ngf = ngf
        u = upsample_matrix(source_size, image_size, upsample_mode)
        self.register_buffer("unup", torch.linalg.pinv(u).float(), persistent=False)  # [s, image_size]
        self.stem = nn.Linear(channels * source_size**2 + z_dim, ngf * 16)
        self.blocks = nn.Sequential(*[GenBlock(ngf) for _ in range(n_up)])
        self.head = nn.Sequential(
            nn.BatchNorm2d(ngf), nn.ReLU(), nn.Conv2d(ngf, channels, 3, padding=1), nn.Tanh()
        )

    def latent_of(self, x: Tensor) -> Tensor:
        """The [B, C*s*s] source noise behind ``x`` (exact inverse of the upsampling for upsampled inputs)."""
        if x.dim() == 4 and x.shape[-1] == self.image_size != self.source_size:
            with torch.autocast(x.device.type, enabled=False):  # keep the inversion in float32
                u = self.unup.float()
                x = torch.einsum("ih,bchw,jw->bcij", u, x.float(), u)
        return x.reshape(x.shape[0], -1)

    def forward(self, x: Tensor, z: Tensor | None = None) -> Tensor:
        e = self.latent_of(x)
        if self.z_dim:
            if z is None:
                raise ValueError(f"this map needs a latent z of shape [B, {self.z_dim}]")
            e = torch.cat([e, z.reshape(z.shape[0], -1).to(e.dtype)], dim=1)
        h = self.stem(e).reshape(-1, self.ngf, 4, 4)
        return self.head(self.blocks(h))


class DiscBlock(nn.Module):
    """act -> conv3x3 -> act -> conv3x3 [-> avgpool 2], plus the skip (1x1 conv and pool when resampling).

    The first block of the network has no leading activation and pools its skip before the 1x1 conv.
    """

    def __init__(self, in_ch: int, out_ch: int, down: bool, first: bool = False, slope: float = 0.2) -> None:
        super().__init__()
        act = nn.LeakyReLU(slope)
        layers: list[nn.Module] = [] if first else [act]
        layers += [nn.Conv2d(in_ch, out_ch, 3, padding=1), act, nn.Conv2d(out_ch, out_ch, 3, padding=1)]
        if down:
            layers.append(nn.AvgPool2d(2))
        self.body = nn.Sequential(*layers)
        self.first, self.down = first, down
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if (down or in_ch != out_ch) else None
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight, math.sqrt(2) if m.kernel_size[0] == 3 else 1.0)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        s = x
        if self.first and self.down:
            s = F.avg_pool2d(s, 2)
        if self.skip is not None:
            s = self.skip(s)
        if self.down and not self.first:
            s = F.avg_pool2d(s, 2)
        return self.body(x) + s


class DCGANResNetPotential(nn.Module):
    """Rout et al.'s ResNet discriminator as a potential: 2 down, 2 plain blocks, act, pixel sum, linear.

    [B, C, H, W] -> [B] (no sigmoid). LeakyReLU(0.2) (``slope=0`` gives ReLU).
    """

    def __init__(self, channels: int = 3, ndf: int = 64, slope: float = 0.2) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            DiscBlock(channels, ndf, down=True, first=True, slope=slope),
            DiscBlock(ndf, ndf, down=True, slope=slope),
            DiscBlock(ndf, ndf, down=False, slope=slope),
            DiscBlock(ndf, ndf, down=False, slope=slope),
            nn.LeakyReLU(slope),
        )
        self.linear = nn.Linear(ndf, 1)
        nn.init.xavier_uniform_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, y: Tensor) -> Tensor:
        return self.linear(self.blocks(y).sum(dim=(2, 3))).squeeze(-1)


@register_map("dcgan_resnet32", smoke={"ngf": 8})
def dcgan_resnet32(
    channels: int = 3,
    image_size: int = 32,
    source_size: int = 8,
    ngf: int = 64,
    z_dim: int = 0,
    upsample_mode: str = "bicubic",
) -> DCGANResNetMap:
    """Small CIFAR-10 map (~0.42M parameters); x = 3x8x8 noise bicubically upsampled to 3x32x32."""
    return DCGANResNetMap(channels, image_size, source_size, ngf, z_dim, upsample_mode)


@register_potential("dcgan_resnet32", smoke={"ndf": 8})
def dcgan_resnet32_potential(channels: int = 3, ndf: int = 64, slope: float = 0.2) -> DCGANResNetPotential:
    """Small CIFAR-10 potential (~0.26M parameters); any image size (the head sums over pixels)."""
    return DCGANResNetPotential(channels, ndf, slope)
