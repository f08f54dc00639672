"""The run's environment: the device and providers under test, threads, and what every result records."""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import torch

import fastot

DEVICE = torch.device(os.environ.get("FASTOT_BENCH_DEVICE", "cuda" if torch.cuda.is_available() else "cpu"))
# On a GPU the host threads do not change the kernels: one thread count, not two copies of each case.
THREADS = (1, 2) if DEVICE.type == "cpu" else (1,)


def fused_providers(device: torch.device = DEVICE) -> list[str]:
    # Triton on CPU tensors is the interpreter (TRITON_INTERPRET=1): a correctness tool, not a timing.
    interpreted = {"triton"} if device.type == "cpu" else set()
    return [b for b in fastot.available(device) if b != "eager" and b not in interpreted]


def providers(device: torch.device = DEVICE) -> list[str]:
    """The eager reference, ``torch.compile`` of it, and every fused backend on ``device``."""
    return ["eager", "compile", *fused_providers(device)]


@contextlib.contextmanager
def num_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def synchronize() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


@functools.cache
def git_sha() -> str:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=9", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


@functools.cache
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def triton_version() -> str | None:
    try:
        import triton
    except ImportError:
        return None
    return str(triton.__version__)


@functools.cache
def device_name() -> str:
    if DEVICE.type == "cuda":
        return torch.cuda.get_device_name(DEVICE)
    return f"{cpu_model()} ({os.cpu_count()} logical CPUs)"


def environment(allocator: str) -> dict[str, Any]:
    """The extra_info fields shared by every benchmark of a run."""
    return {
        "device": DEVICE.type,
        "device_name": device_name(),
        "torch": torch.__version__,
        "triton": triton_version(),
        "fastot": fastot.__version__ if hasattr(fastot, "__version__") else None,
        "git_sha": git_sha(),
        "allocator": allocator,
        "command": " ".join(["pytest", *sys.argv[1:]]),
    }
