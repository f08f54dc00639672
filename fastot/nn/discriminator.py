"""Residual down-sampling potentials ``v(y)`` of UOTM / UOTM-SD / S-JKO (the "large" model's discriminator).

UOTM App. B follows DDGAN's discriminators with the time conditioning and the image pair removed:
a 1x1 stem, residual blocks that FIR-downsample by 2 (LeakyReLU 0.2), a minibatch-stddev channel,
a 3x3 conv, a **sum** over pixels and a linear layer to one scalar per sample (no sigmoid).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from fastot.nn.layers import SQRT_HALF, FIRDownsample, MinibatchStd, conv, dense
from fastot.nn.registry import register_potential


class DownConvBlock(nn.Module):
    """act -> conv3x3 -> act -> [FIR down x2 on both paths] -> conv3x3 (near-zero init); skip conv1x1.

    Output ``(h + skip) / sqrt(2)``.
    """

    def __init__(
        self, in_ch: int, out_ch: int, down: bool = False, fir_kernel: Sequence[int] = (1, 3, 3, 1)
    ) -> None:
        super().__init__()
        self.act = nn.LeakyReLU(0.2)
        self.conv1 = conv(in_ch, out_ch, 3)
        self.conv2 = conv(out_ch, out_ch, 3, init_scale=0.0)
        self.skip = conv(in_ch, out_ch, 1, bias=False)
        self.down = FIRDownsample(fir_kernel) if down else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.act(self.conv1(self.act(x)))
        if self.down is not None:
            h, x = self.down(h), self.down(x)
        return (self.conv2(h) + self.skip(x)) * SQRT_HALF


class ResDiscriminator(nn.Module):
    """Residual potential: [B, C, H, W] -> [B].

    ``widths`` are the block widths in units of ``ngf``; ``downs`` says which blocks halve the resolution.
    The stddev layer groups ``stddev_group`` samples (any batch size works, see :class:`MinibatchStd`).
    """

    def __init__(
        self,
        channels: int = 3,
        ngf: int = 64,
        widths: Sequence[int] = (2, 2, 4, 8, 8),
        downs: Sequence[bool] = (False, True, True, True),
        stddev_group: int = 4,
        stddev_features: int = 1,
        final_init_scale: float = 0.0,
    ) -> None:
        super().__init__()
        if len(widths) != len(downs) + 1:
            raise ValueError("widths has one more entry (the stem) than downs")
        ch = [w * ngf for w in widths]
        self.stem = conv(channels, ch[0], 1, padding=0)
        self.blocks = nn.Sequential(*[DownConvBlock(ch[i], ch[i + 1], d) for i, d in enumerate(downs)])
        self.stddev = MinibatchStd(stddev_group, stddev_features)
        self.final_conv = conv(ch[-1] + stddev_features, ch[-1], 3, init_scale=final_init_scale)
        self.act = nn.LeakyReLU(0.2)
        self.linear = dense(ch[-1], 1)

    def forward(self, y: Tensor) -> Tensor:
        h = self.blocks(self.stem(y))
        h = self.act(self.final_conv(self.stddev(h)))
        return self.linear(h.sum(dim=(2, 3))).squeeze(-1)


@register_potential("disc32", smoke={"ngf": 8})
def disc32(
    channels: int = 3,
    image_size: int = 32,
    ngf: int = 64,
    stddev_group: int = 4,
    final_init_scale: float = 0.0,
) -> ResDiscriminator:
    """CIFAR-10 potential (UOTM App. B, DDGAN's small D): widths 2,2,4,8,8 x ngf, 3 downs (32 -> 4); ~12.2M.

    ``final_init_scale`` is the gain of the conv after the stddev layer (0: near-zero, as in the papers).
    """
    if image_size % 8:
        raise ValueError(f"disc32 needs an image size divisible by 8, got {image_size}")
    return ResDiscriminator(
        channels, ngf, (2, 2, 4, 8, 8), (False, True, True, True), stddev_group, 1, final_init_scale
    )


@register_potential("disc256", smoke={"ngf": 8})
def disc256(
    channels: int = 3,
    image_size: int = 256,
    ngf: int = 64,
    stddev_group: int = 4,
    final_init_scale: float = 1.0,
) -> ResDiscriminator:
    """CelebA-HQ 256 potential (UOTM App. B, DDGAN's large D): widths 2,4,8,8,8,8,8 x ngf, six downs; ~26.9M.

    Smaller images drop the last down-sampling blocks so the stddev layer always sees 4x4 maps
    (64 -> four downs). ``final_init_scale`` defaults to 1 (this model's final conv has the default init).
    """
    n_down = int(math.log2(image_size // 4)) if image_size >= 8 else 0
    if image_size < 8 or 4 * 2**n_down != image_size or n_down > 6:
        raise ValueError(f"disc256 needs image_size = 4 * 2^k with 1 <= k <= 6, got {image_size}")
    widths = (2, 4, 8, 8, 8, 8, 8)[: n_down + 1]
    return ResDiscriminator(channels, ngf, widths, (True,) * n_down, stddev_group, 1, final_init_scale)
