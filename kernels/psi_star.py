"""Triton ``alpha * Psi*(t / alpha)`` with its derivative, and the Psi* math semi_dual_loss shares.

The per-element math follows csrc/common/psi.h: softplus and sigmoid in their stable
forms, kl overflowing to +inf (never NaN), chi2 clamped at -2.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.library import triton_op

from fastot.ops.psi_star import PSI_KINDS

from . import _launch, _utils
from ._utils import scalar_like, to_acc

_LOG2: tl.constexpr = tl.constexpr(0.6931471805599453)

# Kind codes: positions in PSI_KINDS (the C++ PsiKind enum lists the kinds in the same order).
IDENTITY: tl.constexpr = tl.constexpr(PSI_KINDS.index("identity"))
KL: tl.constexpr = tl.constexpr(PSI_KINDS.index("kl"))
CHI2: tl.constexpr = tl.constexpr(PSI_KINDS.index("chi2"))
SOFTPLUS: tl.constexpr = tl.constexpr(PSI_KINDS.index("softplus"))


def kind_code(kind: str) -> int:
    if kind not in PSI_KINDS:
        raise ValueError(f"kind must be one of {', '.join(PSI_KINDS)}; got {kind!r}")
    return PSI_KINDS.index(kind)


@triton.jit
def _expm1(s):
    # Triton has no portable expm1 (libdevice is CUDA/HIP only and absent from the
    # interpreter). Kahan's form (u - 1) * s / log(u) cancels the rounding of u = e^s.
    u = tl.exp(s)
    um1 = u - 1.0
    exact = u == 1.0
    # s / log(u) is about 1, so the product overflows only when u - 1 does.
    r = tl.where(exact, s, um1 * (s / tl.where(exact, 1.0, tl.log(u))))
    r = tl.where(um1 == -1.0, -1.0, r)
    # inf / inf would be NaN: overflow stays +inf like exp.
    return tl.where(u == float("inf"), u, r)


@triton.jit
def _log1p(e):
    # Kahan's log1p for e >= 0: log(u) * e / (u - 1) corrects the rounding of u = 1 + e.
    u = 1.0 + e
    exact = u == 1.0
    return tl.where(exact, e, tl.log(u) * (e / tl.where(exact, 1.0, u - 1.0)))


@triton.jit
def _softplus_sigmoid(s):
    # log(1 + e^s) = max(s, 0) + log1p(e^{-|s|}); sigmoid from the same e^{-|s|}.
    e = tl.exp(-tl.abs(s))
    sp = tl.maximum(s, 0.0) + _log1p(e)
    sig = tl.where(s >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))
    return sp, sig


@triton.jit
def psi_value_grad(t, alpha, KIND: tl.constexpr):
    """``(alpha * Psi*(t / alpha), d/dt)`` for ``t`` in the accumulation type, in that type.

    The math runs in float64 and is rounded once: float32 ``tl.exp`` and ``tl.log`` lower to
    the approximate ex2/lg2 instructions on NVIDIA GPUs (tens of ulp near t = 80), while the C++
    and CUDA kernels stay within 3 ulp. Scores are one per sample, so the float64 cost is small.
    """
    value, grad = _psi_value_grad_f64(t.to(tl.float64), alpha, KIND)
    return value.to(t.dtype), grad.to(t.dtype)


@triton.jit
def _psi_value_grad_f64(t, alpha, KIND: tl.constexpr):
    a = scalar_like(alpha, t)
    s = t / a
    if KIND == IDENTITY:
        value = t
        grad = tl.full(t.shape, 1.0, t.dtype)
    elif KIND == KL:
        value = a * _expm1(s)
        grad = tl.exp(s)
    elif KIND == CHI2:
        inside = s >= -2.0
        value = tl.where(inside, a * (0.25 * s * s + s), -a)
        grad = tl.where(inside, 0.5 * s + 1.0, 0.0)
    elif KIND == SOFTPLUS:
        sp, sig = _softplus_sigmoid(s)
        value = a * (2.0 * sp - 2.0 * _LOG2)
        grad = 2.0 * sig
    else:  # softplus_unscaled, the last kind
        sp, sig = _softplus_sigmoid(s)
        value = a * sp
        grad = sig
    return value, grad


@_utils.autotune(_utils.ELEMENTWISE_CONFIGS, "n")
@triton.jit
def _psi_star_kernel(
    t_ptr,  # [n] inputs (flattened)
    value_ptr,  # [n] alpha * Psi*(t / alpha)
    grad_ptr,  # [n] its derivative
    n,
    alpha: tl.float64,
    KIND: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    _, offs = _launch.row_block(n, BLOCK_D)  # one row
    m = offs < n
    t = to_acc(tl.load(t_ptr + offs, mask=m, other=0.0))
    value, grad = psi_value_grad(t, alpha, KIND)
    tl.store(value_ptr + offs, value.to(value_ptr.dtype.element_ty), mask=m)
    tl.store(grad_ptr + offs, grad.to(grad_ptr.dtype.element_ty), mask=m)


@triton_op("fastot::psi_star_triton", mutates_args=())
def psi_star_triton(t: Tensor, kind: str, alpha: float) -> tuple[Tensor, Tensor]:
    code = kind_code(kind)
    t = t.contiguous()
    value, grad = torch.empty_like(t), torch.empty_like(t)
    n = t.numel()
    _launch.blocks(_psi_star_kernel, 1, n, t, value, grad, n, alpha, KIND=code)
    return value, grad
