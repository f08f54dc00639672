"""Triton gamma-weak quadratic cost (NOT) from Z samples per input, and its gradient.

Transport and variance sums are taken from differences to the per-column sample mean of
each block (no E[y^2] - E[y]^2 cancellation), as the C++ kernels do.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.library import triton_op

from . import _launch, _utils
from ._utils import scalar_like, store_rounded, to_acc


@_utils.autotune(_utils.REDUCE_CONFIGS, "d", "Z")
@triton.jit
def _weak_quadratic_cost_fwd_kernel(
    x_ptr,  # [B, d] inputs
    y_ptr,  # [B, Z, d] samples
    out_ptr,  # DIRECT: [B] costs; else [B, n_chunks, 2] partial (transport, spread) sums
    Z,
    d,
    chunk,
    w0: tl.float64,
    w1: tl.float64,
    DIRECT: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1).to(tl.int64)
    start = c * chunk
    end = tl.minimum(start + chunk, d)
    xr = x_ptr + row * d
    yr = y_ptr + row * Z * d
    zero = to_acc(tl.zeros([BLOCK_D], dtype=x_ptr.dtype.element_ty))
    transport = zero
    spread = zero
    for s in range(start, end, BLOCK_D):
        offs = s + tl.arange(0, BLOCK_D)
        m = offs < end
        x = to_acc(tl.load(xr + offs, mask=m, other=0.0))
        # Sample z's row is reached by stepping a pointer d at a time: z * d could overflow int32.
        mean = zero
        yz = yr
        for _ in range(0, Z):
            mean += to_acc(tl.load(yz + offs, mask=m, other=0.0))
            yz += d
        mean = mean / Z
        # Second pass over the same Z blocks, now in cache.
        yz = yr
        for _ in range(0, Z):
            y = to_acc(tl.load(yz + offs, mask=m, other=0.0))
            yz += d
            dt = x - y
            dv = y - mean
            transport += dt * dt
            spread += dv * dv
    # Lanes added in float64, as the C++ kernels do.
    t_sum = tl.sum(transport.to(tl.float64), axis=0)
    s_sum = tl.sum(spread.to(tl.float64), axis=0)
    if DIRECT:
        store_rounded(out_ptr + row, t_sum * w0 + s_sum * w1)
    else:
        p = out_ptr + (row * tl.num_programs(1) + c) * 2
        tl.store(p, t_sum)
        tl.store(p + 1, s_sum)


@_utils.autotune(_utils.ELEMENTWISE_CONFIGS, "d", "Z")
@triton.jit
def _weak_quadratic_cost_bwd_kernel(
    grad_ptr,  # [B] gradient of the costs
    x_ptr,  # [B, d] inputs
    y_ptr,  # [B, Z, d] samples
    gx_ptr,  # [B, d] g s (x - mean)
    gy_ptr,  # [B, Z, d] g s ((y_z - x) / Z - gamma / (Z - 1) (y_z - mean))
    Z,
    d,
    gamma: tl.float64,
    scale: tl.float64,
    BLOCK_D: tl.constexpr,
):
    row, offs = _launch.row_block(d, BLOCK_D)
    m = offs < d
    g = to_acc(tl.load(grad_ptr + row))
    gs = g * scalar_like(scale, g)
    c_t = gs / Z
    c_v = gs * scalar_like(gamma, g) / (Z - 1)
    yr = y_ptr + row * Z * d
    x = to_acc(tl.load(x_ptr + row * d + offs, mask=m, other=0.0))
    # Sample z's row is reached by stepping a pointer d at a time: z * d could overflow int32.
    mean = tl.zeros_like(x)
    yz = yr
    for _ in range(0, Z):
        mean += to_acc(tl.load(yz + offs, mask=m, other=0.0))
        yz += d
    mean = mean / Z
    tl.store(gx_ptr + row * d + offs, (gs * (x - mean)).to(gx_ptr.dtype.element_ty), mask=m)
    yz = yr
    gyz = gy_ptr + row * Z * d
    for _ in range(0, Z):
        y = to_acc(tl.load(yz + offs, mask=m, other=0.0))
        gy = c_t * (y - x) - c_v * (y - mean)
        tl.store(gyz + offs, gy.to(gy_ptr.dtype.element_ty), mask=m)
        yz += d
        gyz += d


@triton_op("fastot::weak_quadratic_cost_triton", mutates_args=())
def weak_quadratic_cost_triton(x: Tensor, y: Tensor, gamma: float, scale: float) -> Tensor:
    x, y = x.contiguous(), y.contiguous()
    b, z, d = y.shape
    out = x.new_empty(b)
    # cost = scale * (transport / (2 Z) - gamma / 2 * spread / (Z - 1))
    weights = (scale / (2.0 * z), -scale * 0.5 * gamma / (z - 1))
    _launch.row_sums(_weak_quadratic_cost_fwd_kernel, out, d, (x, y), extra=(z,), weights=weights)
    return out


@triton_op("fastot::_weak_quadratic_cost_backward_triton", mutates_args=())
def _weak_quadratic_cost_backward_triton(
    grad: Tensor, x: Tensor, y: Tensor, gamma: float, scale: float
) -> tuple[Tensor, Tensor]:
    grad, x, y = grad.contiguous(), x.contiguous(), y.contiguous()
    b, z, d = y.shape
    gx, gy = torch.empty_like(x), torch.empty_like(y)
    _launch.blocks(_weak_quadratic_cost_bwd_kernel, b, d, grad, x, y, gx, gy, z, d, gamma, scale)
    return gx, gy
