"""weak_quadratic_cost (NOT): the gamma-weak quadratic cost of Z samples per input.

Shapes and cases: bench/_weak_costs.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from _env import providers
from _ops import Case, run_case
from _weak_costs import CASES, weak_cost

import fastot
from fastot.ops.weak_quadratic_cost import reference

OP = weak_cost("weak_quadratic_cost", fastot.weak_quadratic_cost, reference)


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("provider", providers())
def test_weak_quadratic_cost(benchmark: Any, provider: str, case: Case) -> None:
    run_case(benchmark, OP, provider, case)


def overhead_calls(backend: str, bare: Any, t: Any) -> tuple[Any, Any]:
    """(public call, bare torch.ops call) on bench_overhead's toy inputs ``t``, the same arguments."""
    return (
        lambda: fastot.weak_quadratic_cost(t.x, t.ys, 0.5, 1.0, backend=backend),
        lambda: bare(t.x, t.ys, 0.5, 1.0),
    )
