"""Trainer runtime: mixed precision, R1 under loss scaling, gradient clipping, several processes."""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from fastot.algorithms import StepContext, build_algorithm
from fastot.config import load_config, smoke
from fastot.data.toy import Gaussian
from fastot.nn.toy import MLPPotential, UOTMToyMap
from fastot.rundir import load_checkpoint
from fastot.train import checkpoint as ckpt
from fastot.train import runtime
from fastot.train.errors import ConfigError
from fastot.train.images import grid_array
from fastot.train.loop import train
from fastot.train.run import Run

FAST = ["train.progress=false", "train.threads=1", "eval.n_samples=200", "eval.plots=false"]


def _cfg(*extra: str, iterations: int = 4):
    return load_config(
        "uotm-outlier-1d", [*FAST, f"train.iterations={iterations}", "train.batch_size=32", *extra]
    )


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_runs_and_keeps_float32_weights(amp, tmp_path):
    summary = train(_cfg(f"train.amp={amp}"), tmp_path)
    assert summary["steps"] == 4
    state = load_checkpoint(ckpt.latest_checkpoint(tmp_path))
    assert all(t.dtype == torch.float32 for t in state["map"].values())
    if amp == "fp16":
        assert state["precision"]["potential"]["scale"] > 0  # the scaler state is checkpointed


@pytest.mark.parametrize("scale", [2.0**16, torch.tensor(2.0**16)], ids=["float", "device-tensor"])
def test_r1_under_loss_scaling_equals_unscaled(scale):
    torch.manual_seed(0)
    pot = MLPPotential(dim=3)
    algo = build_algorithm({"name": "otm", "reg_weight": 0.7})
    ctx = StepContext(UOTMToyMap(dim=3), pot, Gaussian(3), Gaussian(3), 16, torch.Generator().manual_seed(0))
    y = torch.randn(16, 3, requires_grad=True)
    ref = algo.regularization(ctx, y, pot(y), y)
    ctx.loss_scale = scale
    y2 = y.detach().clone().requires_grad_(True)
    scaled = algo.regularization(ctx, y2, pot(y2), y2)
    torch.testing.assert_close(scaled, ref)


def test_gradient_clipping_bounds_the_update(tmp_path):
    cfg = _cfg("train.grad_clip=1e-2")
    cfg.optim.map = {"name": "sgd", "lr": 1.0}
    run = Run(cfg, tmp_path)
    before = [p.detach().clone() for p in run.map.parameters()]
    run.iteration(0)
    step = torch.cat([(p.detach() - b).flatten() for p, b in zip(run.map.parameters(), before, strict=True)])
    assert 0 < step.norm() <= 1e-2 * 1.01  # SGD with lr 1: the step is the clipped gradient


@pytest.mark.parametrize(
    "key,value", [("train.amp", "fp8"), ("train.grad_clip", "-1"), ("train.sample_grid", "0")]
)
def test_bad_runtime_config_names_the_key(key, value):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        _cfg(f"{key}={value}")


def test_image_grid_layout_and_range():
    imgs = torch.linspace(-1, 1, 5 * 3 * 4 * 4).reshape(5, 3, 4, 4)
    grid = grid_array(imgs, nrow=3, pad=1)
    assert grid.shape == (2 * 5 + 1, 3 * 5 + 1, 3) and grid.dtype.name == "uint8"
    assert grid[1, 1, 0] == 0 and grid[1 + 5 + 3, 1 + 5 + 3, 2] == 255  # first value -1, last +1
    with pytest.raises(ValueError, match="images"):
        grid_array(torch.zeros(2, 2, 4, 4))


# --------------------------------------------------------------------------- several processes
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, run_dir: str, overrides: list[str], mode: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    import torch.distributed as dist

    try:
        cfg = load_config("uotm-outlier-1d", overrides)
        if mode == "train":
            train(cfg, Path(run_dir))
        else:  # lockstep: each rank keeps its own weights after a few iterations
            run = Run(cfg, Path(run_dir))
            for it in range(3):
                run.iteration(it)
            torch.save(run.map.state_dict(), Path(run_dir) / f"rank{rank}.pt")
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _spawn(world: int, run_dir: Path, overrides: list[str], mode: str) -> None:
    args = (world, _free_port(), str(run_dir), overrides, mode)
    mp.start_processes(_worker, args=args, nprocs=world, start_method="spawn")


OVERRIDES = [
    *FAST,
    "train.iterations=3",
    "train.batch_size=16",
    "train.ckpt_every=3",
    "algorithm.regularizer=r1",
]


def test_two_processes_average_gradients_in_lockstep(tmp_path):
    _spawn(2, tmp_path, OVERRIDES, "lockstep")
    w0, w1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert w0.keys() == w1.keys()
    for k in w0:  # different batches per rank, the same averaged gradients: identical weights
        torch.testing.assert_close(w0[k], w1[k], atol=0, rtol=0)
    single = Run(load_config("uotm-outlier-1d", OVERRIDES), tmp_path / "single")
    for it in range(3):
        single.iteration(it)
    assert any(not torch.equal(v, w0[k]) for k, v in single.map.state_dict().items())


def test_only_rank_zero_writes_and_resume_with_another_world_size(tmp_path):
    _spawn(2, tmp_path, OVERRIDES, "train")
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["ckpt_00000003.pt"]
    assert (tmp_path / "summary.json").exists()
    rows = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 1  # one writer: rank 1 added nothing
    state = load_checkpoint(tmp_path / "checkpoints" / "ckpt_00000003.pt")
    assert len(state["rng_ranks"]) == 2 and not torch.equal(state["rng_ranks"][0], state["rng_ranks"][1])
    # The two-process run continues in one process.
    cfg = load_config(None, ["train.iterations=5"], path=tmp_path / "config.yaml")
    assert train(cfg, tmp_path, resume=True)["steps"] == 5


def test_dry_run_prints_config_and_parameter_counts(capsys):
    from fastot.train.__main__ import main

    assert main(["--preset", "uotm-outlier-1d", "--dry-run", "seed=3"]) == 0
    out = capsys.readouterr().out
    assert "seed: 3" in out and "networks.map: UOTMToyMap" in out and "parameters" in out


class _Fixed:
    """A sampler that always returns the same batch (its rows for this rank)."""

    def __init__(self, data: torch.Tensor) -> None:
        self.data, self.dim = data, data.shape[1]

    def sample(self, n, generator=None):
        assert n == len(self.data)
        return self.data.clone()


# R1 on (the preset itself has none, as in the paper), so that its gradient average is covered too.
HALVES = [
    *FAST,
    "networks.map.z_dim=0",
    "algorithm.regularizer=r1",
    "algorithm.reg_weight=0.5",
    "train.ema.enabled=false",
]


def _two_iterations(x: torch.Tensor, y: torch.Tensor, run_dir: Path) -> dict[str, torch.Tensor]:
    """Map and potential weights after two UOTM iterations (5 potential + 1 map step each, R1)
    that always see the batch (x, y)."""
    cfg = load_config("uotm-outlier-1d", [*HALVES, f"train.batch_size={len(x)}"])
    # SGD: unlike Adam, its step is proportional to the gradient, so a mis-scaled average shows.
    cfg.optim.map, cfg.optim.potential = {"name": "sgd", "lr": 0.05}, {"name": "sgd", "lr": 0.05}
    run = Run(cfg, run_dir)
    run.ctx.source, run.ctx.target = _Fixed(x), _Fixed(y)
    for it in range(2):
        run.iteration(it)
    return {f"map.{k}": v for k, v in run.map.state_dict().items()} | {
        f"potential.{k}": v for k, v in run.potential.state_dict().items()
    }


def _global_batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(42)
    return torch.randn(8, 1, generator=g), 2 + torch.randn(8, 1, generator=g)


def _half_batch_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    import torch.distributed as dist

    try:
        x, y = _global_batch()
        half = slice(4 * rank, 4 * rank + 4)
        weights = _two_iterations(x[half], y[half], Path(out) / f"run{rank}")
        torch.save(weights, Path(out) / f"weights{rank}.pt")
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_two_processes_equal_one_process_on_the_concatenated_batch(tmp_path):
    mp.start_processes(
        _half_batch_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, start_method="spawn"
    )
    full = _two_iterations(*_global_batch(), tmp_path / "single")
    initial = Run(load_config("uotm-outlier-1d", HALVES), tmp_path / "init").potential.state_dict()
    assert all(not torch.equal(full[f"potential.{k}"], v) for k, v in initial.items())  # it trained
    for rank in range(2):
        weights = torch.load(tmp_path / f"weights{rank}.pt")
        assert weights.keys() == full.keys()
        for k, v in full.items():
            torch.testing.assert_close(weights[k], v, rtol=1e-4, atol=1e-6, msg=k)


def test_periodic_fid_samples_and_tensorboard_are_logged(tmp_path, monkeypatch):
    from fastot.eval import fid

    def stand_in(weights=None, device="cpu"):  # mean and spread of each image: a 2-d feature
        return lambda x: torch.stack([x.flatten(1).mean(1), x.flatten(1).std(1)], 1).double()

    monkeypatch.setattr(fid, "inception_extractor", stand_in)
    ref = tmp_path / "ref.npz"
    fid.save_stats(ref, np.zeros(2), np.eye(2))
    cfg = load_config(
        "digits-uotm",
        [
            *FAST,
            "train.iterations=2",
            "train.batch_size=4",
            "device=cpu",
            "eval.fid_every=1",
            f"eval.fid_ref={ref}",
            "eval.fid_n=8",
            "train.sample_every=2",
            "train.log_every=1",
            "train.tensorboard=true",
        ],
    )
    train(smoke(cfg), tmp_path / "run")
    rows = [json.loads(r) for r in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    fids = [r["fid"] for r in rows if "fid" in r]
    assert len(fids) == 2 and all(np.isfinite(f) and f > 0 for f in fids)
    assert (tmp_path / "run" / "samples" / "00000002.png").exists()
    # TensorBoard holds the same scalars at the same steps, and the sample grid.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "run" / "tensorboard")).Reload()
    fid_rows = [r for r in rows if "fid" in r]
    assert [e.step for e in events.Scalars("fid")] == [r["step"] for r in fid_rows]
    assert [e.value for e in events.Scalars("fid")] == pytest.approx([r["fid"] for r in fid_rows])
    assert [e.step for e in events.Scalars("loss_v")] == [r["step"] for r in rows if "loss_v" in r]
    (image,) = events.Images("samples")
    assert image.step == 2 and image.width > 0
    with pytest.raises(ConfigError, match=r"eval\.fid_ref"):
        load_config("digits-uotm", ["eval.fid_every=10"])


def test_image_run_resumes_exactly(tmp_path):
    """The image stream's position is checkpointed: 2 + 2 resumed steps equal 4 straight ones."""
    ov = [
        *FAST,
        "train.batch_size=4",
        "device=cpu",
        "train.ckpt_every=2",
        "data.target.flip=true",
        "data.target.seed=7",
    ]
    straight = tmp_path / "straight"
    train(smoke(load_config("digits-uotm", [*ov, "train.iterations=4"])), straight)
    split = tmp_path / "split"
    train(smoke(load_config("digits-uotm", [*ov, "train.iterations=2"])), split)
    cfg = load_config(None, ["train.iterations=4"], path=split / "config.yaml")
    train(cfg, split, resume=True)
    a = load_checkpoint(ckpt.latest_checkpoint(straight))
    b = load_checkpoint(ckpt.latest_checkpoint(split))
    assert a["data"]["target"]["consumed"] == b["data"]["target"]["consumed"] == 4 * 4  # one draw per step
    for k in a["map"]:
        torch.testing.assert_close(a["map"][k], b["map"][k], atol=0, rtol=0)
    for k in a["potential"]:
        torch.testing.assert_close(a["potential"][k], b["potential"][k], atol=0, rtol=0)


def _weights(run: Run) -> dict[str, torch.Tensor]:
    return {f"map.{k}": v for k, v in run.map.state_dict().items()} | {
        f"potential.{k}": v for k, v in run.potential.state_dict().items()
    }


@pytest.mark.parametrize("preset", ["otm-outlier-1d", "unified-wgan-gp-8g"])  # R1 / gradient penalty
def test_compiled_networks_train_like_eager_ones(preset, tmp_path):
    # R1 and the gradient penalty differentiate the potential twice, which compiled graphs cannot:
    # the trainer must route them through the uncompiled network and compile the rest.
    overrides = [*FAST, "train.iterations=2", "train.batch_size=16", "train.ema.enabled=false"]
    runs = {}
    for compiled in (False, True):
        run = Run(load_config(preset, [*overrides, f"train.compile={compiled}"]), tmp_path / str(compiled))
        for it in range(2):
            run.iteration(it)
        runs[compiled] = _weights(run)
    for k, v in runs[False].items():
        torch.testing.assert_close(runs[True][k], v, rtol=1e-4, atol=1e-5, msg=k)


def test_several_processes_agree_on_a_stop_every_few_steps_only(monkeypatch):
    # Agreeing is an all-reduce and a host sync: ranks do it at the same steps, every POLL_EVERY.
    collectives = []
    monkeypatch.setattr(runtime, "world_size", lambda: 2)
    monkeypatch.setattr(runtime.dist, "all_reduce", lambda t, op=None: collectives.append(int(t)))
    stop = runtime.GracefulStop()
    stop.signum = signal.SIGTERM  # a signal arrived on this rank
    every = runtime.GracefulStop.POLL_EVERY
    agreed = [step for step in range(1, 3 * every + 1) if stop.requested(torch.device("cpu"), step)]
    assert agreed == [every, 2 * every, 3 * every] and collectives == [1, 1, 1]
    assert stop.requested(torch.device("cpu")) and len(collectives) == 4  # no step: agree now
    monkeypatch.setattr(runtime, "world_size", lambda: 1)  # one process: its own flag, every step
    assert all(stop.requested(torch.device("cpu"), step) for step in range(1, every))
    assert len(collectives) == 4
