"""How every Triton kernel of fastot is launched: row sums split across programs, blocks of columns.

Two grids serve all the ops. A row reduction runs one program per row, or per (row, chunk of
columns) when the rows are too few to fill the GPU; a second pass adds the chunks' partial sums.
An elementwise kernel runs one program per (row, block of columns), the block size autotuned, on
a one-dimensional grid: CUDA allows 2^31 - 1 programs on axis 0 but only 65,535 on axes 1 and 2,
fewer than the blocks of one long row (a flattened [64, 3, 256, 256] gradient has 49,152 blocks of
256). Reductions index rows with ``tl.program_id(0)`` and chunks with ``tl.program_id(1)`` (a row
has at most a few chunks); elementwise kernels get their row and columns from :func:`row_block`.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl
from torch import Tensor
from torch.library import wrap_triton

from ._utils import store_rounded

# Columns per program when one row is split across programs; a multiple of every BLOCK_D in
# _utils so that no chunk ends in a partial block except the last one.
CHUNK = 4096


@functools.cache
def _target_programs(device: torch.device) -> int:
    if device.type == "cuda":
        # Two programs per SM hide the tail of an uneven split.
        return 2 * torch.cuda.get_device_properties(device).multi_processor_count
    # The interpreter gains nothing from splitting; a small target still runs the split path.
    return 4


def split_rows(rows: int, d: int, device: torch.device) -> tuple[int, int]:
    """``(n_chunks, chunk)``: how many programs share one row of ``d`` columns.

    Few long rows leave most of the GPU idle with one program per row, so each row is cut
    into chunks of a multiple of CHUNK columns whose partial sums a second pass adds up.
    """
    target = _target_programs(device)
    if rows >= target or d <= 2 * CHUNK:
        return 1, d
    n = min(triton.cdiv(target, rows), triton.cdiv(d, CHUNK))
    chunk = triton.cdiv(triton.cdiv(d, n), CHUNK) * CHUNK
    return triton.cdiv(d, chunk), chunk


def row_sums(
    kernel, out: Tensor, d: int, inputs: tuple, *, extra: tuple = (), weights: tuple[float, ...] = (1.0,)
) -> None:
    """``out[r] = w0 * S0[r] (+ w1 * S1[r])`` for the sums S a row reduction kernel takes over d columns.

    The kernel's arguments are ``(*inputs, out_ptr, *extra, d, chunk, *weights, DIRECT)``. With
    DIRECT it stores the weighted result of its whole row to ``out_ptr[row]``; otherwise the
    ``len(weights)`` raw sums of its chunk to ``out_ptr[row, chunk, :]`` in float64.
    """
    rows = out.shape[0]
    if rows == 0:
        return
    n_chunks, chunk = split_rows(rows, d, out.device)
    if n_chunks == 1:
        wrap_triton(kernel)[(rows, 1)](*inputs, out, *extra, d, d, *weights, DIRECT=True)
        return
    part = out.new_empty((rows, n_chunks, len(weights)), dtype=torch.float64)
    wrap_triton(kernel)[(rows, n_chunks)](*inputs, part, *extra, d, chunk, *weights, DIRECT=False)
    finish_rows(part, out, *weights)


# CUDA's limit on the programs of grid axis 0 (axes 1 and 2 allow 65,535).
MAX_PROGRAMS = 2**31 - 1


def block_grid(rows: int, n: int, block: int) -> tuple[int]:
    """The one-dimensional grid of :func:`blocks`: ``rows`` times the blocks of ``n`` columns."""
    programs = rows * triton.cdiv(n, block)
    if programs > MAX_PROGRAMS:
        raise ValueError(
            f"{rows} rows of {n} columns in blocks of {block} need {programs} programs; "
            f"a launch allows {MAX_PROGRAMS}"
        )
    return (programs,)


def blocks(kernel, rows: int, n: int, *args, **constexprs) -> None:
    """Launch ``kernel(*args, **constexprs)`` on one program per (row, block of BLOCK_D of n columns).

    The kernel finds its row and columns with :func:`row_block` on the same ``n``.
    """
    if rows * n == 0:
        return

    def grid(meta):
        return block_grid(rows, n, meta["BLOCK_D"])

    wrap_triton(kernel)[grid](*args, **constexprs)


@triton.jit
def row_block(n, BLOCK_D: tl.constexpr):
    """``(row, offs)`` of this program of :func:`blocks`: the row (int64) and its columns."""
    pid = tl.program_id(0).to(tl.int64)
    per_row = tl.cdiv(n, BLOCK_D)
    return pid // per_row, (pid % per_row) * BLOCK_D + tl.arange(0, BLOCK_D)


@triton.jit
def _finish_rows_kernel(
    part_ptr,  # [R, n_chunks, TERMS] partial sums (float64)
    out_ptr,  # [R] results
    n_chunks,
    w0: tl.float64,
    w1: tl.float64,
    TERMS: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    base = part_ptr + row * n_chunks * TERMS
    acc0 = tl.zeros([BLOCK_N], dtype=part_ptr.dtype.element_ty)
    acc1 = tl.zeros([BLOCK_N], dtype=part_ptr.dtype.element_ty)
    for s in range(0, n_chunks, BLOCK_N):
        offs = s + tl.arange(0, BLOCK_N)
        m = offs < n_chunks
        acc0 += tl.load(base + offs * TERMS, mask=m, other=0.0)
        if TERMS == 2:
            acc1 += tl.load(base + offs * TERMS + 1, mask=m, other=0.0)
    # Weights are float64 scalars when compiled (plain floats under the interpreter).
    res = tl.sum(acc0, axis=0) * w0
    if TERMS == 2:
        res += tl.sum(acc1, axis=0) * w1
    store_rounded(out_ptr + row, res)


def finish_rows(part: Tensor, out: Tensor, w0: float, w1: float = 0.0) -> None:
    """``out[r] = w0 * sum_c part[r, c, 0] + w1 * sum_c part[r, c, 1]`` (second pass of a split)."""
    rows, n_chunks, terms = part.shape
    block = min(1024, triton.next_power_of_2(n_chunks))
    wrap_triton(_finish_rows_kernel)[(rows,)](part, out, n_chunks, w0, w1, TERMS=terms, BLOCK_N=block)
