"""Builds fastot: the C++ CPU extension always, the CUDA extension when asked or possible.

Build switches (printed at build time):
  FASTOT_CUDA=auto|0|1  auto builds CUDA kernels when torch has CUDA, nvcc is found and either
                        a GPU is visible or TORCH_CUDA_ARCH_LIST is set; 1 insists (fails loudly).
  DEBUG=1               -O0 -g instead of -O3.
  FASTOT_WERROR=1       warnings are errors (CI uses it for the CUDA sources).

Besides the package, a build places the compiled extensions and ``fastot/_build_info.py`` in
this checkout's ``fastot/``: commands run from the clone root (``python -m fastot.train``)
import the checkout, and must find the kernels there too.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys

import torch
from setuptools import Extension, setup
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

# csrc/*.cpp: the library and each op's schemas; csrc/cpu/*.cpp: the CPU kernels.
cpu_sources = _rel(
    [*glob.glob(os.path.join(ROOT, "csrc", "*.cpp")), *glob.glob(os.path.join(ROOT, "csrc", "cpu", "*.cpp"))]
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
BUILD_INFO = (
    "# Written by setup.py at build time.\n"
    f"TORCH_VERSION = {torch.__version__!r}\n"
    f"TORCH_CUDA_VERSION = {torch.version.cuda!r}\n"
    f"WITH_CUDA = {WITH_CUDA!r}\n"
    f"WHY_CUDA = {WHY!r}\n"
    f"DEBUG = {DEBUG!r}\n"
)
# Objects compiled under another configuration (torch, flags) must not be reused.
BUILD_CONFIG = repr(
    (
        BUILD_INFO,
        sys.version,
        [(e.name, e.sources, e.extra_compile_args, e.extra_link_args) for e in ext_modules],
        os.environ.get("TORCH_CUDA_ARCH_LIST"),
    )
)
WHAT = {
    "fastot._C": "the C++ CPU kernels (about 2-3 minutes on 2 cores)",
    "fastot._C_cuda": "the CUDA kernels (several minutes per GPU architecture)",
}


def _replace(path: str, *, text: str | None = None, copy_of: str | None = None) -> None:
    """Write ``text`` (or a copy of the file ``copy_of``) to a new file renamed over ``path``.

    A process that has the old .so mapped keeps it intact; rewriting it in place could crash it.
    """
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        if copy_of is not None:
            shutil.copy2(copy_of, tmp)
        else:
            with open(tmp, "w") as f:
                f.write(text or "")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class BuildExt(cpp_extension.BuildExtension.with_options(use_ninja=True)):
    """Builds the extensions, then places them and the build record in the checkout too."""

    def run(self) -> None:
        stamp = os.path.join(self.build_temp, "fastot_build_config.txt")
        try:
            with open(stamp) as f:
                same_config = f.read() == BUILD_CONFIG
        except OSError:
            same_config = False
        if not same_config:
            # setuptools would skip an extension whose sources are older than its last build.
            shutil.rmtree(self.build_temp, ignore_errors=True)
            self.force = True
        super().run()
        os.makedirs(self.build_temp, exist_ok=True)
        _replace(stamp, text=BUILD_CONFIG)
        if not self.inplace:
            _replace(os.path.join(self.build_lib, "fastot", "_build_info.py"), text=BUILD_INFO)
        self._place_in_checkout()

    def build_extension(self, ext: Extension) -> None:
        target = self.get_ext_fullpath(ext.name)
        sources = [os.path.join(ROOT, s) for s in ext.sources + ext.depends]
        if self.force or not os.path.exists(target) or any(_newer(s, target) for s in sources):
            # pip shows this only with -v; README says so.
            print(f"fastot: compiling {WHAT.get(ext.name, ext.name)}...", flush=True)
        super().build_extension(ext)

    def _place_in_checkout(self) -> None:
        try:
            if not self.inplace:  # an in-place build already wrote the extensions here
                for ext in self.extensions:
                    src = self.get_ext_fullpath(ext.name)
                    dst = os.path.join(ROOT, self.get_ext_filename(ext.name))
                    _replace(dst, copy_of=src)
            # Written last: a failed build leaves the previous extension and record together.
            _replace(os.path.join(ROOT, "fastot", "_build_info.py"), text=BUILD_INFO)
        except OSError as e:  # a read-only checkout still gets a working installed package
            print(f"fastot: could not place the built kernels in {ROOT}/fastot: {e}", flush=True)
            return
        print(f"fastot: the built kernels are also in {ROOT}/fastot, for commands run from there", flush=True)


def _newer(path: str, than: str) -> bool:
    return os.path.getmtime(path) > os.path.getmtime(than)


setup(ext_modules=ext_modules, cmdclass={"build_ext": BuildExt})
