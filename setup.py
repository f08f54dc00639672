"""Builds fastot: the C++ CPU extension always, the CUDA extension when asked or possible.

Build switches (printed at build time):
  FASTOT_CUDA=auto|0|1  auto builds CUDA kernels when torch has CUDA, nvcc is found and either
                        a GPU is visible or TORCH_CUDA_ARCH_LIST is set; 1 insists (fails loudly).
  DEBUG=1               -O0 -g instead of -O3.
  FASTOT_WERROR=1       warnings are errors (CI uses it for the CUDA sources).
"""

from __future__ import annotations

import glob
import os
import sys

import torch
from setuptools import setup
from torch.utils import cpp_extension

ROOT = os.path.dirname(os.path.abspath(__file__))
FASTOT_CUDA = os.environ.get("FASTOT_CUDA", "auto").lower()
DEBUG = os.environ.get("DEBUG", "0") == "1"
WERROR = os.environ.get("FASTOT_WERROR", "0") == "1"

if FASTOT_CUDA not in ("auto", "0", "1"):
    sys.exit(f"FASTOT_CUDA must be auto, 0 or 1, got {FASTOT_CUDA!r}")


def _want_cuda() -> tuple[bool, str]:
    has_torch_cuda = torch.version.cuda is not None
    has_nvcc = cpp_extension.CUDA_HOME is not None
    if FASTOT_CUDA == "0":
        return False, "FASTOT_CUDA=0"
    if FASTOT_CUDA == "1":
        if not (has_torch_cuda and has_nvcc):
            sys.exit(
                "FASTOT_CUDA=1 but "
                + ("torch has no CUDA" if not has_torch_cuda else "nvcc / CUDA_HOME was not found")
            )
        return True, "FASTOT_CUDA=1"
    if not has_torch_cuda:
        return False, "torch is a CPU build"
    if not has_nvcc:
        return False, "nvcc / CUDA_HOME not found"
    if torch.cuda.is_available() or os.environ.get("TORCH_CUDA_ARCH_LIST"):
        return True, "CUDA torch, nvcc and a GPU or TORCH_CUDA_ARCH_LIST"
    return False, "no GPU visible and TORCH_CUDA_ARCH_LIST unset"


def _rel(paths: list[str]) -> list[str]:
    return sorted(os.path.relpath(p, ROOT) for p in paths)


WITH_CUDA, WHY = _want_cuda()
opt = ["-O0", "-g"] if DEBUG else ["-O3"]
# -fno-trapping-math: FP exception flags are never read, so selects in the SIMD loops may become
# blends (results are unchanged; unlike -ffast-math nothing is reassociated).
cxx_flags = [*opt, "-fopenmp", "-fno-trapping-math", "-Wall", "-Wno-unknown-pragmas"]
print(
    f"fastot build: torch {torch.__version__}, FASTOT_CUDA={FASTOT_CUDA}, WITH_CUDA={WITH_CUDA} ({WHY}), "
    f"DEBUG={DEBUG}, FASTOT_WERROR={WERROR}"
)

cpu_sources = _rel(
    [os.path.join(ROOT, "csrc", "fastot.cpp"), *glob.glob(os.path.join(ROOT, "csrc", "cpu", "*.cpp"))]
)
ext_modules = [
    cpp_extension.CppExtension(
        "fastot._C",
        cpu_sources,
        extra_compile_args={"cxx": cxx_flags},
        extra_link_args=["-fopenmp"],
    )
]
if WITH_CUDA:
    nvcc_flags = [*opt, "--expt-relaxed-constexpr", "-lineinfo"]
    if WERROR:
        nvcc_flags += ["-Werror", "all-warnings", "-Xcompiler", "-Wall,-Werror"]
    ext_modules.append(
        cpp_extension.CUDAExtension(
            "fastot._C_cuda",
            _rel(glob.glob(os.path.join(ROOT, "csrc", "cuda", "*.cu"))),
            extra_compile_args={"cxx": cxx_flags, "nvcc": nvcc_flags},
        )
    )

# Recorded so that `import fastot` can refuse (with a warning) kernels built for another torch.
with open(os.path.join(ROOT, "fastot", "_build_info.py"), "w") as f:
    f.write(
        "# Written by setup.py at build time.\n"
        f"TORCH_VERSION = {torch.__version__!r}\n"
        f"TORCH_CUDA_VERSION = {torch.version.cuda!r}\n"
        f"WITH_CUDA = {WITH_CUDA!r}\n"
        f"WHY_CUDA = {WHY!r}\n"
        f"DEBUG = {DEBUG!r}\n"
    )

setup(
    ext_modules=ext_modules,
    cmdclass={"build_ext": cpp_extension.BuildExtension.with_options(use_ninja=True)},
)
