from __future__ import annotations

from torch import Tensor

from fastot.ops import _checks, _reference, _registry
from fastot.ops._backend import resolve


def psi_star(t: Tensor, kind: str, alpha: float = 1.0, *, backend: str | None = None) -> Tensor:
    r"""Convex conjugate of an f-divergence generator, scaled: :math:`\alpha\,\Psi^*(t/\alpha)`.

    Kinds: ``"identity"`` (t, the balanced OT case), ``"kl"`` (:math:`e^t - 1`), ``"chi2"``
    (:math:`s^2/4 + s` with :math:`s = \max(t, -2)`), ``"softplus"`` (:math:`2\log(1+e^t) - 2\log 2`,
    so :math:`\Psi^*(0) = 0,\ \Psi^{*\prime}(0) = 1`) and ``"softplus_unscaled"`` (:math:`\log(1+e^t)`).
    Softplus kinds are stable for any finite ``t``; ``"kl"`` overflows like ``exp``: +inf (not NaN)
    once ``t / alpha`` exceeds about 88.7 in float32.

    Args:
        t (Tensor[...]): any shape, floating dtype.
        kind (str): one of the kinds above.
        alpha (float): > 0; ``alpha -> inf`` tends to the identity (UOTM-SD schedules it upward).
        backend (str, optional): see :func:`fastot.quadratic_cost`.

    Returns:
        Tensor of the shape and dtype of ``t``. Differentiable twice.
    """
    op = "psi_star"
    _checks.tensor(op, "t", t, batched=False)
    _checks.kind(op, "kind", kind)
    alpha = _checks.number(op, "alpha", alpha, positive=True)
    impl = resolve(t.device, backend)
    if impl == "eager":
        return _reference.psi_star(t, kind, alpha)
    if impl == "triton":
        from fastot import kernels

        return kernels.psi_star(t, kind, alpha)
    return _registry.psi_star(t, kind, alpha)
