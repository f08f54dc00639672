"""psi_star and semi_dual_loss (Psi* = kl) on vectors of 64 (one batch: op overhead) and 4096."""

from __future__ import annotations

from typing import Any

import pytest
from _common import Case, providers, run_case, vector_cases


@pytest.mark.parametrize("case", vector_cases("psi_star"), ids=str)
@pytest.mark.parametrize("provider", providers())
def test_psi_star(benchmark: Any, provider: str, case: Case) -> None:
    run_case(benchmark, provider, case)


@pytest.mark.parametrize("case", vector_cases("semi_dual_loss"), ids=str)
@pytest.mark.parametrize("provider", providers())
def test_semi_dual_loss(benchmark: Any, provider: str, case: Case) -> None:
    run_case(benchmark, provider, case)
