"""r1_penalty: (w/2) mean ||grad||^2 of the potential's input gradient; backward w.r.t. that gradient.

On a GPU the forward reads grad, and the backward reads it again and writes d grad. On the CPU a
forward on a grad that requires grad (as here: training always backpropagates R1) writes d grad
while it reads grad, and the backward has nothing left to move: the forward row does the
backward's work, so it is slower than compile's forward alone, and forward+backward is the
figure that counts.
"""

from __future__ import annotations

from typing import Any

import pytest
from _env import DEVICE, providers
from _ops import IMAGE, Case, OpBench, Randn, image_cases, run_case
from torch import Tensor

import fastot
from fastot.ops.r1_penalty import reference

WEIGHT = 0.2  # the papers' R1 weight


def _inputs(case: Case, randn: Randn) -> tuple[list[Tensor], list[Tensor]]:
    grad = randn(case.batch, *IMAGE, grad=True)
    return [grad], [grad]


OP = OpBench(
    "r1_penalty",
    inputs=_inputs,
    public=lambda backend: lambda g: fastot.r1_penalty(g, WEIGHT, backend=backend),
    reference=lambda g: reference(g.flatten(1), WEIGHT),
    bytes_moved=lambda case: (2 if DEVICE.type == "cpu" else 1 + 2 * case.backward) * case.tensor_bytes,
)


@pytest.mark.parametrize("case", image_cases(batches=(16, 64)), ids=str)
@pytest.mark.parametrize("provider", providers())
def test_r1_penalty(benchmark: Any, provider: str, case: Case) -> None:
    run_case(benchmark, OP, provider, case)


def overhead_calls(backend: str, bare: Any, t: Any) -> tuple[Any, Any]:
    """(public call, bare torch.ops call) on bench_overhead's toy inputs ``t``, the same arguments."""
    return (
        lambda: fastot.r1_penalty(t.x, 0.2, backend=backend),
        lambda: bare(t.x, 0.2),
    )
