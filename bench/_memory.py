"""Peak memory of one call: the CUDA allocator's peak, or the resident-set high-water mark on CPU."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable
from typing import Any

import torch
from _allocator import libc
from _env import DEVICE
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode


class _FusedOutputs(TorchDispatchMode):
    """Sums the bytes of large outputs of ``fastot::`` ops (served from fastot's output cache on CPU)."""

    def __init__(self) -> None:
        super().__init__()
        self.nbytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        out = func(*args, **(kwargs or {}))
        if func.namespace == "fastot":
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, Tensor) and t.untyped_storage().nbytes() >= (1 << 20):
                    t_bytes = t.untyped_storage().nbytes()
                    self.nbytes += t_bytes
        return out


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_memory(fn: Callable[[], Any], provider: str) -> tuple[int | None, str]:
    """Peak memory of one call of ``fn`` above what was resident before it: (bytes, method).

    CUDA: ``max_memory_allocated`` above the allocated bytes before the call. CPU: the rise of the
    resident-set high-water mark (VmHWM, reset through /proc/self/clear_refs) after returning all
    free heap pages to the OS (``malloc_trim``), so every temporary is counted as freshly touched
    memory. Large outputs of the fused C++ ops come from fastot's output cache, already resident
    from the warm-up rounds; their bytes are added, so the fused figure is an upper bound.
    """
    for t in getattr(fn, "leaves", ()):
        t.grad = None
    gc.collect()
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)
        torch.cuda.reset_peak_memory_stats(DEVICE)
        before = torch.cuda.memory_allocated(DEVICE)
        fn()
        return torch.cuda.max_memory_allocated(DEVICE) - before, "cuda max_memory_allocated"
    lib = libc()
    try:
        if lib is not None:
            lib.malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status_kib("VmRSS")
    except (OSError, RuntimeError):
        return None, "unavailable (no /proc/self/clear_refs)"
    tracker = _FusedOutputs()
    with tracker if provider == "cpp" else contextlib.nullcontext():
        out = fn()
    peak = (_status_kib("VmHWM") - before) * 1024 + tracker.nbytes
    del out
    return max(peak, 0), "RSS high-water rise after malloc_trim (+ fused cached outputs)"
