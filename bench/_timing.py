"""Timing with pytest-benchmark: rounds sized to a time budget, and what each result records."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

from _allocator import state
from _env import environment

TIME_BUDGET = float(os.environ.get("FASTOT_BENCH_BUDGET", "0.5"))
MIN_ROUNDS = 3
MAX_ROUNDS = 100
MIN_ROUND_SECONDS = 2e-3  # calls shorter than this are repeated inside one round


def _rounds(fn: Callable[[], Any]) -> tuple[int, int]:
    """(rounds, iterations) that fit TIME_BUDGET, from one timed call after the warm-up."""
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    iterations = max(1, math.ceil(MIN_ROUND_SECONDS / once))
    rounds = int(min(MAX_ROUNDS, max(MIN_ROUNDS, TIME_BUDGET // (once * iterations))))
    return rounds, iterations


def record(benchmark: Any, info: dict[str, Any], nbytes: int | None) -> None:
    """Fill ``benchmark.extra_info`` with the environment, ``info`` and the achieved bandwidth."""
    benchmark.extra_info.update(environment(state()))
    benchmark.extra_info.update(info)
    if nbytes is not None:
        benchmark.extra_info["bytes"] = nbytes
        stats = getattr(benchmark, "stats", None)
        median = stats.stats.median if stats is not None else None
        if median:
            benchmark.extra_info["gbps"] = nbytes / median / 1e9


def time_callable(benchmark: Any, fn: Callable[[], Any], warmup_rounds: int = 0) -> None:
    """Time ``fn`` with pytest-benchmark: warm-up, then rounds sized to the time budget.

    The call that sizes the rounds is itself a warm-up round (it re-warms the allocator after
    :func:`peak_memory` trimmed it); ``warmup_rounds`` adds more.
    """
    if benchmark.disabled:
        benchmark(fn)
        return
    for _ in range(warmup_rounds):
        fn()
    rounds, iterations = _rounds(fn)
    benchmark.pedantic(fn, rounds=rounds, iterations=iterations, warmup_rounds=0)
