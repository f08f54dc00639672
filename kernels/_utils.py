"""Helpers shared by the Triton kernels: accumulation type, autotune configs, d-splitting."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import triton
import triton.language as tl
from triton import knobs

# Columns per program when one row is split across programs; a multiple of every BLOCK_D
# below so that no chunk ends in a partial block except the last one.
CHUNK = 4096


def interpreting() -> bool:
    """True when kernels run on CPU tensors through TRITON_INTERPRET=1."""
    return bool(knobs.runtime.interpret)


def configs(blocks_warps: tuple[tuple[int, int], ...]) -> list[triton.Config]:
    return [triton.Config({"BLOCK_D": b}, num_warps=w) for b, w in blocks_warps]


# Row reductions loop over d inside one program; elementwise kernels take one block each.
REDUCE_CONFIGS = configs(((256, 2), (1024, 4), (4096, 8)))
ELEMENTWISE_CONFIGS = configs(((256, 2), (1024, 4), (2048, 8)))


def autotune(cfgs: list[triton.Config], size_arg: str):
    """``triton.autotune`` keyed on the ``size_arg`` columns, with :func:`prune_blocks`."""
    return triton.autotune(
        configs=cfgs, key=[size_arg], prune_configs_by={"early_config_prune": prune_blocks(size_arg)}
    )


def prune_blocks(size_arg: str) -> Callable[..., list[triton.Config]]:
    """An ``early_config_prune`` that drops blocks far larger than the ``size_arg`` columns.

    Under the interpreter it keeps one config, the largest useful block: benchmarking means
    interpreting the kernel many times, and wider blocks mean fewer interpreted programs.
    """

    def prune(cfgs: list[triton.Config], named_args: dict, **kwargs) -> list[triton.Config]:
        size = int(named_args[size_arg])
        smallest = min(c.kwargs["BLOCK_D"] for c in cfgs)
        limit = max(smallest, triton.next_power_of_2(max(size, 1)))
        kept = [c for c in cfgs if c.kwargs["BLOCK_D"] <= limit]
        if interpreting():
            return [max(kept, key=lambda c: c.kwargs["BLOCK_D"])]
        return kept

    return prune


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


def acc_dtype(t: torch.Tensor) -> torch.dtype:
    """Accumulation dtype of the kernels: float64 for float64 inputs, else float32."""
    return torch.float64 if t.dtype == torch.float64 else torch.float32


@triton.jit
def to_acc(v):
    """``v`` in the accumulation type: float64 stays, everything else becomes float32."""
    if v.dtype == tl.float64:
        return v
    else:
        return v.to(tl.float32)


@triton.jit
def scalar_like(v, ref):
    """The float argument ``v`` as a scalar of ref's dtype.

    Float arguments are float64 when compiled (so float64 inputs keep full precision) and
    plain Python floats under the interpreter; this rounds either once to the compute type.
    """
    return tl.sum(tl.zeros([1], dtype=ref.dtype) + v, axis=0).to(ref.dtype)


@triton.jit
def _finish_rows_kernel(
    part_ptr,  # [R, n_chunks, TERMS] partial sums (accumulation dtype)
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
    tl.store(out_ptr + row, res.to(out_ptr.dtype.element_ty))


def finish_rows(part: torch.Tensor, out: torch.Tensor, w0: float, w1: float = 0.0) -> None:
    """``out[r] = w0 * sum_c part[r, c, 0] + w1 * sum_c part[r, c, 1]`` (second pass of a split)."""
    rows, n_chunks, terms = part.shape
    block = min(1024, triton.next_power_of_2(n_chunks))
    torch.library.wrap_triton(_finish_rows_kernel)[(rows,)](
        part, out, n_chunks, w0, w1, TERMS=terms, BLOCK_N=block
    )
