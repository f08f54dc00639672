"""weak_quadratic_cost (NOT): x [B, 3, 256, 256], Z samples y [B, Z, 3, 256, 256]; gradient for y only.

B = 16 at both Z = 4 and Z = 8: at B = 64 one eager forward+backward takes about 3 s on two cores
(and its temporaries several GiB), which would not fit the suite's time budget.
"""

from __future__ import annotations

from typing import Any

import pytest
from _env import providers
from _ops import Case, image_cases, run_case
from _weak_costs import weak_cost

import fastot
from fastot.ops.weak_quadratic_cost import reference

OP = weak_cost("weak_quadratic_cost", fastot.weak_quadratic_cost, reference)


@pytest.mark.parametrize("case", image_cases(batches=(16,), zs=(4, 8)), ids=str)
@pytest.mark.parametrize("provider", providers())
def test_weak_quadratic_cost(benchmark: Any, provider: str, case: Case) -> None:
    run_case(benchmark, OP, provider, case)
