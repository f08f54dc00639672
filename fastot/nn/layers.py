"""Building blocks of the image networks, in plain PyTorch (no custom CUDA or JIT-compiled ops).

- FIR (1, 3, 3, 1) resampling (the up/down filters of NCSN++ and the UOTM discriminators,
  UOTM App. B / S-JKO App. C, inherited from StyleGAN2) written as depthwise ``conv2d`` /
  ``conv_transpose2d``.
- Adaptive group norm (AdaGN): a group norm whose per-channel scale and shift are a linear function
  of a latent embedding; this is how the latent ``z`` enters every residual block of the NCSN++
  generator (UOTM Sec. 5 / App. B: "z is injected by adaptive group normalization").
- Self-attention over pixels, a minibatch-stddev layer, variance-scaling initialisation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SQRT_HALF = 1.0 / math.sqrt(2.0)


# --------------------------------------------------------------------------------------------------
# initialisation
# --------------------------------------------------------------------------------------------------


def variance_scaling_(weight: Tensor, scale: float = 1.0) -> Tensor:
    """Uniform variance-scaling init with ``fan_avg`` (the score-SDE ``default_init``).

    ``scale == 0`` gives a tiny but non-zero gain (1e-10): the layer starts as (almost) a zero map,
    which keeps residual blocks close to the identity at initialisation.
    """
    scale = 1e-10 if scale == 0 else scale
    receptive = weight[0][0].numel() if weight.dim() > 2 else 1
    fan_in, fan_out = weight.shape[1] * receptive, weight.shape[0] * receptive
    bound = math.sqrt(3.0 * scale / ((fan_in + fan_out) / 2.0))
    with torch.no_grad():
        return weight.uniform_(-bound, bound)


def conv(
    in_ch: int,
    out_ch: int,
    kernel: int = 3,
    stride: int = 1,
    padding: int | None = None,
    bias: bool = True,
    init_scale: float = 1.0,
) -> nn.Conv2d:
    """A ``Conv2d`` ('same' padding by default) with variance-scaling init and zero bias."""
    layer = nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2 if padding is None else padding, bias=bias)
    variance_scaling_(layer.weight, init_scale)
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


def dense(in_features: int, out_features: int, init_scale: float = 1.0) -> nn.Linear:
    """A ``Linear`` with variance-scaling init and zero bias."""
    layer = nn.Linear(in_features, out_features)
    variance_scaling_(layer.weight, init_scale)
    nn.init.zeros_(layer.bias)
    return layer


def norm_groups(channels: int, max_groups: int = 32) -> int:
    """NCSN++'s group count, ``min(C // 4, 32)`` (at least 1)."""
    return max(1, min(channels // 4, max_groups))


# --------------------------------------------------------------------------------------------------
# FIR resampling
# --------------------------------------------------------------------------------------------------


def fir_kernel_2d(taps: Sequence[float] = (1, 3, 3, 1)) -> Tensor:
    """Separable 2-D FIR kernel, the outer product of ``taps`` normalised to sum 1."""
    k = torch.as_tensor(taps, dtype=torch.float32)
    k2 = torch.outer(k, k)
    return k2 / k2.sum()


class _FIR(nn.Module):
    def __init__(self, taps: Sequence[float]) -> None:
        super().__init__()
        if len(taps) % 2:
            raise ValueError(f"FIR resampling by 2 needs an even number of taps, got {len(taps)}")
        self.register_buffer("kernel", fir_kernel_2d(taps), persistent=False)

    def _weight(self, x: Tensor, gain: float = 1.0) -> Tensor:
        k = self.kernel.to(dtype=x.dtype) * gain
        # Depthwise: the same (symmetric, so flip-free) kernel for every channel.
        return k.expand(x.shape[1], 1, *k.shape)


class FIRDownsample(nn.Module):
    """Blur with the FIR kernel and keep every second pixel: [B,C,H,W] -> [B,C,H/2,W/2].

    Equal to StyleGAN2's ``upfirdn2d(x, k, down=2, pad=((K-2+1)//2, (K-2)//2))``; for the 4-tap
    kernel that is a stride-2 depthwise conv with one pixel of zero padding per side.
    """

    def __init__(self, taps: Sequence[float] = (1, 3, 3, 1)) -> None:
        super().__init__()
        self.fir = _FIR(taps)
        p = len(taps) - 2
        self.pad = ((p + 1) // 2, p // 2)

    def forward(self, x: Tensor) -> Tensor:
        x = F.pad(x, (self.pad[0], self.pad[1], self.pad[0], self.pad[1]))
        return F.conv2d(x, self.fir._weight(x), stride=2, groups=x.shape[1])


class FIRUpsample(nn.Module):
    """Zero-stuff by 2 and filter with 4x the FIR kernel: [B,C,H,W] -> [B,C,2H,2W].

    Equal to ``upfirdn2d(x, 4k, up=2, pad=((K-2+1)//2 + 1, (K-2)//2))``, written as a stride-2
    depthwise ``conv_transpose2d`` (for the 4-tap kernel: padding 1).
    """

    def __init__(self, taps: Sequence[float] = (1, 3, 3, 1)) -> None:
        super().__init__()
        self.fir = _FIR(taps)
        k = len(taps)
        # conv_transpose pads K-1-P on both sides of the zero-stuffed signal (length 2H-1); upfirdn
        # pads (K-2+1)//2+1 on the left of the length-2H signal. For even K both give P = K/2 - 1.
        self.padding = k // 2 - 1

    def forward(self, x: Tensor) -> Tensor:
        return F.conv_transpose2d(
            x, self.fir._weight(x, gain=4.0), stride=2, padding=self.padding, groups=x.shape[1]
        )


class FIRConvDownsample(nn.Module):
    """Blur with the FIR kernel, then a stride-2 3x3 conv (StyleGAN2's fused ``conv_downsample_2d``).

    Used for the NCSN++ input pyramid (``progressive_input = residual``): H -> H/2, C_in -> C_out.
    """

    def __init__(
        self, in_ch: int, out_ch: int, taps: Sequence[float] = (1, 3, 3, 1), init_scale: float = 1.0
    ) -> None:
        super().__init__()
        self.fir = _FIR(taps)
        p = (len(taps) - 2) + (3 - 1)
        self.pad = ((p + 1) // 2, p // 2)
        self.conv = conv(in_ch, out_ch, 3, stride=2, padding=0, init_scale=init_scale)

    def forward(self, x: Tensor) -> Tensor:
        x = F.pad(x, (self.pad[0], self.pad[1], self.pad[0], self.pad[1]))
        x = F.conv2d(x, self.fir._weight(x), groups=x.shape[1])
        return self.conv(x)


# --------------------------------------------------------------------------------------------------
# normalisation, latent mapping, attention
# --------------------------------------------------------------------------------------------------


class AdaptiveGroupNorm(nn.Module):
    """AdaGN: ``gamma(e) * GroupNorm(h) + beta(e)`` with ``[gamma, beta] = Linear(e)`` (UOTM App. B).

    The group norm has no affine parameters of its own; the linear layer's bias starts at gamma = 1,
    beta = 0, so at initialisation (and for a zero embedding) AdaGN is a plain group norm.
    """

    def __init__(self, channels: int, emb_dim: int, groups: int | None = None, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(groups or norm_groups(channels), channels, eps=eps, affine=False)
        self.style = dense(emb_dim, 2 * channels)
        with torch.no_grad():
            self.style.bias[:channels] = 1.0
            self.style.bias[channels:] = 0.0

    def forward(self, h: Tensor, emb: Tensor) -> Tensor:
        gamma, beta = self.style(emb)[:, :, None, None].chunk(2, dim=1)
        return gamma * self.norm(h) + beta


class PixelNorm(nn.Module):
    """Normalise each latent vector to unit root-mean-square (StyleGAN's mapping-network input)."""

    def forward(self, z: Tensor) -> Tensor:
        return z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class MappingMLP(nn.Module):
    """Latent mapping z -> embedding: PixelNorm, Linear(z_dim, emb) + SiLU, ``n_mlp`` x (Linear + SiLU)."""

    def __init__(self, z_dim: int = 100, emb_dim: int = 256, n_mlp: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = [PixelNorm(), dense(z_dim, emb_dim), nn.SiLU()]
        for _ in range(n_mlp):
            layers += [dense(emb_dim, emb_dim), nn.SiLU()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class AttnBlock(nn.Module):
    """Single-head self-attention over the H*W positions with a scaled residual (NCSN++ ``AttnBlockpp``).

    GroupNorm -> 1x1 q, k, v -> softmax(q k^T / sqrt(C)) v -> 1x1 out (near-zero init) -> (x + h)/sqrt(2).
    """

    def __init__(self, channels: int, skip_rescale: bool = True, init_scale: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(norm_groups(channels), channels, eps=1e-6)
        self.q = conv(channels, channels, 1, init_scale=0.1)
        self.k = conv(channels, channels, 1, init_scale=0.1)
        self.v = conv(channels, channels, 1, init_scale=0.1)
        self.out = conv(channels, channels, 1, init_scale=init_scale)
        self.skip_rescale = skip_rescale

    def forward(self, x: Tensor) -> Tensor:
        b, c, hgt, wid = x.shape
        h = self.norm(x)

        def tokens(t: Tensor) -> Tensor:  # [B, C, H, W] -> [B, 1, HW, C]
            return t.flatten(2).transpose(1, 2).unsqueeze(1)

        a = F.scaled_dot_product_attention(tokens(self.q(h)), tokens(self.k(h)), tokens(self.v(h)))
        h = self.out(a.squeeze(1).transpose(1, 2).reshape(b, c, hgt, wid))
        return (x + h) * SQRT_HALF if self.skip_rescale else x + h


# --------------------------------------------------------------------------------------------------
# minibatch standard deviation
# --------------------------------------------------------------------------------------------------


def largest_divisor_at_most(n: int, bound: int) -> int:
    """The largest ``d <= bound`` that divides ``n`` (1 if nothing larger does)."""
    for d in range(min(n, bound), 0, -1):
        if n % d == 0:
            return d
    return 1


class MinibatchStd(nn.Module):
    """Append the minibatch standard deviation as ``features`` extra channels (StyleGAN2; UOTM's potential).

    The batch is split into groups of ``G`` samples (sample ``i`` is in group ``i mod (B/G)``). Per group
    and per feature slice, the std over the group is averaged over channels and pixels and broadcast as
    a constant channel. ``G`` is ``group_size`` when it divides the batch; otherwise the **largest
    divisor of B not above group_size** is used, so any batch size works (e.g. B=6, group 4 -> G=3;
    a prime B above group_size gives G=1, a constant 1e-4 channel that carries no batch statistics).
    Note the potential then depends on the other samples of its group, as in the reference model.
    """

    def __init__(self, group_size: int = 4, features: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.group_size, self.features, self.eps = group_size, features, eps

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        g = largest_divisor_at_most(b, self.group_size)
        f = self.features
        y = x.reshape(g, b // g, f, c // f, h, w).float()
        y = (y - y.mean(dim=0)).pow(2).mean(dim=0)
        y = (y + self.eps).sqrt().mean(dim=(2, 3, 4))  # [B/G, F]
        y = y.to(x.dtype).reshape(b // g, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)
