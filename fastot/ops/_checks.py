"""Input validation shared by every op and every backend.

Errors name the argument and the shapes, and are raised before any backend is
chosen, so every backend rejects bad input identically. The helpers at the end give
inputs the shapes and accumulation dtype the references and kernels take.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from fastot.checks import number_fault


def tensor(op: str, name: str, t: object, *, batched: bool = True) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(
            f"{op}: {name} must have a floating dtype (float16, bfloat16, float32, float64), got {t.dtype}"
        )
    if batched and t.dim() < 1:
        raise ValueError(f"{op}: {name} must have a batch dimension, got a 0-d tensor")
    return t


def same_device_dtype(op: str, **tensors: Tensor) -> None:
    (first_name, first), *rest = tensors.items()
    for name, t in rest:
        if t.device != first.device:
            raise ValueError(
                f"{op}: {first_name} and {name} must be on the same device, got {first.device} and {t.device}"
            )
        if t.dtype != first.dtype:
            raise TypeError(
                f"{op}: {first_name} and {name} must have the same dtype, got {first.dtype} and {t.dtype}"
            )


def number(op: str, name: str, value: object, *, positive: bool = False, nonneg: bool = False) -> float:
    fault = number_fault(value, positive=positive, nonneg=nonneg)
    if fault == "a number":
        raise TypeError(f"{op}: {name} must be a number, got {type(value).__name__}")
    if fault is not None:
        raise ValueError(f"{op}: {name} must be {fault}, got {float(value)}")  # type: ignore[arg-type]
    return float(value)  # type: ignore[arg-type]


def nonempty(op: str, name: str, t: Tensor) -> None:
    if t.shape[0] == 0:
        raise ValueError(f"{op}: {name} is an empty batch; a mean over no samples is undefined")


def weak_inputs(
    op: str, x: Tensor, y: Tensor, gamma: float, scale: float
) -> tuple[Tensor, Tensor, float, float]:
    """The weak costs' ``x [B, ...]``, ``y [B, Z, ...]``, flattened to ``[B, d]``, ``[B, Z, d]``."""
    tensor(op, "x", x)
    tensor(op, "y", y)
    same_device_dtype(op, x=x, y=y)
    if y.dim() < 2 or y.shape[0] != x.shape[0] or y.shape[2:] != x.shape[1:]:
        raise ValueError(
            f"{op}: y must have shape [B, Z, ...] with x's batch and feature dims; "
            f"got x {list(x.shape)} and y {list(y.shape)}"
        )
    if y.shape[1] < 2:
        raise ValueError(f"{op}: y must hold Z >= 2 samples per x (dim 1), got Z = {y.shape[1]}")
    # A negative weakness would reward the map for spreading its samples: not a weak cost.
    gamma = number(op, "gamma", gamma, nonneg=True)
    scale = number(op, "scale", scale, nonneg=True)
    return rows(x), samples(y), gamma, scale


def rows(t: Tensor) -> Tensor:
    """View ``[B, ...]`` as ``[B, d]`` (d = 1 for a 1-d input)."""
    if t.dim() == 2:  # already rows: a reshape would cost a view op per call
        return t
    return t.reshape(t.shape[0], math.prod(t.shape[1:]))


def samples(t: Tensor) -> Tensor:
    """View ``[B, Z, ...]`` as ``[B, Z, d]``."""
    if t.dim() == 3:
        return t
    return t.reshape(t.shape[0], t.shape[1], math.prod(t.shape[2:]))


def vector(op: str, name: str, t: Tensor) -> Tensor:
    """Accept ``[B]`` or ``[B, 1]`` scores and return ``[B]``."""
    if t.dim() == 1:
        return t
    if t.dim() == 2 and t.shape[1] == 1:
        return t.reshape(-1)
    raise ValueError(f"{op}: {name} must have shape [B] or [B, 1], got {list(t.shape)}")


def upcast(t: Tensor) -> Tensor:
    """Half and bfloat16 as float32, the accumulation type of the kernels (references compute in it)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t
