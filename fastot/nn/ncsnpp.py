"""NCSN++ transport map without time embedding, the "large" generator of UOTM / UOTM-SD / S-JKO.

UOTM Sec. 5 and App. B (and S-JKO App. C) use the NCSN++ U-Net of score SDEs as the map ``T(x, z)``:
the source ``x`` is a Gaussian image with the data's shape, the auxiliary latent ``z ~ N(0, I_100)``
goes through a small mapping MLP and enters every residual block through adaptive group norm
(AdaGN); the output goes through ``tanh``. Compared with the diffusion version there is no time
embedding (and no dead time-projection weights), and there is one latent embedding for all blocks.

Layout (``resblock_type = biggan``, FIR (1,3,3,1) resampling, ``skip_rescale``,
``progressive_input = residual``, ``progressive = none``):

- encoder: conv3x3 -> per level ``num_res_blocks`` res blocks (+ attention at ``attn_resolutions``),
  then a down-sampling res block; a pyramid of the input, FIR-downsampled by a conv at every level,
  is added to the activations with a 1/sqrt(2) factor;
- middle: res block, attention, res block;
- decoder: per level ``num_res_blocks + 1`` res blocks on the concatenated skips (+ attention), then
  an up-sampling res block; GroupNorm -> SiLU -> conv3x3 -> tanh.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from fastot.nn.layers import (
    SQRT_HALF,
    AdaptiveGroupNorm,
    AttnBlock,
    FIRConvDownsample,
    FIRDownsample,
    FIRUpsample,
    MappingMLP,
    conv,
    norm_groups,
)
from fastot.nn.registry import register_map


class AdaGNResBlock(nn.Module):
    """BigGAN-type residual block with AdaGN (UOTM App. B).

    AdaGN -> SiLU -> [FIR up/down] -> conv3x3 -> AdaGN -> SiLU -> dropout -> conv3x3 (near-zero init);
    the skip is FIR-resampled too and goes through a 1x1 conv when channels or resolution change;
    the output is ``(skip + h) / sqrt(2)``.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        emb_dim: int,
        up: bool = False,
        down: bool = False,
        dropout: float = 0.0,
        fir_taps: Sequence[float] = (1, 3, 3, 1),
        skip_rescale: bool = True,
        init_scale: float = 0.0,
    ) -> None:
        super().__init__()
        if up and down:
            raise ValueError("a block resamples up or down, not both")
        self.norm0 = AdaptiveGroupNorm(in_ch, emb_dim)
        self.conv0 = conv(in_ch, out_ch, 3)
        self.norm1 = AdaptiveGroupNorm(out_ch, emb_dim)
        self.dropout = nn.Dropout(dropout)
        self.conv1 = conv(out_ch, out_ch, 3, init_scale=init_scale)
        self.resample: nn.Module | None = (
            FIRUpsample(fir_taps) if up else FIRDownsample(fir_taps) if down else None
        )
        self.skip = conv(in_ch, out_ch, 1) if (in_ch != out_ch or up or down) else None
        self.act = nn.SiLU()
        self.scale = SQRT_HALF if skip_rescale else 1.0

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.act(self.norm0(x, emb))
        if self.resample is not None:
            h, x = self.resample(h), self.resample(x)
        h = self.conv0(h)
        h = self.conv1(self.dropout(self.act(self.norm1(h, emb))))
        if self.skip is not None:
            x = self.skip(x)
        return (x + h) * self.scale


class NCSNpp(nn.Module):
    """NCSN++ U-Net map ``T(x, z)``: x [B, C, H, W] Gaussian image, z [B, z_dim] -> [B, C, H, W] in [-1, 1].

    ``z_dim`` (``nz``) 100, embedding width ``z_emb_dim`` 256 with ``n_mlp`` mapping layers (UOTM App. B;
    the settings of DDGAN, which UOTM follows). ``init_scale`` is the gain of the convs that close each
    residual branch and of the output conv (0: near-zero, as in the papers; the map then starts close
    to ``x -> 0``). ``z_dim = 0`` gives a deterministic map (a zero embedding: AdaGN's scale and shift are
    its biases).
    """

    def __init__(
        self,
        channels: int = 3,
        image_size: int = 32,
        nf: int = 128,
        ch_mult: Sequence[int] = (1, 2, 2, 2),
        num_res_blocks: int = 2,
        attn_resolutions: Sequence[int] = (16,),
        z_dim: int = 100,
        z_emb_dim: int = 256,
        n_mlp: int = 4,
        dropout: float = 0.0,
        fir_kernel: Sequence[int] = (1, 3, 3, 1),
        skip_rescale: bool = True,
        init_scale: float = 0.0,
        use_tanh: bool = True,
    ) -> None:
        super().__init__()
        n_levels = len(ch_mult)
        if image_size % 2 ** (n_levels - 1):
            raise ValueError(f"image_size {image_size} must be divisible by 2^{n_levels - 1}")
        self.channels, self.image_size, self.z_dim = channels, image_size, z_dim
        self.z_emb_dim, self.use_tanh = z_emb_dim, use_tanh
        self.mapping = MappingMLP(z_dim, z_emb_dim, n_mlp) if z_dim else None
        attn = set(attn_resolutions)

        def block(i: int, o: int, **kw: bool) -> AdaGNResBlock:
            return AdaGNResBlock(
                i, o, z_emb_dim, dropout=dropout, fir_taps=fir_kernel, skip_rescale=skip_rescale,
                init_scale=init_scale, **kw,
            )  # fmt: skip

        def attention(c: int) -> AttnBlock:
            return AttnBlock(c, skip_rescale=skip_rescale, init_scale=init_scale)

        self.conv_in = conv(channels, nf, 3)
        # Encoder. ``down[level]`` holds the blocks of a level; skip widths are recorded in order.
        self.down = nn.ModuleList()
        self.pyramid = nn.ModuleList()
        skips, ch, pyr_ch, res = [nf], nf, channels, image_size
        for level, mult in enumerate(ch_mult):
            stage = nn.ModuleDict({"res": nn.ModuleList(), "attn": nn.ModuleList()})
            for _ in range(num_res_blocks):
                stage["res"].append(block(ch, nf * mult))
                ch = nf * mult
                stage["attn"].append(attention(ch) if res in attn else nn.Identity())
                skips.append(ch)
            if level != n_levels - 1:
                stage["resample"] = block(ch, ch, down=True)
                self.pyramid.append(FIRConvDownsample(pyr_ch, ch, fir_kernel))
                pyr_ch, res = ch, res // 2
                skips.append(ch)
            self.down.append(stage)
        self.mid = nn.ModuleList([block(ch, ch), attention(ch), block(ch, ch)])
        # Decoder, from the coarsest level up.
        self.up = nn.ModuleList()
        for level in reversed(range(n_levels)):
            mult = ch_mult[level]
            stage = nn.ModuleDict({"res": nn.ModuleList(), "attn": nn.ModuleList()})
            for _ in range(num_res_blocks + 1):
                stage["res"].append(block(ch + skips.pop(), nf * mult))
                ch = nf * mult
            stage["attn"].append(attention(ch) if res in attn else nn.Identity())
            if level != 0:
                stage["resample"] = block(ch, ch, up=True)
                res *= 2
            self.up.append(stage)
        assert not skips
        self.norm_out = nn.GroupNorm(norm_groups(ch), ch, eps=1e-6)
        self.conv_out = conv(ch, channels, 3, init_scale=init_scale)
        self.act = nn.SiLU()

    def embed(self, z: Tensor | None, x: Tensor) -> Tensor:
        if self.mapping is None:
            return x.new_zeros(x.shape[0], self.z_emb_dim)
        if z is None:
            raise ValueError(f"this map needs a latent z of shape [B, {self.z_dim}]")
        return self.mapping(z.reshape(z.shape[0], -1).to(x.dtype))

    def forward(self, x: Tensor, z: Tensor | None = None) -> Tensor:
        emb = self.embed(z, x)
        pyramid = x
        h = self.conv_in(x)
        hs = [h]
        for level, stage in enumerate(self.down):
            for res_block, attn in zip(stage["res"], stage["attn"], strict=True):
                h = attn(res_block(h, emb))
                hs.append(h)
            if "resample" in stage:
                h = stage["resample"](h, emb)
                pyramid = self.pyramid[level](pyramid)
                h = (pyramid + h) * SQRT_HALF
                hs.append(h)
        h = self.mid[0](h, emb)
        h = self.mid[1](h)
        h = self.mid[2](h, emb)
        for stage in self.up:
            for res_block in stage["res"]:
                h = res_block(torch.cat([h, hs.pop()], dim=1), emb)
            h = stage["attn"][0](h)
            if "resample" in stage:
                h = stage["resample"](h, emb)
        h = self.conv_out(self.act(self.norm_out(h)))
        return torch.tanh(h) if self.use_tanh else h


@register_map("ncsnpp32", smoke={"nf": 8, "z_emb_dim": 16})
def ncsnpp32(
    channels: int = 3,
    image_size: int = 32,
    nf: int = 128,
    ch_mult: Sequence[int] = (1, 2, 2, 2),
    num_res_blocks: int = 2,
    attn_resolutions: Sequence[int] = (16,),
    z_dim: int = 100,
    z_emb_dim: int = 256,
    n_mlp: int = 4,
    dropout: float = 0.0,
    init_scale: float = 0.0,
    use_tanh: bool = True,
) -> NCSNpp:
    """CIFAR-10 NCSN++ map (UOTM App. B): nf 128, ch_mult (1,2,2,2), 2 blocks/level, attn at 16, n_mlp 4.

    ``use_tanh = False`` drops the output tanh, for targets whose pixels leave [-1, 1] (Gaussians).
    """
    return NCSNpp(
        channels, image_size, nf, tuple(ch_mult), num_res_blocks, tuple(attn_resolutions), z_dim,
        z_emb_dim, n_mlp, dropout, init_scale=init_scale, use_tanh=use_tanh,
    )  # fmt: skip


@register_map("ncsnpp256", smoke={"nf": 8, "z_emb_dim": 16})
def ncsnpp256(
    channels: int = 3,
    image_size: int = 256,
    nf: int = 64,
    ch_mult: Sequence[int] = (1, 1, 2, 2, 4, 4),
    num_res_blocks: int = 2,
    attn_resolutions: Sequence[int] = (16,),
    z_dim: int = 100,
    z_emb_dim: int = 256,
    n_mlp: int = 3,
    dropout: float = 0.0,
    init_scale: float = 0.0,
) -> NCSNpp:
    """CelebA-HQ 256 NCSN++ map (UOTM App. B): nf 64, ch_mult (1,1,2,2,4,4), attention at 16, n_mlp 3."""
    return NCSNpp(
        channels, image_size, nf, tuple(ch_mult), num_res_blocks, tuple(attn_resolutions), z_dim,
        z_emb_dim, n_mlp, dropout, init_scale=init_scale,
    )  # fmt: skip
