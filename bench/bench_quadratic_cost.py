"""quadratic_cost: the UOTM / S-JKO transport cost (the map loss backpropagates into T(x) only)."""

from __future__ import annotations

from typing import Any

import pytest
from _env import providers
from _ops import IMAGE, Case, OpBench, Randn, image_cases, run_case
from torch import Tensor

import fastot
from fastot.ops.quadratic_cost import reference

SCALE = 1e-5  # tau (any non-negative value does the same work)


def _inputs(case: Case, randn: Randn) -> tuple[list[Tensor], list[Tensor]]:
    x, y = randn(case.batch, *IMAGE), randn(case.batch, *IMAGE, grad=True)
    return [x, y], [y]


OP = OpBench(
    "quadratic_cost",
    inputs=_inputs,
    public=lambda backend: lambda x, y: fastot.quadratic_cost(x, y, SCALE, backend=backend),
    reference=lambda x, y: reference(x.flatten(1), y.flatten(1), SCALE),
    # x, y -> [B]; backward reads x, y again and writes dy.
    bytes_moved=lambda case: (2 + 3 * case.backward) * case.tensor_bytes,
)


@pytest.mark.parametrize("case", image_cases(batches=(16, 64)), ids=str)
@pytest.mark.parametrize("provider", providers())
def test_quadratic_cost(benchmark: Any, provider: str, case: Case) -> None:
    run_case(benchmark, OP, provider, case)


def overhead_calls(backend: str, bare: Any, t: Any) -> tuple[Any, Any]:
    """(public call, bare torch.ops call) on bench_overhead's toy inputs ``t``, the same arguments."""
    return (
        lambda: fastot.quadratic_cost(t.x, t.y, 0.1, backend=backend),
        lambda: bare(t.x, t.y, 0.1),
    )
