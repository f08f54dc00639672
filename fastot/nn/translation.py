"""NOT / KNOT unpaired-translation networks: a UNet map with a noise channel and a ResNet potential.

The NOT/KNOT study (App. C) and the reference recipes use a UNet of base width 48 for the map ``T``;
a stochastic (weak-cost) map gets its randomness as an extra input channel, a Gaussian noise image
``z`` (std 0.1) concatenated to ``x``. The potential ``f`` is a residual CNN (the WGAN-QC discriminator):
conv3x3, two residual blocks, then ``log2(size/4)`` stages of [average pool, two residual blocks],
widths 64 doubling up to 512, residual branches scaled by 0.1, LeakyReLU 0.2, a linear head.

How the map takes its noise: it exposes ``z_channels`` and ``z_dim = z_channels * image_size**2``, so
the trainer's standard-normal latent ``z`` of shape [B, z_dim] is simply reshaped into the noise image
[B, z_channels, H, W] (a [B, z_channels, H, W] tensor is accepted as is). The map multiplies the
standard-normal ``z`` by ``z_std`` itself. ``z=None`` draws the noise internally (torch's global RNG).
``z_channels=0`` is NOT's deterministic map for the strong cost (``z_dim = 0``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fastot.nn.registry import register_map, register_potential


def _norm(kind: str, ch: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "group":
        return nn.GroupNorm(min(32, ch // 4) or 1, ch)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'batch', 'group' or 'none', got {kind!r}")


class DoubleConv(nn.Module):
    """(conv3x3 -> norm -> ReLU) x 2; the convs have no bias when a norm follows."""

    def __init__(self, in_ch: int, out_ch: int, mid_ch: int | None = None, norm: str = "batch") -> None:
        super().__init__()
        mid_ch = mid_ch or out_ch
        bias = norm == "none"
        self.net = nn.Sequential(
            nn.Conv2d(in_ch, mid_ch, 3, padding=1, bias=bias),
            _norm(norm, mid_ch),
            nn.ReLU(),
            nn.Conv2d(mid_ch, out_ch, 3, padding=1, bias=bias),
            _norm(norm, out_ch),
            nn.ReLU(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class UNetMap(nn.Module):
    """UNet map ``T(x, z)`` for translation (NOT App. C): 4 max-pool downs, 4 bilinear ups with skips.

    Widths ``base`` x (1, 2, 4, 8, 8) (48/96/192/384/384 for base 48); a 1x1 output conv, no output
    activation unless ``tanh``. x: [B, channels, H, W] with H, W divisible by 16 (others are padded).
    """

    def __init__(
        self,
        channels: int = 3,
        image_size: int = 64,
        base: int = 48,
        z_channels: int = 1,
        z_std: float = 0.1,
        norm: str = "batch",
        tanh: bool = False,
    ) -> None:
        super().__init__()
        self.channels, self.image_size, self.z_channels, self.z_std = channels, image_size, z_channels, z_std
        self.z_dim = z_channels * image_size * image_size
        b = base
        self.inc = DoubleConv(channels + z_channels, b, norm=norm)
        self.downs = nn.ModuleList(
            [
                DoubleConv(i, o, norm=norm)
                for i, o in ((b, 2 * b), (2 * b, 4 * b), (4 * b, 8 * b), (8 * b, 8 * b))
            ]
        )
        # Up-block k takes [upsampled h, skip] and halves the channels (the last keeps ``base``).
        specs = ((16 * b, 4 * b), (8 * b, 2 * b), (4 * b, b), (2 * b, b))
        self.ups = nn.ModuleList([DoubleConv(i, o, i // 2, norm=norm) for i, o in specs])
        self.out = nn.Conv2d(b, channels, 1)
        self.tanh = tanh

    def noise(self, x: Tensor, z: Tensor | None) -> Tensor:
        shape = (x.shape[0], self.z_channels, *x.shape[2:])
        if z is None:
            z = torch.randn(shape, device=x.device, dtype=x.dtype)
        elif z.shape[1:] != shape[1:]:
            if z[0].numel() != self.z_channels * x.shape[2] * x.shape[3]:
                raise ValueError(f"z of shape {tuple(z.shape)} does not fit a noise image {shape}")
            z = z.reshape(shape)
        return self.z_std * z.to(device=x.device, dtype=x.dtype)

    def forward(self, x: Tensor, z: Tensor | None = None) -> Tensor:
        h = torch.cat([x, self.noise(x, z)], dim=1) if self.z_channels else x
        hs = [self.inc(h)]
        for down in self.downs:
            hs.append(down(F.max_pool2d(hs[-1], 2)))
        h = hs.pop()
        for up in self.ups:
            skip = hs.pop()
            h = F.interpolate(h, size=skip.shape[2:], mode="bilinear", align_corners=True)
            h = up(torch.cat([skip, h], dim=1))
        h = self.out(h)
        return torch.tanh(h) if self.tanh else h


class ResBlock(nn.Module):
    """``act(skip(x) + res_ratio * conv(act(conv(x))))``; a bias-free 1x1 skip conv if widths differ."""

    def __init__(self, in_ch: int, out_ch: int, res_ratio: float = 0.1) -> None:
        super().__init__()
        hidden = min(in_ch, out_ch)
        self.conv0 = nn.Conv2d(in_ch, hidden, 3, padding=1)
        self.conv1 = nn.Conv2d(hidden, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1, bias=False) if in_ch != out_ch else None
        self.act = nn.LeakyReLU(0.2)
        self.res_ratio = res_ratio

    def forward(self, x: Tensor) -> Tensor:
        s = self.skip(x) if self.skip is not None else x
        return self.act(s + self.res_ratio * self.conv1(self.act(self.conv0(x))))


class ResNetPotential(nn.Module):
    """Residual potential ``f(y)`` of NOT/KNOT (App. C): [B, channels, image_size, image_size] -> [B].

    conv3x3 -> 2 blocks -> log2(image_size/4) x [avgpool 3/2 -> 2 blocks] -> flatten 4x4 -> linear.
    Widths nf * 2^i capped at nf_max. Convs use Kaiming-normal (fan_out, leaky ReLU) init.
    """

    def __init__(
        self, channels: int = 3, image_size: int = 64, nf: int = 64, nf_max: int = 512, res_ratio: float = 0.1
    ) -> None:
        super().__init__()
        n = int(math.log2(image_size // 4)) if image_size >= 4 else -1
        if n < 0 or 4 * 2**n != image_size:
            raise ValueError(f"image_size must be 4 * 2^k, got {image_size}")

        def width(i: int) -> int:
            return min(nf * 2**i, nf_max)

        layers: list[nn.Module] = [
            ResBlock(width(0), width(0), res_ratio),
            ResBlock(width(0), width(1), res_ratio),
        ]
        for i in range(1, n + 1):
            layers += [
                nn.AvgPool2d(3, stride=2, padding=1),
                ResBlock(width(i), width(i), res_ratio),
                ResBlock(width(i), width(i + 1), res_ratio),
            ]
        self.conv_in = nn.Conv2d(channels, nf, 3, padding=1)
        self.act = nn.LeakyReLU(0.2)
        self.blocks = nn.Sequential(*layers)
        self.fc = nn.Linear(width(n + 1) * 16, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.2, mode="fan_out", nonlinearity="leaky_relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, y: Tensor) -> Tensor:
        h = self.blocks(self.act(self.conv_in(y)))
        return self.fc(h.flatten(1)).squeeze(-1)


@register_map("unet", smoke={"base": 8})
def unet(
    channels: int = 3,
    image_size: int = 64,
    base: int = 48,
    z_channels: int = 1,
    z_std: float = 0.1,
    norm: str = "batch",
    tanh: bool = False,
) -> UNetMap:
    """NOT/KNOT UNet map, base width 48 (~9.7M parameters with one noise channel).

    ``z_channels=1`` (NOT's weak cost: one noise channel, std 0.1); ``z_channels=0`` for the strong cost.
    """
    return UNetMap(channels, image_size, base, z_channels, z_std, norm, tanh)


@register_potential("resnet_d", smoke={"nf": 8, "nf_max": 16})
def resnet_d(
    channels: int = 3, image_size: int = 64, nf: int = 64, nf_max: int = 512, res_ratio: float = 0.1
) -> ResNetPotential:
    """NOT/KNOT ResNet potential (~13.5M parameters at 32x32, ~22.9M at 64x64)."""
    return ResNetPotential(channels, image_size, nf, nf_max, res_ratio)
