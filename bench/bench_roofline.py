"""This machine's streaming bandwidth (STREAM copy and triad on 256 MiB arrays), in the same run.

The report divides every op's effective GB/s by the triad figure at the same thread count.
Bytes count reads and writes once each (no write-allocate traffic), as the op rows do.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from _env import DEVICE, THREADS, num_threads, synchronize
from _timing import record, time_callable

MIB = 1 << 20
ARRAY_BYTES = 256 * MIB


@pytest.mark.parametrize("threads", THREADS, ids=lambda t: f"t{t}")
@pytest.mark.parametrize("kernel", ["copy", "triad"])
def test_roofline(benchmark: Any, kernel: str, threads: int) -> None:
    n = ARRAY_BYTES // 4
    a, b, c = (torch.rand(n, device=DEVICE) for _ in range(3))  # float32, touched (resident)

    if kernel == "copy":

        def fn() -> None:
            a.copy_(b)
            synchronize()

        nbytes = 2 * ARRAY_BYTES
    else:

        def fn() -> None:
            torch.add(b, c, alpha=3.0, out=a)
            synchronize()

        nbytes = 3 * ARRAY_BYTES
    benchmark.group = f"roofline {kernel} 256MiB float32 threads={threads}"
    with num_threads(threads):
        time_callable(benchmark, fn, warmup_rounds=1)
    record(benchmark, {"kind": "roofline", "kernel": kernel, "threads": threads}, nbytes)
