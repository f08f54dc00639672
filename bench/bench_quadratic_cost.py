"""quadratic_cost: the UOTM / S-JKO transport cost (the map loss backpropagates into T(x) only)."""

from __future__ import annotations

from typing import Any

import pytest
from _common import Case, image_cases, providers, run_case


@pytest.mark.parametrize("case", image_cases("quadratic_cost", batches=(16, 64)), ids=str)
@pytest.mark.parametrize("provider", providers())
def test_quadratic_cost(benchmark: Any, provider: str, case: Case) -> None:
    run_case(benchmark, provider, case)
