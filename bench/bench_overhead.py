"""Per-call overhead: each public op against the bare ``torch.ops.fastot`` call it ends in.

At the toy sizes (one score or one 2-D point per sample, B = 256) a kernel takes microseconds, so
what the public function adds (validation, backend choice, reshapes, the autograd wrapper) shows
directly. Forward only, no tensor requiring grad: the public path then calls the op once. The
suite's target is public <= 1.5x bare; ``python -m fastot.bench_report`` prints the ratio.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from _env import DEVICE, fused_providers, num_threads
from _timing import record, time_callable

import fastot

B, Z, D = 256, 4, 2


def _calls(backend: str) -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    """Per op: (public call, bare torch.ops call) on the same inputs."""
    g = torch.Generator().manual_seed(0)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g).to(DEVICE)

    ops = torch.ops.fastot
    suffix = "_triton" if backend == "triton" else ""

    def bare(name: str) -> Any:
        return getattr(ops, name + suffix)

    x, y, ys = randn(B, D), randn(B, D), randn(B, Z, D)
    cost, v_fake, v_real = randn(B), randn(B), randn(B)
    return {
        "quadratic_cost": (
            lambda: fastot.quadratic_cost(x, y, 0.1, backend=backend),
            lambda: bare("quadratic_cost")(x, y, 0.1),
        ),
        "psi_star": (
            lambda: fastot.psi_star(v_fake, "kl", 1.0, backend=backend),
            lambda: bare("psi_star")(v_fake, "kl", 1.0),
        ),
        "semi_dual_loss": (
            lambda: fastot.semi_dual_loss(cost, v_fake, v_real, "kl", "kl", backend=backend),
            lambda: bare("semi_dual_loss")(cost, v_fake, v_real, "kl", "kl", 1.0),
        ),
        "r1_penalty": (
            lambda: fastot.r1_penalty(x, 0.2, backend=backend),
            lambda: bare("r1_penalty")(x, 0.2),
        ),
        "weak_quadratic_cost": (
            lambda: fastot.weak_quadratic_cost(x, ys, 0.5, 1.0, backend=backend),
            lambda: bare("weak_quadratic_cost")(x, ys, 0.5, 1.0),
        ),
        "energy_kernel_cost": (
            lambda: fastot.energy_kernel_cost(x, ys, 0.5, 1.0, backend=backend),
            lambda: bare("energy_kernel_cost")(x, ys, 0.5, 1.0),
        ),
    }


OPS = list(_calls("eager"))


@pytest.mark.parametrize("call", ["public", "bare"])
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("provider", fused_providers())
def test_call_overhead(benchmark: Any, provider: str, op: str, call: str) -> None:
    public, bare = _calls(provider)[op]
    fn = public if call == "public" else bare
    benchmark.group = f"overhead {op} B={B} threads=1"
    with num_threads(1):
        time_callable(benchmark, fn, warmup_rounds=10)
    record(benchmark, {"kind": "overhead", "op": op, "provider": provider, "call": call, "threads": 1}, None)
