"""energy_kernel_cost (KNOT): the gamma-weak energy-kernel cost of Z samples per input.

Shapes and cases: bench/_weak_costs.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from _env import providers
from _ops import Case, run_case
from _weak_costs import CASES, weak_cost

import fastot
from fastot.ops.energy_kernel_cost import reference

OP = weak_cost("energy_kernel_cost", fastot.energy_kernel_cost, reference)


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("provider", providers())
def test_energy_kernel_cost(benchmark: Any, provider: str, case: Case) -> None:
    run_case(benchmark, OP, provider, case)


def overhead_calls(backend: str, bare: Any, t: Any) -> tuple[Any, Any]:
    """(public call, bare torch.ops call) on bench_overhead's toy inputs ``t``, the same arguments."""
    return (
        lambda: fastot.energy_kernel_cost(t.x, t.ys, 0.5, 1.0, backend=backend),
        lambda: bare(t.x, t.ys, 0.5, 1.0),
    )
