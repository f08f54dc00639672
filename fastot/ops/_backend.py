"""Backend selection: ``backend=`` argument > ``use_backend`` context > ``FASTOT_BACKEND`` > auto."""

from __future__ import annotations

import contextlib
import contextvars
import os
import warnings
from collections.abc import Iterator

import torch

from fastot._extension import STATUS

BACKENDS = ("auto", "eager", "cpp", "cuda", "triton")

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("fastot_backend", default=None)
_warned_cuda_fallback = False


def _check_name(name: object, what: str = "backend") -> str:
    if name not in BACKENDS:
        raise ValueError(f"{what} must be one of {', '.join(BACKENDS)}; got {name!r}")
    return name  # type: ignore[return-value]


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run the ops inside the ``with`` block on backend ``name`` unless a call passes ``backend=``."""
    token = _current.set(_check_name(name))
    try:
        yield
    finally:
        _current.reset(token)


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
    name = backend if backend is not None else _current.get()
    if name is None:
        name = os.environ.get("FASTOT_BACKEND", "auto")
        _check_name(name, "FASTOT_BACKEND")
    _check_name(name)
    if name == "auto":
        if device.type == "cpu":
            return "cpp" if STATUS.cpp else "eager"
        if device.type == "cuda":
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
