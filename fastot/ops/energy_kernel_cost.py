from __future__ import annotations

import torch
from torch import Tensor

from fastot.ops import _reference
from fastot.ops._backend import resolve
from fastot.ops.weak_quadratic_cost import check_weak_inputs


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
    x2, y3, gamma, scale = check_weak_inputs("energy_kernel_cost", x, y, gamma, scale)
    impl = resolve(x.device, backend)
    if impl == "eager":
        return _reference.energy_kernel_cost(x2, y3, gamma, scale)
    if impl == "triton":
        from fastot import kernels

        return kernels.energy_kernel_cost(x2, y3, gamma, scale)
    return torch.ops.fastot.energy_kernel_cost(x2, y3, gamma, scale)[0]
