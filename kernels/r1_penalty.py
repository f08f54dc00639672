"""Triton R1 penalty ``(weight / 2) * mean_i ||grad_i||^2`` and its gradient."""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.library import triton_op

from . import _launch, _utils
from ._utils import scalar_like, store_rounded, to_acc


@_utils.autotune(_utils.REDUCE_CONFIGS, "d")
@triton.jit
def _r1_penalty_fwd_kernel(
    grad_ptr,  # [1, B * d] gradients, flattened: the penalty is one sum over all of them
    out_ptr,  # DIRECT: [1] penalty; else [1, n_chunks] partial sums (float64)
    d,
    chunk,
    coef: tl.float64,
    DIRECT: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    c = tl.program_id(1).to(tl.int64)  # one row: program_id(0) is 0
    start = c * chunk
    end = tl.minimum(start + chunk, d)
    acc = to_acc(tl.zeros([BLOCK_D], dtype=grad_ptr.dtype.element_ty))
    for s in range(start, end, BLOCK_D):
        offs = s + tl.arange(0, BLOCK_D)
        g = to_acc(tl.load(grad_ptr + offs, mask=offs < end, other=0.0))
        acc += g * g
    total = tl.sum(acc.to(tl.float64), axis=0)  # lanes added in float64, as the C++ kernels do
    if DIRECT:
        store_rounded(out_ptr, total * coef)
    else:
        tl.store(out_ptr + c, total)


@_utils.autotune(_utils.ELEMENTWISE_CONFIGS, "n")
@triton.jit
def _r1_penalty_bwd_kernel(
    grad_out_ptr,  # [1] gradient of the penalty
    grad_ptr,  # [B * d] gradients, flattened
    out_ptr,  # [B * d] weight / B * grad_out * grad
    n,
    w_over_b: tl.float64,
    BLOCK_D: tl.constexpr,
):
    _, offs = _launch.row_block(n, BLOCK_D)  # one row
    m = offs < n
    go = to_acc(tl.load(grad_out_ptr))
    coef = scalar_like(w_over_b, go) * go
    g = to_acc(tl.load(grad_ptr + offs, mask=m))
    tl.store(out_ptr + offs, (coef * g).to(out_ptr.dtype.element_ty), mask=m)


@triton_op("fastot::r1_penalty_triton", mutates_args=())
def r1_penalty_triton(grad: Tensor, weight: float) -> Tensor:
    if grad.shape[0] == 0:
        raise ValueError("grad is an empty batch; a mean over no samples is undefined")
    grad = grad.contiguous()
    out = grad.new_empty(())
    # One row of B * d values: split like a long row so every SM takes a share.
    coef = 0.5 * weight / grad.shape[0]
    _launch.row_sums(_r1_penalty_fwd_kernel, out.view(1), grad.numel(), (grad,), weights=(coef,))
    return out


@triton_op("fastot::_r1_penalty_backward_triton", mutates_args=())
def _r1_penalty_backward_triton(grad_out: Tensor, grad: Tensor, weight: float) -> Tensor:
    grad_out, grad = grad_out.contiguous(), grad.contiguous()
    out = torch.empty_like(grad)
    n = grad.numel()
    if n == 0:
        return out
    _launch.blocks(_r1_penalty_bwd_kernel, 1, n, grad_out, grad, out, n, weight / grad.shape[0])
    return out
