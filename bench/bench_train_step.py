"""End to end: one UOTM training step on toy 2-D data with small MLPs, fused vs eager fastot ops;
and the image presets' steps (on a GPU at their training batches, through the trainer).

At this size the networks are cheap, so per-op overhead (validation, dispatch, autograd nodes,
the number of small kernels) is what the fused ops save. One step = one potential update (semi-dual
loss with Psi* = kl on both sides, quadratic cost, R1 through the double backward) and one map
update (cost - v(T(x, z))), each with its Adam step.

The same step also runs while another process spins on one core, at 1 and 2 intra-op threads: the
situation the trainer's default of one thread for vector data is for.

On a GPU the toy step is launch-bound, so it is also timed as one replayed CUDA graph; the image
steps run the trainer's own iteration (``Run.iteration``) of cifar10-uotm at B = 64 and
celebahq256-uotm at B = 8, with eager ops, fused ops, fused ops under bf16 autocast and
``train.compile=step``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from _env import DEVICE, THREADS, fused_providers, num_threads, synchronize
from _timing import record, time_callable
from torch import nn

import fastot

BATCH = 256
DIM = 2
NOISE = 2
HIDDEN = 128
TAU = 1e-3


def mlp(d_in: int, d_out: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(d_in, HIDDEN), nn.SiLU(), nn.Linear(HIDDEN, HIDDEN), nn.SiLU(), nn.Linear(HIDDEN, d_out)
    )


def uotm_step(backend: str, graphable: bool = False) -> Any:
    """A zero-argument callable running one UOTM step on ``DEVICE`` with every fastot op on
    ``backend``. ``graphable``: CUDA-graph-safe pieces (the default generator, capturable Adam)."""
    g = None if graphable else torch.Generator(DEVICE).manual_seed(0)
    T, v = mlp(DIM + NOISE, DIM).to(DEVICE), mlp(DIM, 1).to(DEVICE)
    adam = {"lr": 1e-4, "betas": (0.0, 0.9), **({"capturable": True} if graphable else {})}
    opt_t = torch.optim.Adam(T.parameters(), **adam)
    opt_v = torch.optim.Adam(v.parameters(), **adam)
    centers = torch.tensor([[4.0, 0.0], [0.0, 4.0], [-4.0, 0.0], [0.0, -4.0]], device=DEVICE)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=g, device=DEVICE)

    def step() -> None:
        x = randn(BATCH, DIM)
        pick = torch.randint(0, 4, (BATCH,), generator=g, device=DEVICE)
        y = centers[pick] + 0.5 * randn(BATCH, DIM)
        with fastot.use_backend(backend):
            # potential step
            y_fake = T(torch.cat([x, randn(BATCH, NOISE)], 1)).detach()
            cost = fastot.quadratic_cost(x, y_fake, TAU)
            loss_v = fastot.semi_dual_loss(cost, v(y_fake).squeeze(1), v(y).squeeze(1), "kl", "kl")
            loss_v = loss_v + fastot.r1_regularizer(v, y, 0.2)
            opt_v.zero_grad(set_to_none=True)
            loss_v.backward()
            opt_v.step()
            # map step: the cost needs the gradient for T(x) only
            y_fake = T(torch.cat([x, randn(BATCH, NOISE)], 1))
            loss_t = (fastot.quadratic_cost(x, y_fake, TAU) - v(y_fake).squeeze(1)).mean()
            opt_t.zero_grad(set_to_none=True)
            loss_t.backward()
            opt_t.step()

    return step


@pytest.mark.parametrize("threads", THREADS, ids=lambda t: f"t{t}")
@pytest.mark.parametrize("provider", ["eager", *fused_providers()])
def test_uotm_toy_step(benchmark: Any, provider: str, threads: int) -> None:
    _time_uotm_step(benchmark, provider, threads)


@pytest.mark.parametrize("threads", THREADS, ids=lambda t: f"t{t}")
@pytest.mark.parametrize("provider", fused_providers())
def test_uotm_toy_step_interleaved(benchmark: Any, provider: str, threads: int) -> None:
    """The eager and the fused step in alternating blocks of ``block`` steps, so both see the same
    machine. The step is the networks' time and the two differ by a few percent, less than this
    machine drifts between two tests timed one after the other: the fused >= eager target reads
    this case (the ratio of the two providers' median block times)."""
    benchmark.group = f"train_step uotm toy B={BATCH} MLP {HIDDEN} eager/fused interleaved threads={threads}"
    block = 5
    with num_threads(threads):
        steps = {"eager": uotm_step("eager"), provider: uotm_step(provider)}
        seconds: dict[str, list[float]] = {name: [] for name in steps}

        def both() -> None:
            for name, step in steps.items():
                start = time.perf_counter()
                for _ in range(block):
                    step()
                seconds[name].append((time.perf_counter() - start) / block)

        for _ in range(3):  # warm-up
            both()
        for times in seconds.values():
            times.clear()
        if benchmark.disabled:
            benchmark(both)
        else:
            benchmark.pedantic(both, rounds=40, iterations=1, warmup_rounds=0)
    eager, fused = (statistics.median(seconds[name]) for name in steps)
    meta = {"kind": "train_interleaved", "op": "uotm_step", "provider": provider, "threads": threads}
    meta |= {"shape": f"B={BATCH} d={DIM} MLP {HIDDEN}", "eager_s": eager, "fused_s": fused}
    record(benchmark, meta, None)


def _time_uotm_step(benchmark: Any, provider: str, threads: int, competing: str | None = None) -> None:
    busy = "" if competing is None else ", one core busy"
    benchmark.group = f"train_step uotm toy B={BATCH} MLP {HIDDEN}{busy} threads={threads}"
    with num_threads(threads):
        step = uotm_step(provider)
        time_callable(benchmark, step, warmup_rounds=3)
    meta = {"kind": "train", "op": f"uotm_step{busy}", "provider": provider, "threads": threads}
    meta["shape"] = f"B={BATCH} d={DIM} MLP {HIDDEN}"
    if competing is not None:
        meta["competing"] = competing
    record(benchmark, meta, None)


@pytest.fixture
def busy_core() -> Iterator[str]:
    """A process spinning on one CPU (pinned to the last one this process may use) for the length
    of a test, as a second job on the machine would; killed afterwards. Yields its description."""
    cpus = (
        sorted(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else list(range(os.cpu_count() or 1))
    )
    if len(cpus) < 2:
        pytest.skip("needs two CPUs: one for the busy process, one at least for the step")
    spin = "print(flush=True)\nwhile True:\n    pass"
    proc = subprocess.Popen([sys.executable, "-c", spin], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # it is spinning from here on
        where = "another process spinning"
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(proc.pid, {cpus[-1]})
            where += f" on CPU {cpus[-1]}"
        yield where
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("threads", THREADS, ids=lambda t: f"t{t}")
@pytest.mark.parametrize("provider", ["eager", *fused_providers()])
def test_uotm_toy_step_with_a_busy_core(benchmark: Any, provider: str, threads: int, busy_core: str) -> None:
    """:func:`test_uotm_toy_step` while another process holds one core. With 2 threads one of
    them shares that core, and every parallel region of the step waits for it."""
    _time_uotm_step(benchmark, provider, threads, busy_core)


def cuda_graph(step: Any) -> Any:
    """``step`` captured once as a CUDA graph (after warm-up on a side stream); returns its replay."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):  # the optimisers create their state outside the capture
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


@pytest.mark.skipif(DEVICE.type != "cuda", reason="CUDA graphs need a CUDA device")
@pytest.mark.parametrize("provider", ["eager", *fused_providers()])
def test_uotm_toy_step_cuda_graph(benchmark: Any, provider: str) -> None:
    """The toy step launches some 200 small kernels: replayed as one graph, the launches go."""
    benchmark.group = f"train_step uotm toy B={BATCH} MLP {HIDDEN} CUDA graph"
    replay = cuda_graph(uotm_step(provider, graphable=True))

    def step() -> None:
        replay()
        synchronize()

    time_callable(benchmark, step, warmup_rounds=3)
    meta = {"kind": "train", "op": "uotm_step, CUDA graph", "provider": provider, "threads": 1}
    record(benchmark, meta | {"shape": f"B={BATCH} d={DIM} MLP {HIDDEN}"}, None)


# The networks and losses of the image presets: (map, potential, image size, tau, R1 weight).
IMAGE_PRESETS = {
    "cifar10-uotm": ("ncsnpp32", "disc32", 32, 1e-3, 0.2),
    "celebahq256-uotm": ("ncsnpp256", "disc256", 256, 1e-5, 5.0),
}


def image_step(preset: str, backend: str) -> Any:
    """One UOTM iteration (potential update with R1, then map update) of ``preset``'s networks and
    losses at batch 2, every fastot op on ``backend``."""
    from fastot.algorithms import StepContext, build_algorithm
    from fastot.data.noise import GaussianImage
    from fastot.nn import build_map, build_potential

    map_name, pot_name, size, tau, r1 = IMAGE_PRESETS[preset]
    torch.manual_seed(0)
    T = build_map({"name": map_name})
    v = build_potential({"name": pot_name})
    algo = build_algorithm({"name": "uotm", "tau": tau, "reg_weight": r1})
    images = GaussianImage(channels=3, size=size)  # the target's content does not change the cost of a step
    ctx = StepContext(T, v, images, images, 2, torch.Generator().manual_seed(0))
    opt_t = torch.optim.Adam(T.parameters(), lr=2e-4, betas=(0.5, 0.9))
    opt_v = torch.optim.Adam(v.parameters(), lr=1e-4, betas=(0.5, 0.9))

    def step() -> None:
        with fastot.use_backend(backend):
            loss_v, _ = algo.potential_loss(ctx)
            opt_v.zero_grad(set_to_none=True)
            loss_v.backward()
            opt_v.step()
            v.requires_grad_(False)
            loss_t, _ = algo.map_loss(ctx)
            opt_t.zero_grad(set_to_none=True)
            loss_t.backward()
            opt_t.step()
            v.requires_grad_(True)

    return step


@pytest.mark.skipif(DEVICE.type != "cpu", reason="on a GPU the trainer's step runs at the presets' batches")
@pytest.mark.parametrize("provider", ["eager", *fused_providers()])
@pytest.mark.parametrize("preset", sorted(IMAGE_PRESETS))
def test_uotm_image_step(benchmark: Any, preset: str, provider: str) -> None:
    benchmark.group = f"train_step uotm {preset} networks B=2 threads=2"
    with num_threads(2):
        step = image_step(preset, provider)
        if benchmark.disabled:
            benchmark(step)
        else:  # 1-30 s per step on a 2-core CPU: one warm-up step, one timed step
            step()
            benchmark.pedantic(step, rounds=1, iterations=1, warmup_rounds=0)
    record(
        benchmark,
        {
            "kind": "train",
            "op": f"uotm_step {preset}",
            "provider": provider,
            "threads": 2,
            "shape": "B=2 3x{0}x{0} {1} + {2}".format(IMAGE_PRESETS[preset][2], *IMAGE_PRESETS[preset][:2]),
        },
        None,
    )


@pytest.mark.parametrize("phase", [1, 50])
def test_sjko_phase_iteration(benchmark: Any, phase: int, tmp_path: Any) -> None:
    """One S-JKO training iteration (potential + map update) at phase 1 and at phase 50 of the
    sjko-25gaussians preset: T_old is one frozen network, so the time must not grow with k."""
    from fastot.config import load_config
    from fastot.train.run import Run

    overrides = [
        "algorithm.num_phases=51",
        "algorithm.init_iterations=1",
        "algorithm.phase_iterations=1",
        "train.progress=false",
    ]
    run = Run(load_config("sjko-25gaussians", overrides), tmp_path)
    for it in range(phase + 1):  # reach the phase the real way: one iteration per phase
        run.iteration(it)
    assert run.algo.phase == phase
    benchmark.group = "train_step sjko 25-Gaussians B=400 phase 1 vs 50 threads=1"
    with num_threads(1):
        time_callable(benchmark, lambda: run.iteration(phase), warmup_rounds=3)
    record(
        benchmark,
        {
            "kind": "train",
            "op": "sjko_iteration",
            "provider": f"phase{phase}",
            "threads": 1,
            "shape": "B=400 d=2 UOTM toy nets",
        },
        None,
    )


# On a GPU: the presets' training batches, and the ways a run can train them (train.* overrides).
GPU_BATCHES = {"cifar10-uotm": 64, "celebahq256-uotm": 8}
GPU_MODES = {
    "eager ops": ("eager", []),
    "fused ops": ("fused", []),
    "fused ops, bf16": ("fused", ["train.amp=bf16"]),
    "compile=step": ("fused", ["train.compile=step"]),
}


def trainer_step(preset: str, mode: str, run_dir: Any) -> Any:
    """The trainer's iteration of ``preset`` at its GPU batch, on Gaussian images of the preset's
    shape (the data's content does not change the cost of a step)."""
    from fastot.config import load_config
    from fastot.train.run import Run

    size = IMAGE_PRESETS[preset][2]
    backend, extra = GPU_MODES[mode]
    overrides = [
        f"device={DEVICE.type}",
        f"train.batch_size={GPU_BATCHES[preset]}",
        f"data.target={{name: gaussian_image, channels: 3, size: {size}}}",
        "train.progress=false",
        "train.ema.enabled=true",
        *extra,
    ]
    run = Run(load_config(preset, overrides), run_dir)
    backend = run.backend if backend == "fused" else backend
    iteration = iter(range(10**9))

    def step() -> None:
        with fastot.use_backend(backend):
            run.iteration(next(iteration))
        synchronize()

    return step


@pytest.mark.skipif(DEVICE.type != "cuda", reason="the presets' training batches need a GPU")
@pytest.mark.parametrize("mode", list(GPU_MODES))
@pytest.mark.parametrize("preset", sorted(GPU_BATCHES))
def test_trainer_image_step(benchmark: Any, preset: str, mode: str, tmp_path: Any) -> None:
    benchmark.group = f"train_step {preset} B={GPU_BATCHES[preset]} on {DEVICE.type}"
    step = trainer_step(preset, mode, tmp_path)
    time_callable(benchmark, step, warmup_rounds=3)  # compile=step traces in the warm-up
    size = IMAGE_PRESETS[preset][2]
    meta = {"kind": "train", "op": f"trainer_step {preset}", "provider": mode, "threads": 1}
    record(benchmark, meta | {"shape": f"B={GPU_BATCHES[preset]} 3x{size}x{size}"}, None)
