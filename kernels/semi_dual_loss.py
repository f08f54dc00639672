"""Triton UOTM semi-dual loss and its gradients for both score vectors, in one pass."""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.library import triton_op, wrap_triton

from . import _launch
from ._utils import to_acc
from .psi_star import kind_code, psi_value_grad


@triton.jit
def _semi_dual_loss_kernel(
    cost_ptr,  # [B] transport costs
    fake_ptr,  # [B] potential at the generated samples
    real_ptr,  # [M] potential at the data
    d_fake_ptr,  # [B] d loss / d v_fake
    d_real_ptr,  # [M] d loss / d v_real
    part_ptr,  # [programs, 1, 1] partial loss sums, already divided by B or M (float64)
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
        tl.store(part_ptr + pid, tl.sum(tl.where(m, value, 0.0).to(tl.float64), axis=0) / n_fake)
    else:
        offs = (pid - fake_programs).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        m = offs < n_real
        t = -to_acc(tl.load(real_ptr + offs, mask=m, other=0.0))
        value, grad = psi_value_grad(t, alpha, TARGET)
        tl.store(d_real_ptr + offs, (-grad / n_real).to(d_real_ptr.dtype.element_ty), mask=m)
        tl.store(part_ptr + pid, tl.sum(tl.where(m, value, 0.0).to(tl.float64), axis=0) / n_real)


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
    part = v_fake.new_empty((1, programs, 1), dtype=torch.float64)
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
    _launch.finish_rows(part, loss.view(1), 1.0)
    return loss, d_fake, d_real
