"""Image grids as PNG (Pillow; no torchvision)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from torch import Tensor


def grid_array(images: Tensor, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """[B, C, H, W] in [-1, 1] -> uint8 [rows*(H+pad)+pad, cols*(W+pad)+pad, 3] (gray replicated)."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be [B, 1 or 3, H, W], got {list(images.shape)}")
    b, c, h, w = images.shape
    cols = nrow or math.ceil(math.sqrt(b))
    rows = math.ceil(b / cols)
    imgs = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte()
    if c == 1:
        imgs = imgs.expand(b, 3, h, w)
    out = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), dtype=np.uint8)
    for i in range(b):
        r, q = divmod(i, cols)
        y0, x0 = pad + r * (h + pad), pad + q * (w + pad)
        out[y0 : y0 + h, x0 : x0 + w] = imgs[i].permute(1, 2, 0).numpy()
    return out


# Saved grids are upsampled (nearest neighbour, whole pixels) until their shorter side reaches this,
# so that 16x16 or 32x32 samples can be looked at without zooming.
MIN_SAVED_SIDE = 512


def upsample(grid: np.ndarray, min_side: int = MIN_SAVED_SIDE) -> np.ndarray:
    """``grid`` [H, W, C] repeated k x k per pixel, the smallest k with min(H, W) * k >= ``min_side``."""
    k = max(1, math.ceil(min_side / min(grid.shape[:2])))
    return grid if k == 1 else grid.repeat(k, axis=0).repeat(k, axis=1)


def save_grid(images: Tensor, path: Path, nrow: int | None = None) -> np.ndarray:
    """Writes the grid of ``images`` as a PNG at ``path`` (upsampled to ``MIN_SAVED_SIDE``) and
    returns the grid at its own resolution."""
    from PIL import Image

    grid = grid_array(images, nrow)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(upsample(grid)).save(path)
    return grid
