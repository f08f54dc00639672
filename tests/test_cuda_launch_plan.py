"""The CUDA kernels' launch geometry, run on the host: every element covered exactly once.

csrc/cuda/row_plan.h is plain integer math shared by every CUDA kernel's launch; a host compiler
builds tests/cuda_plan/coverage.cpp against it, so the row split is checked without a GPU.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_row_plan_covers_every_element_exactly_once(tmp_path):
    cxx = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if cxx is None or not (ROOT / "csrc" / "cuda" / "row_plan.h").is_file():
        pytest.skip("needs a C++ compiler and the source tree's csrc/")
    exe = tmp_path / "coverage"
    src = ROOT / "tests" / "cuda_plan" / "coverage.cpp"
    flags = ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror"]
    subprocess.run([cxx, *flags, str(src), "-o", str(exe)], check=True)
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Task groups of every size the kernels can take, the small and the warp-crossing ones included.
    groups = {int(g) for g in proc.stdout.split("groups:")[1].split()}
    assert {1, 4, 8, 32, 64, 256} <= groups, proc.stdout
