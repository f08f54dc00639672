from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from fastot.ops import _checks, _reference
from fastot.ops._backend import resolve


def r1_penalty(grad: Tensor, weight: float, *, backend: str | None = None) -> Tensor:
    r"""R1 penalty :math:`\frac{w}{2} \frac1B \sum_i \lVert g_i \rVert^2` of a potential's input gradient.

    Its backward is itself differentiable, so the potential trains through the double backward.

    Args:
        grad (Tensor[B, ...]): gradient of the potential at the data (``create_graph=True``).
        weight (float): non-negative R1 weight (the papers' ``r1_gamma`` / ``lmbda``).
        backend (str, optional): see :func:`fastot.quadratic_cost`.

    Returns:
        A 0-d tensor in the dtype of ``grad``.
    """
    op = "r1_penalty"
    _checks.tensor(op, "grad", grad)
    _checks.nonempty(op, "grad", grad)
    weight = _checks.number(op, "weight", weight, nonneg=True)
    g2 = _checks.rows(grad)
    impl = resolve(grad.device, backend)
    if impl == "eager":
        return _reference.r1_penalty(g2, weight)
    if impl == "triton":
        from fastot import kernels

        return kernels.r1_penalty(g2, weight)
    return torch.ops.fastot.r1_penalty(g2, weight)


def r1_regularizer(
    potential: Callable[[Tensor], Tensor], real: Tensor, weight: float, *, backend: str | None = None
) -> Tensor:
    """R1 penalty of ``potential`` at the data ``real`` (Tensor[B, ...]).

    Takes ``d potential(real).sum() / d real`` with ``create_graph=True`` and applies
    :func:`r1_penalty`, so the result backpropagates into the potential's parameters.
    ``real`` does not need ``requires_grad``: a detached copy that requires it is used.
    """
    _checks.tensor("r1_regularizer", "real", real)
    weight = _checks.number("r1_regularizer", "weight", weight, nonneg=True)
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(potential(real).sum(), real, create_graph=True)
    return r1_penalty(grad, weight, backend=backend)
