"""energy_kernel_cost: its public function, PyTorch reference, fake kernels and autograd."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from fastot.ops import _checks, _library
from fastot.ops._backend import resolve
from fastot.ops._library import Kernels, needs


def energy_kernel_cost(
    x: Tensor, y: Tensor, gamma: float, scale: float = 1.0, *, backend: str | None = None
) -> Tensor:
    r"""KNOT's :math:`\gamma`-weak kernel cost with the distance-induced (energy) kernel.

    .. math:: c_b = \text{scale}\Big(\frac12 \frac1Z\sum_z \lVert x_b - y_{bz}\rVert
              - \frac{\gamma}{4} \frac{1}{Z(Z-1)} \sum_{z \ne z'} \lVert y_{bz} - y_{bz'} \rVert\Big)

    the unbiased estimator for kernel parameter 1. The gradient of a norm at 0 is taken
    as 0. Distances are accumulated from differences (never from the Gram expansion) in
    double precision on the fused CPU backend, so nearby samples keep their accuracy.

    Args:
        x (Tensor[B, ...]): inputs.
        y (Tensor[B, Z, ...]): Z >= 2 outputs T(x, z) per input.
        gamma (float): non-negative weakness of the cost.
        scale (float): non-negative factor.
        backend (str, optional): see :func:`fastot.quadratic_cost`.

    Returns:
        Tensor[B] in the dtype of ``x``. Once differentiable (double backward raises).
    """
    op = "energy_kernel_cost"
    x2, y3, gamma, scale = _checks.weak_inputs(op, x, y, gamma, scale)
    impl = resolve(x.device, backend)
    if impl == "eager":
        return reference(x2, y3, gamma, scale)
    return _library.call(impl, op, x2, y3, gamma, scale)[0]


class _SafeNorm(torch.autograd.Function):
    """Row norm of ``[..., d]`` whose gradient at 0 is defined as 0 (not NaN)."""

    @staticmethod
    def forward(ctx, diff: Tensor) -> Tensor:  # type: ignore[override]
        norm = diff.square().sum(dim=-1).sqrt()
        ctx.save_for_backward(diff, norm)
        return norm

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        diff, norm = ctx.saved_tensors
        inv = torch.where(norm > 0, 1.0 / norm, torch.zeros_like(norm))
        return diff * (grad * inv).unsqueeze(-1)


def safe_norm(diff: Tensor) -> Tensor:
    """Euclidean norm over the last dim, with gradient 0 at the origin."""
    return _SafeNorm.apply(diff)


def reference(x: Tensor, y: Tensor, gamma: float, scale: float = 1.0) -> Tensor:
    """The unbiased cost of ``x [B, d]`` and ``y [B, Z, d]``."""
    xa, ya = _checks.upcast(x), _checks.upcast(y)
    z = y.shape[1]
    transport = safe_norm(xa.unsqueeze(1) - ya).mean(dim=1)
    pair = safe_norm(ya.unsqueeze(1) - ya.unsqueeze(2))  # [B, Z, Z], zero diagonal
    spread = pair.sum(dim=(1, 2)) / (z * (z - 1))
    return (scale * (0.5 * transport - 0.25 * gamma * spread)).to(x.dtype)


# --- fake kernels and autograd: a fused backward op, whose own backward is not supported ----------
# The op returns (cost [B], norms [B, Z + Z (Z - 1) / 2]): ||x - y_z|| then ||y_i - y_j|| for
# i < j, in float32 (float64 for float64 inputs); backward reuses the norms.


def _fake(x: Tensor, y: Tensor, gamma: float, scale: float) -> tuple[Tensor, Tensor]:
    z = y.shape[1]
    norm_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    return x.new_empty(x.shape[0]), x.new_empty((x.shape[0], z + z * (z - 1) // 2), dtype=norm_dtype)


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, Tensor]) -> None:
    x, y, gamma, scale = inputs
    ctx.save_for_backward(x, y, output[1])
    ctx.gamma, ctx.scale = gamma, scale


def _backward(
    kernels: Kernels, ctx: Any, grad: Tensor, _g_norms: Tensor | None
) -> tuple[Tensor | None, Tensor | None, None, None]:
    x, y, norms = ctx.saved_tensors
    gx, gy = kernels.call("_energy_kernel_cost_backward", grad, x, y, norms, ctx.gamma, ctx.scale)
    return (gx if needs(ctx, 0) else None), (gy if needs(ctx, 1) else None), None, None


def _fake_backward(
    grad: Tensor, x: Tensor, y: Tensor, norms: Tensor, gamma: float, scale: float
) -> tuple[Tensor, Tensor]:
    return (
        torch.empty_like(x, memory_format=torch.contiguous_format),
        torch.empty_like(y, memory_format=torch.contiguous_format),
    )


_library.define("energy_kernel_cost", fake=_fake, setup_context=_setup_context, backward=_backward)
_library.define("_energy_kernel_cost_backward", fake=_fake_backward)
