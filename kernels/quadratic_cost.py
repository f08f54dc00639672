"""Triton quadratic cost ``scale * ||x_i - y_i||^2`` per row, and its gradient."""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.library import triton_op

from . import _launch, _utils
from ._utils import store_rounded, to_acc


@_utils.autotune(_utils.REDUCE_CONFIGS, "d")
@triton.jit
def _quadratic_cost_fwd_kernel(
    x_ptr,  # [B, d] source rows
    y_ptr,  # [B, d] target rows
    out_ptr,  # DIRECT: [B] costs; else [B, n_chunks] partial sums (float64)
    d,
    chunk,
    scale: tl.float64,
    DIRECT: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1).to(tl.int64)
    start = c * chunk
    end = tl.minimum(start + chunk, d)
    xr = x_ptr + row * d
    yr = y_ptr + row * d
    acc = to_acc(tl.zeros([BLOCK_D], dtype=x_ptr.dtype.element_ty))
    for s in range(start, end, BLOCK_D):
        offs = s + tl.arange(0, BLOCK_D)
        m = offs < end
        diff = to_acc(tl.load(xr + offs, mask=m, other=0.0)) - to_acc(tl.load(yr + offs, mask=m, other=0.0))
        acc += diff * diff
    total = tl.sum(acc.to(tl.float64), axis=0)  # lanes added in float64, as the C++ kernels do
    if DIRECT:
        store_rounded(out_ptr + row, total * scale)
    else:
        tl.store(out_ptr + row * tl.num_programs(1) + c, total)


@_utils.autotune(_utils.ELEMENTWISE_CONFIGS, "d")
@triton.jit
def _quadratic_cost_bwd_kernel(
    grad_ptr,  # [B] gradient of the costs
    x_ptr,  # [B, d]
    y_ptr,  # [B, d]
    out_ptr,  # [B, d] 2 * scale * grad_b * (x - y)
    d,
    scale: tl.float64,
    BLOCK_D: tl.constexpr,
):
    row, offs = _launch.row_block(d, BLOCK_D)
    m = offs < d
    g = to_acc(tl.load(grad_ptr + row))
    coef = (2.0 * scale * g).to(g.dtype)
    diff = to_acc(tl.load(x_ptr + row * d + offs, mask=m)) - to_acc(tl.load(y_ptr + row * d + offs, mask=m))
    tl.store(out_ptr + row * d + offs, (coef * diff).to(out_ptr.dtype.element_ty), mask=m)


@triton_op("fastot::quadratic_cost_triton", mutates_args=())
def quadratic_cost_triton(x: Tensor, y: Tensor, scale: float) -> Tensor:
    x, y = x.contiguous(), y.contiguous()
    out = x.new_empty(x.shape[0])
    _launch.row_sums(_quadratic_cost_fwd_kernel, out, x.shape[1], (x, y), weights=(scale,))
    return out


@triton_op("fastot::_quadratic_cost_backward_triton", mutates_args=())
def _quadratic_cost_backward_triton(grad: Tensor, x: Tensor, y: Tensor, scale: float) -> Tensor:
    grad, x, y = grad.contiguous(), x.contiguous(), y.contiguous()
    b, d = x.shape
    out = torch.empty_like(x)
    _launch.blocks(_quadratic_cost_bwd_kernel, b, d, grad, x, y, out, d, scale)
    return out
