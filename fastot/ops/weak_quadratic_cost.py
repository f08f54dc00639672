"""weak_quadratic_cost: its public function, PyTorch reference, fake kernels and autograd."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from fastot.ops import _checks, _library
from fastot.ops._backend import resolve
from fastot.ops._library import Kernels, needs


def weak_quadratic_cost(
    x: Tensor, y: Tensor, gamma: float, scale: float = 1.0, *, backend: str | None = None
) -> Tensor:
    r"""NOT's :math:`\gamma`-weak quadratic cost estimated from ``Z`` samples of a stochastic map.

    .. math:: c_b = \text{scale}\Big(\frac{1}{2Z}\sum_z \lVert x_b - y_{bz} \rVert^2
              - \frac{\gamma}{2} \widehat{\mathrm{Var}}_b\Big)

    with :math:`\widehat{\mathrm{Var}}_b` the unbiased (divide by Z - 1) variance of the Z samples,
    summed over the feature dims.

    Args:
        x (Tensor[B, ...]): inputs.
        y (Tensor[B, Z, ...]): Z >= 2 outputs T(x, z) per input.
        gamma (float): non-negative weakness; 0 gives the strong quadratic cost.
        scale (float): non-negative factor.
        backend (str, optional): see :func:`fastot.quadratic_cost`.

    Returns:
        Tensor[B] in the dtype of ``x``. Once differentiable (double backward raises).
    """
    op = "weak_quadratic_cost"
    x2, y3, gamma, scale = _checks.weak_inputs(op, x, y, gamma, scale)
    impl = resolve(x.device, backend)
    if impl == "eager":
        return reference(x2, y3, gamma, scale)
    return _library.call(impl, op, x2, y3, gamma, scale)


def reference(x: Tensor, y: Tensor, gamma: float, scale: float = 1.0) -> Tensor:
    """The cost of ``x [B, d]`` and ``y [B, Z, d]``."""
    xa, ya = _checks.upcast(x), _checks.upcast(y)
    z = y.shape[1]
    transport = (xa.unsqueeze(1) - ya).square().sum(dim=(1, 2)) / (2 * z)
    var_hat = ya.var(dim=1, unbiased=True).sum(dim=1)
    return (scale * (transport - 0.5 * gamma * var_hat)).to(x.dtype)


# --- fake kernels and autograd: a fused backward op, whose own backward is not supported ----------


def _fake(x: Tensor, y: Tensor, gamma: float, scale: float) -> Tensor:
    return x.new_empty(x.shape[0])


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    x, y, gamma, scale = inputs
    ctx.save_for_backward(x, y)
    ctx.gamma, ctx.scale = gamma, scale


def _backward(kernels: Kernels, ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
    x, y = ctx.saved_tensors
    gx, gy = kernels.call("_weak_quadratic_cost_backward", grad, x, y, ctx.gamma, ctx.scale)
    return (gx if needs(ctx, 0) else None), (gy if needs(ctx, 1) else None), None, None


def _fake_backward(grad: Tensor, x: Tensor, y: Tensor, gamma: float, scale: float) -> tuple[Tensor, Tensor]:
    return (
        torch.empty_like(x, memory_format=torch.contiguous_format),
        torch.empty_like(y, memory_format=torch.contiguous_format),
    )


_library.define("weak_quadratic_cost", fake=_fake, setup_context=_setup_context, backward=_backward)
_library.define("_weak_quadratic_cost_backward", fake=_fake_backward)
