"""Allocator tuning: every provider reuses warm memory instead of page-faulting its temporaries."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import platform

from _env import DEVICE

_MMAP_MAX, _TRIM_THRESHOLD, _ARENA_MAX = -4, -1, -8  # mallopt parameters from <malloc.h>
ALLOCATOR = "glibc malloc, warm: mmap off, no trim, one arena (freed memory is reused without page faults)"


@functools.cache
def libc() -> ctypes.CDLL | None:
    """glibc, for mallopt and malloc_trim; None on other systems."""
    name = ctypes.util.find_library("c")
    if platform.system() != "Linux" or name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def warm_allocator() -> str:
    """Make glibc keep and reuse freed memory, so no large allocation page-faults on every call.

    By default glibc serves allocations of 32 MiB and more with a fresh ``mmap`` and unmaps them
    on free: every eager call at [64, 3, 256, 256] then page-faults its temporaries again (10-20 ms
    per 48 MiB here), while the fused CPU kernels reuse their own cached output buffers. With mmap
    off and trimming off, every provider reuses warm memory after its warm-up rounds.
    """
    lib = libc()
    if lib is None:
        return "system allocator, default settings (not glibc)"
    ok = all(
        lib.mallopt(param, value) == 1
        for param, value in ((_ARENA_MAX, 1), (_MMAP_MAX, 0), (_TRIM_THRESHOLD, 2**31 - 1))
    )
    return ALLOCATOR if ok else "glibc malloc, default settings (mallopt refused)"


_state = "not warmed"


def init_run() -> None:
    """Called once per pytest run, before any benchmark."""
    global _state
    if DEVICE.type == "cpu":
        _state = warm_allocator()
    else:
        _state = "torch CUDA caching allocator (warm after the warm-up rounds)"


def state() -> str:
    """How the allocator was set up for this run (recorded with every result)."""
    return _state
