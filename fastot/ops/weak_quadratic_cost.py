from __future__ import annotations

import torch
from torch import Tensor

from fastot.ops import _checks, _reference
from fastot.ops._backend import resolve


def check_weak_inputs(
    op: str, x: Tensor, y: Tensor, gamma: float, scale: float
) -> tuple[Tensor, Tensor, float, float]:
    """Validate ``x [B, ...]``, ``y [B, Z, ...]`` and flatten them to ``[B, d]``, ``[B, Z, d]``."""
    _checks.tensor(op, "x", x)
    _checks.tensor(op, "y", y)
    _checks.same_device_dtype(op, x=x, y=y)
    if y.dim() < 2 or y.shape[0] != x.shape[0] or y.shape[2:] != x.shape[1:]:
        raise ValueError(
            f"{op}: y must have shape [B, Z, ...] with x's batch and feature dims; "
            f"got x {list(x.shape)} and y {list(y.shape)}"
        )
    if y.shape[1] < 2:
        raise ValueError(f"{op}: y must hold Z >= 2 samples per x (dim 1), got Z = {y.shape[1]}")
    # A negative weakness would reward the map for spreading its samples: not a weak cost.
    gamma = _checks.number(op, "gamma", gamma, nonneg=True)
    scale = _checks.number(op, "scale", scale, nonneg=True)
    return _checks.rows(x), _checks.samples(y), gamma, scale


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
    x2, y3, gamma, scale = check_weak_inputs("weak_quadratic_cost", x, y, gamma, scale)
    impl = resolve(x.device, backend)
    if impl == "eager":
        return _reference.weak_quadratic_cost(x2, y3, gamma, scale)
    if impl == "triton":
        from fastot import kernels

        return kernels.weak_quadratic_cost(x2, y3, gamma, scale)
    return torch.ops.fastot.weak_quadratic_cost(x2, y3, gamma, scale)
