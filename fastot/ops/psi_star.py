"""psi_star: the Psi* kinds, the public function, its PyTorch reference, fake kernel and autograd."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from fastot.ops import _checks, _library
from fastot.ops._backend import resolve
from fastot.ops._library import Kernels, needs

# The Psi* kinds: the one Python list (the Triton kernels number the kinds by their position here);
# the C++ list, FASTOT_PSI_KINDS in csrc/common/psi.h, keeps this order.
PSI_KINDS = ("identity", "kl", "chi2", "softplus", "softplus_unscaled")

_LOG2 = 0.6931471805599453


def check_kind(op: str, name: str, value: object) -> str:
    if value not in PSI_KINDS:
        raise ValueError(f"{op}: {name} must be one of {', '.join(PSI_KINDS)}; got {value!r}")
    return value  # type: ignore[return-value]


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
    check_kind(op, "kind", kind)
    alpha = _checks.number(op, "alpha", alpha, positive=True)
    impl = resolve(t.device, backend)
    if impl == "eager":
        return reference(t, kind, alpha)
    return _library.call(impl, op, t, kind, alpha)[0]


# --- reference: the eager backend and the tests' truth ------------------------------------------


def _softplus(s: Tensor) -> Tensor:
    # log(1 + e^s) without overflow, exact where F.softplus switches to s above its threshold, and
    # with the right autograd derivative at s = 0 (max(s, 0) + log1p(e^-|s|) would give 1, not 1/2).
    return torch.logaddexp(s, torch.zeros_like(s))


def psi(kind: str, s: Tensor) -> Tensor:
    """Psi*(s) of ``kind`` (unscaled), in the dtype of ``s``."""
    if kind == "identity":
        return s
    if kind == "kl":
        return torch.expm1(s)
    if kind == "chi2":
        c = s.clamp(min=-2.0)
        return 0.25 * c * c + c
    if kind == "softplus":
        return 2.0 * _softplus(s) - 2.0 * _LOG2
    if kind == "softplus_unscaled":
        return _softplus(s)
    raise ValueError(f"kind must be one of {PSI_KINDS}, got {kind!r}")


def reference(t: Tensor, kind: str, alpha: float = 1.0) -> Tensor:
    """``alpha * Psi*(t / alpha)`` elementwise."""
    return (alpha * psi(kind, _checks.upcast(t) / alpha)).to(t.dtype)


def reference_grad(t: Tensor, kind: str, alpha: float = 1.0) -> Tensor:
    """First derivative of ``alpha * Psi*(t / alpha)`` with respect to ``t``."""
    s = t / alpha
    if kind == "identity":
        return torch.ones_like(t)
    if kind == "kl":
        return torch.exp(s)
    if kind == "chi2":
        return torch.where(s >= -2.0, 0.5 * s + 1.0, torch.zeros_like(s))
    if kind == "softplus":
        return 2.0 * torch.sigmoid(s)
    if kind == "softplus_unscaled":
        return torch.sigmoid(s)
    raise ValueError(f"kind must be one of {PSI_KINDS}, got {kind!r}")


def reference_grad2(t: Tensor, kind: str, alpha: float = 1.0) -> Tensor:
    """Second derivative of ``alpha * Psi*(t / alpha)``: what double backward multiplies by."""
    s = t / alpha
    if kind == "identity":
        return torch.zeros_like(t)
    if kind == "kl":
        return torch.exp(s) / alpha
    if kind == "chi2":
        return torch.where(s >= -2.0, torch.full_like(s, 0.5 / alpha), torch.zeros_like(s))
    sig = torch.sigmoid(s)
    d2 = sig * (1.0 - sig) / alpha
    return 2.0 * d2 if kind == "softplus" else d2


# --- fake kernel and autograd of fastot::psi_star --------------------------------------------------
# The op returns (value, derivative); backward reuses the saved derivative, which is itself
# differentiable (second derivative from the reference), so psi_star is twice differentiable.


def _fake(t: Tensor, kind: str, alpha: float) -> tuple[Tensor, Tensor]:
    return (
        torch.empty_like(t, memory_format=torch.contiguous_format),
        torch.empty_like(t, memory_format=torch.contiguous_format),
    )


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, Tensor]) -> None:
    t, kind, alpha = inputs
    # Unused output gradients arrive as None, not zeros: 0 * inf would turn kl's
    # overflowed derivative into NaN.
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(t, output[1])
    ctx.kind, ctx.alpha = kind, alpha


def _backward(kernels: Kernels, ctx: Any, g_value: Tensor | None, g_deriv: Tensor | None) -> tuple:
    t, deriv = ctx.saved_tensors
    if not needs(ctx, 0):
        return None, None, None
    out = torch.zeros_like(t) if g_value is None else g_value * deriv
    if g_deriv is not None:
        out = out + g_deriv * reference_grad2(t, ctx.kind, ctx.alpha)
    return out, None, None


_library.define("psi_star", fake=_fake, setup_context=_setup_context, backward=_backward)
