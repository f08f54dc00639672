"""semi_dual_loss (Psi* = kl on both sides) on score vectors of 64 (one batch: op overhead) and 4096."""

from __future__ import annotations

from typing import Any

import pytest
from _env import providers
from _ops import Case, OpBench, Randn, run_case, vector_cases
from torch import Tensor

import fastot
from fastot.ops.semi_dual_loss import reference

KIND = "kl"


def _inputs(case: Case, randn: Randn) -> tuple[list[Tensor], list[Tensor]]:
    args = [randn(case.n, grad=True) for _ in range(3)]  # cost, v_fake, v_real
    return args, list(args)


OP = OpBench(
    "semi_dual_loss",
    inputs=_inputs,
    public=lambda backend: lambda c, f, r: fastot.semi_dual_loss(c, f, r, KIND, KIND, backend=backend),
    reference=lambda c, f, r: reference(c, f, r, KIND, KIND),
    # cost, v_fake, v_real -> scalar (and two saved gradients); backward writes three gradients.
    bytes_moved=lambda case: (3 + 3 * case.backward) * case.tensor_bytes,
)


@pytest.mark.parametrize("case", vector_cases(), ids=str)
@pytest.mark.parametrize("provider", providers())
def test_semi_dual_loss(benchmark: Any, provider: str, case: Case) -> None:
    run_case(benchmark, OP, provider, case)


def overhead_calls(backend: str, bare: Any, t: Any) -> tuple[Any, Any]:
    """(public call, bare torch.ops call) on bench_overhead's toy inputs ``t``, the same arguments."""
    return (
        lambda: fastot.semi_dual_loss(t.cost, t.v_fake, t.v_real, "kl", "kl", backend=backend),
        lambda: bare(t.cost, t.v_fake, t.v_real, "kl", "kl", 1.0),
    )
