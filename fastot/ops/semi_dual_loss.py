"""semi_dual_loss: its public function, PyTorch reference, fake kernel and autograd."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from fastot.ops import _checks, _library
from fastot.ops._backend import resolve
from fastot.ops._library import Kernels, needs
from fastot.ops.psi_star import check_kind, psi, reference_grad2


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
    check_kind(op, "psi_source", psi_source)
    check_kind(op, "psi_target", psi_target)
    alpha = _checks.number(op, "alpha", alpha, positive=True)
    impl = resolve(cost.device, backend)
    if impl == "eager":
        return reference(cost1, fake1, real1, psi_source, psi_target, alpha)
    return _library.call(impl, op, cost1, fake1, real1, psi_source, psi_target, alpha)[0]


def reference(
    cost: Tensor,
    v_fake: Tensor,
    v_real: Tensor,
    psi_source: str = "kl",
    psi_target: str = "kl",
    alpha: float = 1.0,
) -> Tensor:
    """``mean_i Psi1*(-cost_i + v_fake_i) + mean_j Psi2*(-v_real_j)`` of ``[B]``, ``[M]`` scores."""
    up = _checks.upcast
    fake = alpha * psi(psi_source, (up(v_fake) - up(cost)) / alpha)
    real = alpha * psi(psi_target, -up(v_real) / alpha)
    return (fake.mean() + real.mean()).to(cost.dtype)


# --- fake kernel and autograd of fastot::semi_dual_loss --------------------------------------------
# The op returns (loss, d loss / d v_fake, d loss / d v_real) from one pass; backward scales the
# saved gradients (d loss / d cost = -d loss / d v_fake).


def _fake(
    cost: Tensor, v_fake: Tensor, v_real: Tensor, psi_source: str, psi_target: str, alpha: float
) -> tuple[Tensor, Tensor, Tensor]:
    return v_fake.new_empty(()), torch.empty_like(v_fake), torch.empty_like(v_real)


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, Tensor, Tensor]) -> None:
    cost, v_fake, v_real, psi_source, psi_target, alpha = inputs
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(cost, v_fake, v_real, output[1], output[2])
    ctx.psi_source, ctx.psi_target, ctx.alpha = psi_source, psi_target, alpha


def _backward(
    kernels: Kernels, ctx: Any, g_loss: Tensor | None, g_dfake: Tensor | None, g_dreal: Tensor | None
) -> tuple:
    cost, v_fake, v_real, d_fake, d_real = ctx.saved_tensors
    gf = torch.zeros_like(v_fake) if g_loss is None else g_loss * d_fake
    gr = torch.zeros_like(v_real) if g_loss is None else g_loss * d_real
    # Second-order terms, only reached when the derivative outputs are differentiated.
    if g_dfake is not None:
        t = v_fake - cost
        gf = gf + g_dfake * reference_grad2(t, ctx.psi_source, ctx.alpha) / v_fake.shape[0]
    if g_dreal is not None:
        gr = gr + g_dreal * reference_grad2(-v_real, ctx.psi_target, ctx.alpha) / v_real.shape[0]
    return (
        (-gf if needs(ctx, 0) else None),
        (gf if needs(ctx, 1) else None),
        (gr if needs(ctx, 2) else None),
        None,
        None,
        None,
    )


_library.define("semi_dual_loss", fake=_fake, setup_context=_setup_context, backward=_backward)
