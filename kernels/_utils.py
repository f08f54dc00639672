"""Helpers shared by the Triton kernels: accumulation type, scalar arguments, autotune configs."""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
import triton
import triton.language as tl

try:  # recent triton keeps its settings in knobs (which tests may change at run time)
    from triton import knobs
except ImportError:  # older releases read the environment
    knobs = None


def interpreting() -> bool:
    """True when kernels run on CPU tensors through TRITON_INTERPRET=1."""
    if knobs is not None:
        return bool(knobs.runtime.interpret)
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def configs(blocks_warps: tuple[tuple[int, int], ...]) -> list[triton.Config]:
    return [triton.Config({"BLOCK_D": b}, num_warps=w) for b, w in blocks_warps]


# Row reductions loop over d inside one program; elementwise kernels take one block each.
REDUCE_CONFIGS = configs(((256, 2), (1024, 4), (4096, 8)))
ELEMENTWISE_CONFIGS = configs(((256, 2), (1024, 4), (2048, 8)))


def autotune(cfgs: list[triton.Config], size_arg: str, *more_keys: str):
    """``triton.autotune`` keyed on the ``size_arg`` columns (and ``more_keys``), with :func:`prune_blocks`.

    Kernels that loop over Z samples per block add "Z": the best block differs between Z = 2 and
    Z = 64 at the same d.
    """
    return triton.autotune(
        configs=cfgs,
        key=[size_arg, *more_keys],
        prune_configs_by={"early_config_prune": prune_blocks(size_arg)},
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
def store_rounded(ptr, v):
    """Stores the float64 ``v`` at ``ptr`` in its element type, half types by way of float32
    (the interpreter cannot convert float64 to a half type directly)."""
    if ptr.dtype.element_ty == tl.float64:
        tl.store(ptr, v)
    else:
        tl.store(ptr, v.to(tl.float32).to(ptr.dtype.element_ty))
