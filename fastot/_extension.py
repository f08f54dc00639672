"""Loads the compiled parts of fastot without ever failing the import.

``fastot._C`` holds the op schemas and the C++ CPU kernels; ``fastot._C_cuda``
adds the CUDA kernels under the same schemas. Both are loaded only when they
were built against the torch that is running (the build records its version in
``fastot/_build_info.py``): a mismatch gives one warning and the eager fallback,
never an undefined-symbol error or a crash.
"""

from __future__ import annotations

import importlib
import os
import warnings
from dataclasses import dataclass, field

import torch


@dataclass
class Status:
    cpp: bool = False
    cuda: bool = False
    triton: bool = False
    why: dict[str, str] = field(default_factory=dict)
    build: dict[str, object] = field(default_factory=dict)


STATUS = Status()


def _same_torch(built: str, running: str) -> bool:
    # The C++ ABI is only stable within one release: compare major.minor.patch, ignore local tags.
    from packaging.version import Version

    return Version(built).release == Version(running).release


def _load_compiled() -> None:
    try:
        from fastot import _build_info  # written by setup.py
    except ImportError:
        STATUS.why["cpp"] = "fastot was not built with its C++ extension (source checkout or failed build)"
        STATUS.why["cuda"] = STATUS.why["cpp"]
        return
    STATUS.build = {k: getattr(_build_info, k) for k in dir(_build_info) if k.isupper()}
    built = str(_build_info.TORCH_VERSION)
    if not _same_torch(built, torch.__version__):
        msg = (
            f"fastot's compiled kernels were built against torch {built} but torch "
            f"{torch.__version__} is running; using the eager backend. Rebuild with "
            "`pip install --no-build-isolation --force-reinstall .` to use the fused kernels."
        )
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
        STATUS.why["cpp"] = STATUS.why["cuda"] = msg
        return
    try:
        importlib.import_module("fastot._C")
        STATUS.cpp = True
    except (ImportError, OSError) as e:
        STATUS.why["cpp"] = f"fastot._C failed to load: {e}"
        STATUS.why["cuda"] = STATUS.why["cpp"]
        warnings.warn(STATUS.why["cpp"] + "; using the eager backend", RuntimeWarning, stacklevel=3)
        return
    if not _build_info.WITH_CUDA:
        STATUS.why["cuda"] = "fastot was built without CUDA kernels (FASTOT_CUDA=0 or no nvcc / CUDA torch)"
        return
    try:
        importlib.import_module("fastot._C_cuda")
        STATUS.cuda = True
    except (ImportError, OSError) as e:
        STATUS.why["cuda"] = f"fastot._C_cuda failed to load: {e}"
        warnings.warn(STATUS.why["cuda"], RuntimeWarning, stacklevel=3)


def _load_triton() -> None:
    try:
        importlib.import_module("fastot.kernels")
    except ImportError as e:
        STATUS.why["triton"] = f"Triton kernels unavailable: {e}"
        return
    STATUS.triton = True


if os.environ.get("FASTOT_DISABLE_EXTENSIONS", "0") == "1":
    STATUS.why["cpp"] = STATUS.why["cuda"] = STATUS.why["triton"] = "disabled by FASTOT_DISABLE_EXTENSIONS=1"
else:
    _load_compiled()
    _load_triton()
