"""Per-call overhead: each public op against the bare ``torch.ops.fastot`` call it ends in.

At the toy sizes (one score or one 2-D point per sample, B = 256) a kernel takes microseconds, so
what the public function adds (validation, backend choice, reshapes, the autograd wrapper) shows
directly. Forward only, no tensor requiring grad: the public path then calls the op once. The
suite's target is public <= 1.5x bare; ``python -m fastot.bench_report`` prints the ratio.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from _env import DEVICE, fused_providers, num_threads
from _timing import record, time_callable

from fastot.ops._library import op_names

B, Z, D = 256, 4, 2


def _calls(backend: str) -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    """Per op: (public call, bare torch.ops call) on the same inputs, from each op's own
    ``bench_<op>.py`` (its ``overhead_calls``), so adding an op edits nothing here."""
    g = torch.Generator().manual_seed(0)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g).to(DEVICE)

    suffix = "_triton" if backend == "triton" else ""
    t = SimpleNamespace(x=randn(B, D), y=randn(B, D), ys=randn(B, Z, D))
    t.cost, t.v_fake, t.v_real = randn(B), randn(B), randn(B)
    return {
        op: importlib.import_module(f"bench_{op}").overhead_calls(
            backend, getattr(torch.ops.fastot, op + suffix), t
        )
        for op in op_names()
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
