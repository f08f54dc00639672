"""Backend selection: ``backend=`` argument > ``use_backend`` context > ``FASTOT_BACKEND`` > auto.

The ``use_backend`` selection lives in a ``threading.local``: per thread like a context
variable, but torch.compile traces reading it (``ContextVar.get`` is unsupported, so the
default path broke ``fullgraph=True``) and guards on its value, so a compiled function
recompiles when it is called under another backend. ``FASTOT_BACKEND`` is read at trace
time only: set it before the process starts.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Iterator

import torch

from fastot._extension import STATUS

BACKENDS = ("auto", "eager", "cpp", "cuda", "triton")


class _Selection(threading.local):
    # Set in __init__ (run once per thread), not as a class default: dynamo guards an
    # instance attribute by value, but a class default only by a dict lookup that does not
    # see the thread's value, and would not recompile under use_backend.
    def __init__(self) -> None:
        self.name: str | None = None


_selection = _Selection()
_warned_cuda_fallback = False


def _check_name(name: object, what: str = "backend") -> str:
    if name not in BACKENDS:
        raise ValueError(f"{what} must be one of {', '.join(BACKENDS)}; got {name!r}")
    return name  # type: ignore[return-value]


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run the ops inside the ``with`` block on backend ``name`` unless a call passes ``backend=``."""
    previous = _selection.name
    _selection.name = _check_name(name)
    try:
        yield
    finally:
        _selection.name = previous


def _triton_runs_on(device: torch.device) -> bool:
    return device.type == "cuda" or os.environ.get("TRITON_INTERPRET", "0") == "1"


def available(device: torch.device | str) -> list[str]:
    """The concrete backends that can run on ``device`` in this process."""
    device = torch.device(device)
    out = ["eager"]
    if device.type == "cpu" and STATUS.cpp:
        out.append("cpp")
    if device.type == "cuda" and STATUS.cuda:
        out.append("cuda")
    if STATUS.triton and _triton_runs_on(device):
        out.append("triton")
    return out


def resolve(device: torch.device, backend: str | None) -> str:
    """The concrete backend ("eager", "cpp", "cuda" or "triton") for tensors on ``device``."""
    global _warned_cuda_fallback
    name = backend if backend is not None else _selection.name
    if name is None:
        name = os.environ.get("FASTOT_BACKEND", "auto")
        _check_name(name, "FASTOT_BACKEND")
    # The common cases first, without building the list of available backends: every op call
    # ends here, and at toy sizes this function is a visible part of the call.
    kind = device.type
    if name == "cpp" and kind == "cpu" and STATUS.cpp:
        return name
    if name == "cuda" and kind == "cuda" and STATUS.cuda:
        return name
    _check_name(name)
    if name == "auto":
        if kind == "cpu":
            return "cpp" if STATUS.cpp else "eager"
        if kind == "cuda":
            if STATUS.cuda:
                return "cuda"
            if STATUS.triton:
                return "triton"
            if not _warned_cuda_fallback:
                _warned_cuda_fallback = True
                warnings.warn(
                    "fastot: no CUDA or Triton kernels are available for CUDA tensors; using the "
                    f"eager backend (cuda: {STATUS.why.get('cuda')}; triton: {STATUS.why.get('triton')})",
                    RuntimeWarning,
                    stacklevel=3,
                )
        return "eager"
    if name == "eager":
        return name
    if name not in available(device):
        reason = STATUS.why.get(name) or f"the {name} backend does not run on {device.type} tensors"
        if name == "triton" and STATUS.triton and not _triton_runs_on(device):
            reason = "Triton needs CUDA tensors (or TRITON_INTERPRET=1 for CPU tensors)"
        raise RuntimeError(f"fastot: backend {name!r} is not available for {device.type} tensors: {reason}")
    return name
