"""``python -m fastot.info``: versions, which backends are built and usable, and why not."""

from __future__ import annotations

import os
import platform

import torch

import fastot
from fastot._extension import STATUS
from fastot.ops._backend import available


def _triton_version() -> str:
    try:
        import triton
    except ImportError:
        return "not installed"
    return triton.__version__


def report() -> str:
    lines = [
        f"fastot {fastot.__version__}",
        f"python {platform.python_version()} on {platform.machine()}",
        f"torch {torch.__version__} (CUDA {torch.version.cuda or 'none'}; "
        f"GPU visible: {torch.cuda.is_available()}; threads: {torch.get_num_threads()})",
        f"triton {_triton_version()} (TRITON_INTERPRET={os.environ.get('TRITON_INTERPRET', '0')})",
    ]
    if STATUS.build:
        lines.append(
            f"built against torch {STATUS.build.get('TORCH_VERSION')}, "
            f"CUDA kernels {'yes' if STATUS.build.get('WITH_CUDA') else 'no'} "
            f"({STATUS.build.get('WHY_CUDA')})"
        )
    lines.append("backends:")
    for name in ("cpp", "cuda", "triton"):
        ok = getattr(STATUS, name)
        lines.append(
            f"  {name:7s} {'loaded' if ok else 'unavailable'}" + ("" if ok else f": {STATUS.why[name]}")
        )
    lines.append(f"usable on cpu tensors: {', '.join(available('cpu'))}")
    if torch.cuda.is_available():
        lines.append(f"usable on cuda tensors: {', '.join(available('cuda'))}")
    env = os.environ.get("FASTOT_BACKEND")
    lines.append(f"FASTOT_BACKEND={env}" if env else "FASTOT_BACKEND unset (auto)")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())
