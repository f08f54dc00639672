"""The trainer's iterations against what bounds them, on the CPU at one thread.

* The default preset's toy iteration (uotm-outlier-1d: k_v = 5, batch 256) with
  ``algorithm.batched_calls`` on and off, interleaved, beside its matrix-product floor.
* The image presets' iteration (digits-uotm at its batch 64; cifar10-uotm and celebahq256-uotm at
  B = 2) beside its floor: the FLOPs of one iteration (``torch.utils.flop_counter``), split into
  convolutions and matrix products, at the throughput this machine reaches on a large convolution
  and a large matrix product in the same run. Also timed: ``train.channels_last`` and
  ``train.compile=true`` (the networks; R1's double backward stays on the eager potential).

Every result records the FLOPs, the floor and time / floor, which ``fastot.bench_report`` shows.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest
import torch
from _env import DEVICE, num_threads
from _timing import record
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map
from torch.utils.flop_counter import flop_registry

pytestmark = pytest.mark.skipif(DEVICE.type != "cpu", reason="the CPU step against the CPU's floor")

CONV_OPS = ("convolution", "convolution_backward")
MM_OPS = ("mm", "addmm", "bmm", "baddbmm")


def _rate(fn: Callable[[], Any], flops: float, repeats: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return flops / best


def machine_rates() -> dict[str, float]:
    """FLOP/s of a large 3x3 convolution (forward) and a large matrix product at this thread count."""
    x, w = torch.randn(16, 64, 32, 32), torch.randn(64, 64, 3, 3)
    conv_flops = 2 * 16 * 64 * 32 * 32 * 64 * 9
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    with torch.no_grad():
        return {
            "conv": _rate(lambda: torch.nn.functional.conv2d(x, w, padding=1), conv_flops),
            "mm": _rate(lambda: a @ b, 2 * 1024**3),
        }


class _Flops(TorchDispatchMode):
    """FLOPs per op, with torch.utils.flop_counter's formulas. (FlopCounterMode itself tracks
    modules with backward hooks, which R1's autograd.grad inside the step does not support.)"""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, float] = {"conv": 0.0, "mm": 0.0, "other": 0.0}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func.overloadpacket)
        if formula is not None:

            def shape(t: Any) -> Any:
                return t.shape if isinstance(t, torch.Tensor) else t

            n = formula(*tree_map(shape, args), **tree_map(shape, kwargs), out_val=tree_map(shape, out))
            op = func.overloadpacket.__name__
            self.counts["conv" if op in CONV_OPS else "mm" if op in MM_OPS else "other"] += float(n)
        return out


def iteration_flops(step: Callable[[], Any]) -> dict[str, float]:
    """FLOPs of one call of ``step`` by kind: convolutions, matrix products, the rest."""
    with _Flops() as counter:
        step()
    return counter.counts


def trainer(preset: str, overrides: list[str], run_dir: Any) -> Callable[[], None]:
    from fastot.config import load_config
    from fastot.train.run import Run

    run = Run(load_config(preset, ["device=cpu", "train.progress=false", *overrides]), run_dir)
    iteration = iter(range(10**9))
    return lambda: run.iteration(next(iteration))


def interleaved(steps: dict[str, Callable[[], None]], blocks: int, block: int) -> dict[str, float]:
    """Median seconds per call of each step, timed in alternating blocks so both see the same machine."""
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for rep in range(blocks + 1):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(block):
                step()
            if rep:  # the first block is the warm-up
                seconds[name].append((time.perf_counter() - start) / block)
    return {name: statistics.median(s) for name, s in seconds.items()}


def _floor(flops: dict[str, float], rates: dict[str, float]) -> float:
    return flops["conv"] / rates["conv"] + flops["mm"] / rates["mm"]


def test_toy_iteration_batched_calls(benchmark: Any, tmp_path: Any) -> None:
    benchmark.group = "trainer iteration uotm-outlier-1d, batched calls vs separate, threads=1"
    with num_threads(1):
        steps = {
            b: trainer("uotm-outlier-1d", [f"algorithm.batched_calls={b}"], tmp_path / b)
            for b in ("false", "true")
        }
        flops = iteration_flops(steps["true"])
        rates = machine_rates()
        if benchmark.disabled:
            benchmark(steps["true"])
            median = {"false": float("nan"), "true": float("nan")}
        else:
            median = interleaved(steps, blocks=10, block=10)
            benchmark.pedantic(steps["true"], rounds=3, iterations=1)
    floor = _floor(flops, rates)
    meta = {
        "kind": "step_floor",
        "op": "trainer_iteration uotm-outlier-1d",
        "provider": "batched",
        "threads": 1,
    }
    meta |= {"shape": "B=256 d=1 k_v=5", "separate_s": median["false"], "batched_s": median["true"]}
    meta |= {"flops": sum(flops.values()), "floor_s": floor, "mm_gflops": rates["mm"] / 1e9}
    record(benchmark, meta, None)


# (preset, batch, threads): digits-uotm as the digits experiments train it.
LAZY_R1_EVERY = 4  # lazy R1 is timed over whole cycles of this many iterations
IMAGE_CASES = [("digits-uotm", 64, 1), ("cifar10-uotm", 2, 2), ("celebahq256-uotm", 2, 2)]
VARIANTS = {
    "default": [],
    "channels_last": ["train.channels_last=true"],
    "compile": ["train.compile=true"],
    "lazy_r1": [f"algorithm.r1_every={LAZY_R1_EVERY}"],
}


def _image_overrides(preset: str, batch: int) -> list[str]:
    if preset.startswith("digits"):
        return [f"train.batch_size={batch}"]
    size = 32 if preset.startswith("cifar10") else 256
    return [f"train.batch_size={batch}", f"data.target={{name: gaussian_image, channels: 3, size: {size}}}"]


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize(("preset", "batch", "threads"), IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES])
def test_image_iteration_floor(
    benchmark: Any, preset: str, batch: int, threads: int, variant: str, tmp_path: Any
) -> None:
    if variant != "default" and preset != "digits-uotm":
        pytest.skip("the variants are timed on the preset the experiments train")
    benchmark.group = f"trainer iteration {preset} B={batch} threads={threads}"
    with num_threads(threads):
        step = trainer(preset, [*_image_overrides(preset, batch), *VARIANTS[variant]], tmp_path)
        step()  # optimiser state, compilation
        flops = iteration_flops(step) if variant == "default" else {"conv": 0.0, "mm": 0.0, "other": 0.0}
        rates = machine_rates()
        if benchmark.disabled:
            benchmark(step)
        else:
            cycle = LAZY_R1_EVERY if variant == "lazy_r1" else 1
            benchmark.pedantic(step, rounds=3 if preset.startswith("digits") else 1, iterations=cycle)
    meta = {
        "kind": "step_floor",
        "op": f"trainer_iteration {preset}",
        "provider": variant,
        "threads": threads,
    }
    meta |= {"shape": f"B={batch}", "flops": sum(flops.values()), "conv_flops": flops["conv"]}
    meta |= {"mm_flops": flops["mm"], "floor_s": _floor(flops, rates)}
    meta |= {"conv_gflops": rates["conv"] / 1e9, "mm_gflops": rates["mm"] / 1e9}
    record(benchmark, meta, None)
