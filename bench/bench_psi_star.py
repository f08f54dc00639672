"""psi_star (Psi* = kl) on vectors of 64 (one batch: op overhead) and 4096."""

from __future__ import annotations

from typing import Any

import pytest
from _env import providers
from _ops import Case, OpBench, Randn, run_case, vector_cases
from torch import Tensor

import fastot
from fastot.ops.psi_star import reference

KIND = "kl"


def _inputs(case: Case, randn: Randn) -> tuple[list[Tensor], list[Tensor]]:
    t = randn(case.n, grad=True)
    return [t], [t]


OP = OpBench(
    "psi_star",
    inputs=_inputs,
    public=lambda backend: lambda t: fastot.psi_star(t, KIND, backend=backend),
    reference=lambda t: reference(t, KIND),
    # t -> value and the saved derivative; backward reads the gradient and the derivative, writes dt.
    bytes_moved=lambda case: (2 + 3 * case.backward) * case.tensor_bytes,
)


@pytest.mark.parametrize("case", vector_cases(), ids=str)
@pytest.mark.parametrize("provider", providers())
def test_psi_star(benchmark: Any, provider: str, case: Case) -> None:
    run_case(benchmark, OP, provider, case)


def overhead_calls(backend: str, bare: Any, t: Any) -> tuple[Any, Any]:
    """(public call, bare torch.ops call) on bench_overhead's toy inputs ``t``, the same arguments."""
    return (
        lambda: fastot.psi_star(t.v_fake, "kl", 1.0, backend=backend),
        lambda: bare(t.v_fake, "kl", 1.0),
    )
