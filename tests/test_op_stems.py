"""One op, one stem: every registered op has its file in each layer, named after it.

The op list everything derives from is the ops' definitions (``fastot.ops._library.op_names``);
an op missing one of these files would silently lack a backend, a test or a benchmark.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fastot.ops._library import op_names

ROOT = Path(__file__).resolve().parents[1]
STEMS = (
    "fastot/ops/{}.py",  # the public function, reference, fake kernel and autograd
    "csrc/{}.cpp",  # the schemas
    "csrc/cpu/{}.cpp",  # the C++ kernel
    "csrc/cuda/{}.cu",  # the CUDA kernel
    "kernels/{}.py",  # the Triton kernel
    "tests/test_{}.py",
    "bench/bench_{}.py",
)


def test_the_definitions_name_every_public_op() -> None:
    import fastot.ops

    # The API's other names: backend selection, and R1 on a network (built on r1_penalty).
    helpers = {"BACKENDS", "available", "use_backend", "r1_regularizer"}
    assert op_names() and set(fastot.ops.__all__) - helpers == set(op_names())
    assert set(op_names(include_backward=True)) >= set(op_names())


@pytest.mark.parametrize("op", op_names())
def test_every_op_has_its_stem_files(op: str) -> None:
    missing = [s.format(op) for s in STEMS if not (ROOT / s.format(op)).is_file()]
    assert not missing, f"{op} lacks {missing}"


# What each op's own test and bench files define for the cross-op tables (their inputs are the op's).
# tests/test_errors.py, tests/test_registration.py (opcheck, compile) and tests/test_build.py:
TEST_CALLS = ("error_call", "opcheck_cases", "compile_call", "triton_cuda_jobs")
BENCH_CALLS = ("overhead_calls",)  # bench_overhead


@pytest.mark.parametrize("op", op_names())
def test_every_op_gives_the_cross_op_tables_its_calls(op: str) -> None:
    """An op whose files lacked one of these would fail here, not silently skip that table."""
    import importlib
    import sys

    sys.path.insert(0, str(ROOT / "bench"))
    tests, bench = importlib.import_module(f"test_{op}"), importlib.import_module(f"bench_{op}")
    missing = [f"tests/test_{op}.py:{a}" for a in TEST_CALLS if not callable(getattr(tests, a, None))]
    missing += [f"bench/bench_{op}.py:{a}" for a in BENCH_CALLS if not callable(getattr(bench, a, None))]
    assert not missing, f"{op} lacks {missing}"


def test_the_cross_op_tables_cover_every_op() -> None:
    import sys

    import torch

    sys.path.insert(0, str(ROOT / "bench"))
    import bench_overhead
    import test_errors
    import test_registration

    x = torch.ones(3, 4)
    assert set(test_errors._calls(x, x, torch.ones(3, 2, 4))) == set(op_names())
    assert set(test_registration.CALLS) == set(op_names())
    assert set(bench_overhead._calls("eager")) == set(op_names())
