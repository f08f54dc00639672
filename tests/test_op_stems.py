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
