"""quadratic_cost: its public function, PyTorch reference, fake kernel and autograd."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from fastot.ops import _checks, _library
from fastot.ops._backend import resolve
from fastot.ops._library import Kernels, needs


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
        return reference(x2, y2, scale)
    return _library.call(impl, op, x2, y2, scale)


def reference(x: Tensor, y: Tensor, scale: float = 1.0) -> Tensor:
    """``scale * ||x_i - y_i||^2`` per row of ``[B, d]`` inputs: the eager backend and the tests' truth."""
    return (scale * (_checks.upcast(x) - _checks.upcast(y)).square().sum(dim=1)).to(x.dtype)


# --- fake kernels and autograd of fastot::quadratic_cost and its backward op ---------------------


def _fake(x: Tensor, y: Tensor, scale: float) -> Tensor:
    return x.new_empty(x.shape[0])


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    x, y, scale = inputs
    ctx.save_for_backward(x, y)
    ctx.scale = scale


def _backward(kernels: Kernels, ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
    # d/dx = 2 s g (x - y) and d/dy = -d/dx: one kernel pass per requested gradient.
    x, y = ctx.saved_tensors
    gx = gy = None
    if needs(ctx, 0):
        gx = kernels.call("_quadratic_cost_backward", grad, x, y, ctx.scale)
        if needs(ctx, 1):
            gy = -gx
    elif needs(ctx, 1):
        gy = kernels.call("_quadratic_cost_backward", grad, y, x, ctx.scale)
    return gx, gy, None


def _fake_backward(grad: Tensor, x: Tensor, y: Tensor, scale: float) -> Tensor:
    return torch.empty_like(x, memory_format=torch.contiguous_format)


def _setup_context_backward(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    grad, a, b, scale = inputs
    ctx.save_for_backward(grad, a, b)
    ctx.scale = scale


def _backward_backward(kernels: Kernels, ctx: Any, gg: Tensor) -> tuple[Tensor | None, ...]:
    # _quadratic_cost_backward(g, a, b) = 2 s g (a - b) is linear in g and in (a - b).
    grad, a, b = ctx.saved_tensors
    s2 = 2.0 * ctx.scale
    d_grad = d_a = d_b = None
    if needs(ctx, 0):
        d_grad = (s2 * gg * (a - b)).sum(dim=1).to(grad.dtype)
    if needs(ctx, 1) or needs(ctx, 2):
        da = s2 * grad.to(gg.dtype).unsqueeze(1) * gg
        d_a = da if needs(ctx, 1) else None
        d_b = -da if needs(ctx, 2) else None
    return d_grad, d_a, d_b, None


_library.define("quadratic_cost", fake=_fake, setup_context=_setup_context, backward=_backward)
_library.define(
    "_quadratic_cost_backward",
    fake=_fake_backward,
    setup_context=_setup_context_backward,
    backward=_backward_backward,
)
