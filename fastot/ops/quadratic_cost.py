from __future__ import annotations

import torch
from torch import Tensor

from fastot.ops import _checks, _reference
from fastot.ops._backend import resolve


def quadratic_cost(x: Tensor, y: Tensor, scale: float = 1.0, *, backend: str | None = None) -> Tensor:
    r"""Batched quadratic transport cost :math:`c_i = \text{scale} \cdot \lVert x_i - y_i \rVert^2`.

    Serves UOTM (``scale = tau``) and S-JKO (``scale = 1 / (2 d h)``).

    Args:
        x (Tensor[B, ...]): source points (any feature dims, flattened to d).
        y (Tensor[B, ...]): target points, same shape, dtype and device as ``x``.
        scale (float): non-negative factor.
        backend (str, optional): ``"auto"``, ``"eager"``, ``"cpp"``, ``"cuda"`` or ``"triton"``.

    Returns:
        Tensor[B] in the dtype of ``x`` (half and bfloat16 accumulate in float32).
    """
    op = "quadratic_cost"
    _checks.tensor(op, "x", x)
    _checks.tensor(op, "y", y)
    _checks.same_device_dtype(op, x=x, y=y)
    if x.shape != y.shape:
        raise ValueError(f"{op}: x and y must have the same shape, got {list(x.shape)} and {list(y.shape)}")
    scale = _checks.number(op, "scale", scale, nonneg=True)
    x2, y2 = _checks.rows(x), _checks.rows(y)
    impl = resolve(x.device, backend)
    if impl == "eager":
        return _reference.quadratic_cost(x2, y2, scale)
    if impl == "triton":
        from fastot import kernels

        return kernels.quadratic_cost(x2, y2, scale)
    return torch.ops.fastot.quadratic_cost(x2, y2, scale)
