"""Triton ``alpha * Psi*(t / alpha)`` with its derivative, and the UOTM semi-dual loss.

The per-element math follows csrc/common/math.h: softplus and sigmoid in their stable
forms, kl overflowing to +inf (never NaN), chi2 clamped at -2.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.library import triton_op, wrap_triton

from fastot.ops.psi_star import PSI_KINDS

from . import _utils
from ._utils import scalar_like, to_acc

_LOG2: tl.constexpr = tl.constexpr(0.6931471805599453)

# Kind codes, in the order of PSI_KINDS (the C++ PsiKind enum uses the same order).
IDENTITY: tl.constexpr = tl.constexpr(0)
KL: tl.constexpr = tl.constexpr(1)
CHI2: tl.constexpr = tl.constexpr(2)
SOFTPLUS: tl.constexpr = tl.constexpr(3)
SOFTPLUS_UNSCALED: tl.constexpr = tl.constexpr(4)


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
    """``(alpha * Psi*(t / alpha), d/dt)`` for ``t`` in the accumulation type."""
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
    else:
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
    offs = tl.program_id(0).to(tl.int64) * BLOCK_D + tl.arange(0, BLOCK_D)
    m = offs < n
    t = to_acc(tl.load(t_ptr + offs, mask=m, other=0.0))
    value, grad = psi_value_grad(t, alpha, KIND)
    tl.store(value_ptr + offs, value.to(value_ptr.dtype.element_ty), mask=m)
    tl.store(grad_ptr + offs, grad.to(grad_ptr.dtype.element_ty), mask=m)


@triton.jit
def _semi_dual_loss_kernel(
    cost_ptr,  # [B] transport costs
    fake_ptr,  # [B] potential at the generated samples
    real_ptr,  # [M] potential at the data
    d_fake_ptr,  # [B] d loss / d v_fake
    d_real_ptr,  # [M] d loss / d v_real
    part_ptr,  # [programs, 1, 1] partial loss sums, already divided by B or M (accumulation dtype)
    n_fake,
    n_real,
    fake_programs,
    alpha: tl.float64,
    SOURCE: tl.constexpr,
    TARGET: tl.constexpr,
    BLOCK: tl.constexpr,
):
    # The first fake_programs programs cover the generated samples, the rest the data.
    pid = tl.program_id(0)
    if pid < fake_programs:
        offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        m = offs < n_fake
        fake = to_acc(tl.load(fake_ptr + offs, mask=m, other=0.0))
        t = fake - to_acc(tl.load(cost_ptr + offs, mask=m, other=0.0))
        value, grad = psi_value_grad(t, alpha, SOURCE)
        tl.store(d_fake_ptr + offs, (grad / n_fake).to(d_fake_ptr.dtype.element_ty), mask=m)
        tl.store(part_ptr + pid, tl.sum(tl.where(m, value, 0.0), axis=0) / n_fake)
    else:
        offs = (pid - fake_programs).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        m = offs < n_real
        t = -to_acc(tl.load(real_ptr + offs, mask=m, other=0.0))
        value, grad = psi_value_grad(t, alpha, TARGET)
        tl.store(d_real_ptr + offs, (-grad / n_real).to(d_real_ptr.dtype.element_ty), mask=m)
        tl.store(part_ptr + pid, tl.sum(tl.where(m, value, 0.0), axis=0) / n_real)


@triton_op("fastot::psi_star_triton", mutates_args=())
def psi_star_triton(t: Tensor, kind: str, alpha: float) -> tuple[Tensor, Tensor]:
    code = kind_code(kind)
    t = t.contiguous()
    value, grad = torch.empty_like(t), torch.empty_like(t)
    n = t.numel()
    if n == 0:
        return value, grad

    def grid(meta):
        return (triton.cdiv(n, meta["BLOCK_D"]),)

    wrap_triton(_psi_star_kernel)[grid](t, value, grad, n, alpha, KIND=code)
    return value, grad


@triton_op("fastot::semi_dual_loss_triton", mutates_args=())
def semi_dual_loss_triton(
    cost: Tensor, v_fake: Tensor, v_real: Tensor, psi_source: str, psi_target: str, alpha: float
) -> tuple[Tensor, Tensor, Tensor]:
    source, target = kind_code(psi_source), kind_code(psi_target)
    if v_fake.shape[0] == 0 or v_real.shape[0] == 0:
        raise ValueError("v_fake and v_real must be non-empty: a mean over no samples is undefined")
    cost, v_fake, v_real = cost.contiguous(), v_fake.contiguous(), v_real.contiguous()
    n_fake, n_real = v_fake.shape[0], v_real.shape[0]
    d_fake, d_real = torch.empty_like(v_fake), torch.empty_like(v_real)
    loss = v_fake.new_empty(())
    # Scores are short (one per sample): one fixed block, no autotuning.
    block = 1024
    fake_programs = triton.cdiv(n_fake, block)
    programs = fake_programs + triton.cdiv(n_real, block)
    part = v_fake.new_empty((1, programs, 1), dtype=_utils.acc_dtype(v_fake))
    wrap_triton(_semi_dual_loss_kernel)[(programs,)](
        cost,
        v_fake,
        v_real,
        d_fake,
        d_real,
        part,
        n_fake,
        n_real,
        fake_programs,
        alpha,
        SOURCE=source,
        TARGET=target,
        BLOCK=block,
    )
    _utils.finish_rows(part, loss.view(1), 1.0)
    return loss, d_fake, d_real
