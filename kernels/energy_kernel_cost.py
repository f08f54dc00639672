"""Triton gamma-weak energy-kernel cost (KNOT) from Z samples per input, and its gradient.

Every distance is the square root of a sum of squared differences (never the Gram
expansion ||a||^2 + ||b||^2 - 2 <a, b>, which cancels catastrophically for nearby samples).
The forward pass returns the K = Z + Z (Z - 1) / 2 norms per row, ||x - y_z|| then
||y_i - y_j|| for i < j, which the backward pass reuses.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.library import triton_op, wrap_triton

from . import _launch, _utils
from ._utils import scalar_like, store_rounded, to_acc


@triton.jit
def _pair_rows(k, Z):
    """Rows ``(i, j)`` of distance ``k``: ``i = -1`` stands for x; pairs ``i < j`` in row-major order."""
    i = k * 0 - 1
    j = k
    if k >= Z:
        i = k * 0
        rem = k - Z
        while rem >= Z - 1 - i:
            rem -= Z - 1 - i
            i += 1
        j = i + 1 + rem
    return i, j


@triton.jit
def _inv_or_zero(n):
    # 1 / n, and 0 at n = 0: the gradient of a norm at the origin is taken as 0.
    return tl.where(n > 0, 1.0 / tl.where(n > 0, n, 1.0), 0.0)


@_utils.autotune(_utils.REDUCE_CONFIGS, "d", "Z")
@triton.jit
def _energy_sq_dist_kernel(
    x_ptr,  # [B, d] inputs
    y_ptr,  # [B, Z, d] samples
    part_ptr,  # [B, K, n_chunks] partial squared distances (float64)
    Z,
    K,
    d,
    chunk,
    BLOCK_D: tl.constexpr,
):
    # One program per (row, distance, chunk of d): B * K programs keep a GPU busy at small d.
    pid = tl.program_id(0)
    row = (pid // K).to(tl.int64)
    k = pid % K
    c = tl.program_id(1).to(tl.int64)
    i, j = _pair_rows(k, Z)
    yr = y_ptr + row * Z * d
    if i < 0:
        a_ptr = x_ptr + row * d
    else:
        a_ptr = yr + i.to(tl.int64) * d
    b_ptr = yr + j.to(tl.int64) * d
    start = c * chunk
    end = tl.minimum(start + chunk, d)
    acc = to_acc(tl.zeros([BLOCK_D], dtype=x_ptr.dtype.element_ty))
    for s in range(start, end, BLOCK_D):
        offs = s + tl.arange(0, BLOCK_D)
        m = offs < end
        a = to_acc(tl.load(a_ptr + offs, mask=m, other=0.0))
        diff = a - to_acc(tl.load(b_ptr + offs, mask=m, other=0.0))
        acc += diff * diff
    # Lanes added in float64, as the C++ kernels do; part is float64.
    tl.store(part_ptr + (row * K + k) * tl.num_programs(1) + c, tl.sum(acc.to(tl.float64), axis=0))


@triton.jit
def _energy_finish_kernel(
    part_ptr,  # [B, K, n_chunks] partial squared distances
    norms_ptr,  # [B, K] distances (float32, or float64 for float64 inputs)
    out_ptr,  # [B] costs
    Z,
    K,
    n_chunks,
    w_transport: tl.float64,
    w_spread: tl.float64,
    BLOCK_K: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    transport = tl.zeros([BLOCK_K], dtype=part_ptr.dtype.element_ty)
    spread = tl.zeros([BLOCK_K], dtype=part_ptr.dtype.element_ty)
    for k0 in range(0, K, BLOCK_K):
        ks = k0 + tl.arange(0, BLOCK_K)
        mk = ks < K
        sq = tl.zeros([BLOCK_K, BLOCK_N], dtype=part_ptr.dtype.element_ty)
        for c0 in range(0, n_chunks, BLOCK_N):
            cs = c0 + tl.arange(0, BLOCK_N)
            ptrs = part_ptr + (row * K + ks[:, None]) * n_chunks + cs[None, :]
            sq += tl.load(ptrs, mask=mk[:, None] & (cs[None, :] < n_chunks), other=0.0)
        norm = tl.sqrt(tl.sum(sq, axis=1))
        tl.store(norms_ptr + row * K + ks, norm.to(norms_ptr.dtype.element_ty), mask=mk)
        transport += tl.where(ks < Z, norm, 0.0)
        spread += tl.where((ks >= Z) & mk, norm, 0.0)
    cost = tl.sum(transport, axis=0) * w_transport + tl.sum(spread, axis=0) * w_spread
    store_rounded(out_ptr + row, cost)


@_utils.autotune(_utils.ELEMENTWISE_CONFIGS, "d", "Z")
@triton.jit
def _energy_bwd_kernel(
    grad_ptr,  # [B] gradient of the costs
    x_ptr,  # [B, d] inputs
    y_ptr,  # [B, Z, d] samples
    norms_ptr,  # [B, K] distances saved by the forward pass
    gx_ptr,  # [B, d] sum_z a_z (x - y_z)
    gy_ptr,  # [B, Z, d] a_z (y_z - x) - sum_{w != z} b_zw (y_z - y_w)
    Z,
    K,
    d,
    gamma: tl.float64,
    scale: tl.float64,
    BLOCK_D: tl.constexpr,
):
    # a_z = g s / (2 Z ||x - y_z||), b_zw = g s gamma / (2 Z (Z - 1) ||y_z - y_w||); 0 where a norm is 0.
    # One program per (row, output row r, block of d): r = 0 is x, r = 1 + z is y_z.
    out_row, offs = _launch.row_block(d, BLOCK_D)
    row = out_row // (Z + 1)
    r = out_row % (Z + 1)
    m = offs < d
    g = to_acc(tl.load(grad_ptr + row))
    gs = g * scalar_like(scale, g)
    c_a = gs / (2 * Z)
    c_b = gs * scalar_like(gamma, g) / (2 * Z * (Z - 1))
    nr = norms_ptr + row * K
    yr = y_ptr + row * Z * d
    x = to_acc(tl.load(x_ptr + row * d + offs, mask=m, other=0.0))
    if r == 0:
        acc = tl.zeros_like(x)
        yz_ptr = yr  # stepped d at a time: z * d could overflow int32
        for k in range(0, Z):  # not z: the other branch's z is int64 and the compiler merges names
            a = c_a * _inv_or_zero(to_acc(tl.load(nr + k)))
            acc += a * (x - to_acc(tl.load(yz_ptr + offs, mask=m, other=0.0)))
            yz_ptr += d
        tl.store(gx_ptr + row * d + offs, acc.to(gx_ptr.dtype.element_ty), mask=m)
    else:
        z = r - 1
        yz = to_acc(tl.load(yr + z * d + offs, mask=m, other=0.0))
        acc = c_a * _inv_or_zero(to_acc(tl.load(nr + z))) * (yz - x)
        yw_ptr = yr
        for w in range(0, Z):
            if w != z:
                lo = tl.minimum(z, w)
                hi = tl.maximum(z, w)
                # Index of the pair (lo, hi) among the pairs, after the Z transport norms.
                p = Z + lo * (2 * Z - lo - 1) // 2 + (hi - lo - 1)
                bp = c_b * _inv_or_zero(to_acc(tl.load(nr + p)))
                acc -= bp * (yz - to_acc(tl.load(yw_ptr + offs, mask=m, other=0.0)))
            yw_ptr += d
        tl.store(gy_ptr + (row * Z + z) * d + offs, acc.to(gy_ptr.dtype.element_ty), mask=m)


@triton_op("fastot::energy_kernel_cost_triton", mutates_args=())
def energy_kernel_cost_triton(x: Tensor, y: Tensor, gamma: float, scale: float) -> tuple[Tensor, Tensor]:
    x, y = x.contiguous(), y.contiguous()
    b, z, d = y.shape
    k = z + z * (z - 1) // 2
    out = x.new_empty(b)
    norms = x.new_empty((b, k), dtype=_utils.acc_dtype(x))
    if b == 0:
        return out, norms
    # B * K programs already share the rows; split d only when even those are too few.
    n_chunks, chunk = _launch.split_rows(b * k, d, x.device)
    part = x.new_empty((b, k, n_chunks), dtype=torch.float64)
    wrap_triton(_energy_sq_dist_kernel)[(b * k, n_chunks)](x, y, part, z, k, d, chunk)
    # sum over z != z' counts every pair twice: spread weight 2 * gamma / 4 / (Z (Z - 1)).
    w_transport, w_spread = scale * 0.5 / z, -scale * 0.5 * gamma / (z * (z - 1))
    wrap_triton(_energy_finish_kernel)[(b,)](
        part,
        norms,
        out,
        z,
        k,
        n_chunks,
        w_transport,
        w_spread,
        BLOCK_K=min(64, triton.next_power_of_2(k)),
        BLOCK_N=min(16, triton.next_power_of_2(n_chunks)),
    )
    return out, norms


@triton_op("fastot::_energy_kernel_cost_backward_triton", mutates_args=())
def _energy_kernel_cost_backward_triton(
    grad: Tensor, x: Tensor, y: Tensor, norms: Tensor, gamma: float, scale: float
) -> tuple[Tensor, Tensor]:
    grad, x, y, norms = grad.contiguous(), x.contiguous(), y.contiguous(), norms.contiguous()
    b, z, d = y.shape
    gx, gy = torch.empty_like(x), torch.empty_like(y)
    # One program per output row (x, then each y_z) of each batch row, per block of d.
    k = norms.shape[1]
    _launch.blocks(_energy_bwd_kernel, b * (z + 1), d, grad, x, y, norms, gx, gy, z, k, d, gamma, scale)
    return gx, gy
