from __future__ import annotations

from torch import Tensor

from fastot.ops import _checks, _reference, _registry
from fastot.ops._backend import resolve


def semi_dual_loss(
    cost: Tensor,
    v_fake: Tensor,
    v_real: Tensor,
    psi_source: str = "kl",
    psi_target: str = "kl",
    alpha: float = 1.0,
    *,
    backend: str | None = None,
) -> Tensor:
    r"""UOTM potential loss: mean_i Psi1*(-c_i + v(y_hat_i)) + mean_j Psi2*(-v(y_j)).

    The fused backends compute the value and the gradients for all three inputs in one
    pass and save the gradients for backward (no recomputation).

    Args:
        cost (Tensor[B] or Tensor[B, 1]): transport cost of each generated sample.
        v_fake (Tensor[B] or Tensor[B, 1]): potential at the generated samples.
        v_real (Tensor[M] or Tensor[M, 1]): potential at the data samples.
        psi_source, psi_target (str): :func:`fastot.psi_star` kinds; ``"identity"`` for both gives OTM,
            ``psi_source="identity"`` the source-fixed UOTM.
        alpha (float): > 0, the UOTM-SD scaling ``alpha * Psi*(t / alpha)`` of both terms.
        backend (str, optional): see :func:`fastot.quadratic_cost`.

    Returns:
        A 0-d tensor in the inputs' dtype.
    """
    op = "semi_dual_loss"
    for name, t in (("cost", cost), ("v_fake", v_fake), ("v_real", v_real)):
        _checks.tensor(op, name, t)
    _checks.same_device_dtype(op, cost=cost, v_fake=v_fake, v_real=v_real)
    cost1 = _checks.vector(op, "cost", cost)
    fake1 = _checks.vector(op, "v_fake", v_fake)
    real1 = _checks.vector(op, "v_real", v_real)
    if cost1.shape != fake1.shape:
        raise ValueError(
            f"{op}: cost and v_fake must hold one value per generated sample, "
            f"got shapes {list(cost.shape)} and {list(v_fake.shape)}"
        )
    _checks.nonempty(op, "v_fake", fake1)
    _checks.nonempty(op, "v_real", real1)
    _checks.kind(op, "psi_source", psi_source)
    _checks.kind(op, "psi_target", psi_target)
    alpha = _checks.number(op, "alpha", alpha, positive=True)
    impl = resolve(cost.device, backend)
    if impl == "eager":
        return _reference.semi_dual_loss(cost1, fake1, real1, psi_source, psi_target, alpha)
    if impl == "triton":
        from fastot import kernels

        return kernels.semi_dual_loss(cost1, fake1, real1, psi_source, psi_target, alpha)
    return _registry.semi_dual_loss(cost1, fake1, real1, psi_source, psi_target, alpha)
