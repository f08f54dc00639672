"""Pixel transforms on image tensors: value scaling, flips, resizing and channel counts.

Images are uint8 ``[..., C, H, W]`` (0..255) on disk and float32 in [-1, 1] for training.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def to_signed_unit(images: Tensor) -> Tensor:
    """uint8 images (0..255) -> float32 in [-1, 1]."""
    return images.to(torch.float32).div_(127.5).sub_(1.0)


def to_uint8(images: Tensor) -> Tensor:
    """float images in [-1, 1] -> uint8 (0..255), rounded; out-of-range values are clipped."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round_().to(torch.uint8)


def hflip(images: Tensor) -> Tensor:
    """Mirror images left-right (the last axis)."""
    return images.flip(-1)


def random_hflip(images: Tensor, generator: torch.Generator | None = None, p: float = 0.5) -> Tensor:
    """Flip each image of a batch ``[B, C, H, W]`` with probability ``p``."""
    mask = torch.rand(images.shape[0], generator=generator) < p
    return torch.where(mask[:, None, None, None], images.flip(-1), images)


def resize_array(images: np.ndarray | Tensor, size: int, chunk: int = 2048) -> Tensor:
    """Resize uint8 ``[N, C, H, W]`` images to ``size`` x ``size`` (bilinear, antialiased when shrinking)."""
    x = torch.as_tensor(images)
    if x.shape[-2:] == (size, size):
        return x.to(torch.uint8).contiguous()
    out = torch.empty(x.shape[0], x.shape[1], size, size, dtype=torch.uint8)
    shrink = min(x.shape[-2:]) > size
    # In chunks: a whole data set in float32 would take four times its uint8 memory.
    for i in range(0, x.shape[0], chunk):
        part = x[i : i + chunk].to(torch.float32)
        part = F.interpolate(part, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)
        out[i : i + chunk] = part.round_().clamp_(0, 255).to(torch.uint8)
    return out


def check_channels(channels: int) -> int:
    """``channels`` itself if it is 1 (gray) or 3 (RGB); anything else is a ValueError."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    return channels


def set_channels(images: Tensor, channels: int) -> Tensor:
    """uint8 ``[N, c, H, W]``, c in {1, 3} -> ``channels`` channels (gray replicated, or ITU-R 601 luma)."""
    c = images.shape[1]
    if c == channels:
        return images
    if channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (images.float() * w).sum(1, keepdim=True).round_().clamp_(0, 255).to(torch.uint8)
