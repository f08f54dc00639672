"""r1_penalty: (w/2) mean ||grad||^2 of the potential's input gradient; backward w.r.t. that gradient."""

from __future__ import annotations

from typing import Any

import pytest
from _common import Case, image_cases, providers, run_case


@pytest.mark.parametrize("case", image_cases("r1_penalty", batches=(16, 64)), ids=str)
@pytest.mark.parametrize("provider", providers())
def test_r1_penalty(benchmark: Any, provider: str, case: Case) -> None:
    run_case(benchmark, provider, case)
