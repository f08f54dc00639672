"""The training loop. Reads top to bottom: build, (resume), iterate, checkpoint, evaluate, plot.

Every algorithm goes through the same calls: ``begin_iteration`` (schedules and phases), ``k_v``
potential updates, ``k_t`` map updates, EMA. Randomness during training comes from one
``torch.Generator`` whose state is checkpointed with everything else, so a resumed run repeats an
uninterrupted one bit for bit on CPU.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from fastot.algorithms import StepContext, build_algorithm
from fastot.data import build_sampler
from fastot.nn import build_map, build_potential
from fastot.train import checkpoint as ckpt
from fastot.train.config import to_container
from fastot.train.ema import EMA
from fastot.train.errors import ConfigError, DivergenceError
from fastot.train.evaluate import check_metrics, compute_metrics, generate

OPTIMIZERS = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop, "sgd": torch.optim.SGD}


def build_optimizer(params, spec: dict[str, Any], key: str) -> torch.optim.Optimizer:
    spec = dict(spec)
    name = spec.pop("name")
    if name not in OPTIMIZERS:
        raise ConfigError(f"{key}.name", f"unknown optimizer {name!r}; choose from {sorted(OPTIMIZERS)}")
    if "betas" in spec:
        spec["betas"] = tuple(spec["betas"])
    try:
        return OPTIMIZERS[name](params, **spec)
    except TypeError as e:
        raise ConfigError(key, str(e)) from None


class Run:
    """Everything a run holds; built from a resolved config."""

    def __init__(self, cfg: DictConfig, run_dir: Path) -> None:
        self.cfg, self.run_dir = cfg, run_dir
        if cfg.train.threads:
            torch.set_num_threads(int(cfg.train.threads))
        self.device = torch.device(cfg.device)
        torch.manual_seed(cfg.seed)  # network initialisation
        self.source = build_sampler(to_container(cfg, "data.source"), "data.source")
        self.target = build_sampler(to_container(cfg, "data.target"), "data.target")
        implied = {"dim": self.target.dim} if hasattr(self.target, "dim") else {}  # vector data
        self.map = build_map(to_container(cfg, "networks.map"), **implied).to(self.device)
        self.potential = build_potential(to_container(cfg, "networks.potential"), **implied).to(self.device)
        self.algo = build_algorithm(to_container(cfg, "algorithm"))
        self.opt_map = build_optimizer(self.map.parameters(), to_container(cfg, "optim.map"), "optim.map")
        self.opt_pot = build_optimizer(
            self.potential.parameters(), to_container(cfg, "optim.potential"), "optim.potential"
        )
        self.base_lr = (self.opt_map.param_groups[0]["lr"], self.opt_pot.param_groups[0]["lr"])
        iters = cfg.train.iterations
        self.total = iters if iters is not None else self.algo.default_iterations()
        if self.total is None:
            raise ConfigError("train.iterations", "required for this algorithm")
        self.ema = EMA(self.map, cfg.train.ema.decay) if cfg.train.ema.enabled else None
        self.generator = torch.Generator().manual_seed(cfg.seed + 1)  # the training stream
        self.ctx = StepContext(
            self.map,
            self.potential,
            self.source,
            self.target,
            cfg.train.batch_size,
            self.generator,
            self.device,
        )
        check_metrics(list(cfg.eval.metrics))
        self.step = 0
        self.elapsed = 0.0
        self.window: dict[str, list[float]] = {}  # losses since the last log row (checkpointed)
        self.last_ckpt: Path | None = None

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": 1,
            "step": self.step,
            "elapsed": self.elapsed,
            "map": self.map.state_dict(),
            "potential": self.potential.state_dict(),
            "optim_map": self.opt_map.state_dict(),
            "optim_potential": self.opt_pot.state_dict(),
            "ema": None if self.ema is None else self.ema.state_dict(),
            "algorithm": self.algo.state_dict(),
            "rng": {"generator": self.generator.get_state(), "torch": torch.get_rng_state()},
            "log_window": {k: list(v) for k, v in self.window.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step, self.elapsed = int(state["step"]), float(state["elapsed"])
        self.map.load_state_dict(state["map"])
        self.potential.load_state_dict(state["potential"])
        self.opt_map.load_state_dict(state["optim_map"])
        self.opt_pot.load_state_dict(state["optim_potential"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.algo.load_state_dict(state["algorithm"], self.ctx)
        self.generator.set_state(state["rng"]["generator"])
        torch.set_rng_state(state["rng"]["torch"])
        self.window = {k: list(v) for k, v in state.get("log_window", {}).items()}

    def save_checkpoint(self) -> None:
        path = ckpt.checkpoint_path(self.run_dir, self.step)
        ckpt.save_atomic(self.state_dict(), path)
        ckpt.prune(self.run_dir, self.cfg.train.keep_checkpoints)
        self.last_ckpt = path

    @property
    def sampling_map(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.map

    # ------------------------------------------------------------------ one iteration
    def _set_lr(self, it: int) -> None:
        if self.cfg.optim.schedule == "constant":
            return
        t = it / max(self.total, 1)
        for opt, base in zip((self.opt_map, self.opt_pot), self.base_lr, strict=True):
            lr = self.cfg.optim.eta_min + 0.5 * (base - self.cfg.optim.eta_min) * (1 + math.cos(math.pi * t))
            for group in opt.param_groups:
                group["lr"] = lr

    def _check(self, it: int, name: str, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss):
            last = str(self.last_ckpt) if self.last_ckpt else None
            raise DivergenceError(it, name, float(loss.detach()), last)

    def iteration(self, it: int) -> dict[str, float]:
        self._set_lr(it)
        algo, ctx = self.algo, self.ctx
        algo.begin_iteration(it, self.total, ctx)
        logs: dict[str, float] = {}
        self.potential.requires_grad_(True)
        for _ in range(algo.k_v):
            loss, logs_v = algo.potential_loss(ctx)
            self._check(it, "potential loss", loss)
            self.opt_pot.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_pot.step()
            algo.after_potential_step(ctx)
        logs.update(logs_v)
        self.potential.requires_grad_(False)  # the map step needs no potential weight gradients
        for _ in range(algo.k_t):
            loss, logs_t = algo.map_loss(ctx)
            self._check(it, "map loss", loss)
            self.opt_map.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_map.step()
        self.potential.requires_grad_(True)
        logs.update(logs_t)
        if self.ema is not None:
            self.ema.update(self.map)
        return logs


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step]
    path.write_text("".join(ln + "\n" for ln in keep))


def train(cfg: DictConfig, run_dir: Path, resume: bool = False) -> dict[str, Any]:
    """Train (or continue) the run in ``run_dir``; returns the summary."""
    from tqdm.auto import tqdm

    run_dir.mkdir(parents=True, exist_ok=True)
    run = Run(cfg, run_dir)
    metrics_path = run_dir / "metrics.jsonl"
    if resume:
        path = ckpt.latest_checkpoint(run_dir)
        if path is None:
            raise ConfigError("resume", f"no checkpoint in {run_dir / 'checkpoints'}")
        run.load_state_dict(ckpt.load(path))
        run.last_ckpt = path
        _truncate_log(metrics_path, run.step)
    else:
        metrics_path.write_text("")
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)  # on resume: with any new overrides

    t0 = time.perf_counter() - run.elapsed
    window = run.window
    bar = tqdm(
        total=run.total,
        initial=run.step,
        disable=not cfg.train.progress,
        dynamic_ncols=True,
        desc=f"{cfg.algorithm.name}",
    )
    with metrics_path.open("a") as log:
        for it in range(run.step, run.total):
            logs = run.iteration(it)
            run.step = it + 1
            run.elapsed = time.perf_counter() - t0
            for k, v in logs.items():
                window.setdefault(k, []).append(v)
            label = run.algo.snapshot_due(it)
            if label is not None:
                _snapshot(run, label)
            eval_due = bool(cfg.eval.every) and run.step % cfg.eval.every == 0
            if run.step % cfg.train.log_every == 0 or run.step == run.total or eval_due:
                # losses are averaged over the logging window; schedule/phase values are current
                row = {
                    "step": run.step,
                    **{k: float(np.mean(v)) for k, v in window.items()},
                    **run.algo.log_values(),
                    "wall_time": round(run.elapsed, 3),
                }
                if eval_due:
                    x, y = generate(run.sampling_map, run.source, cfg.eval.eval_n, cfg.eval.seed)
                    row.update(
                        compute_metrics(
                            list(cfg.eval.metrics),
                            x,
                            y,
                            run.target,
                            cfg.eval.seed,
                            cfg.eval.ou_time,
                            cfg.eval.mode_radius,
                        )
                    )
                log.write(json.dumps(row) + "\n")
                log.flush()
                window.clear()
                bar.set_postfix({k: f"{row[k]:.3g}" for k in ("loss_v", "loss_T") if k in row})
            if run.step % cfg.train.ckpt_every == 0 or run.step == run.total:
                run.save_checkpoint()
            bar.update(1)
    bar.close()
    if run.last_ckpt is None or ckpt.latest_checkpoint(run_dir) is None:
        run.save_checkpoint()
    return finish(run, run.elapsed, t0)


def _snapshot(run: Run, label: str) -> None:
    x, y = generate(run.sampling_map, run.source, run.cfg.eval.snapshot_samples, run.cfg.eval.seed)
    out = run.run_dir / "snapshots"
    out.mkdir(exist_ok=True)
    np.savez(out / f"{run.step:08d}.npz", x=x.numpy(), y=y.numpy(), label=np.array(label))


def finish(run: Run, train_time: float, t0: float) -> dict[str, Any]:
    cfg = run.cfg
    x, y = generate(run.sampling_map, run.source, cfg.eval.n_samples, cfg.eval.seed)
    np.savez(run.run_dir / "samples.npz", x=x.numpy(), y=y.numpy())
    results = compute_metrics(
        list(cfg.eval.metrics), x, y, run.target, cfg.eval.seed, cfg.eval.ou_time, cfg.eval.mode_radius
    )
    if cfg.eval.plots:
        ref = run.target.sample(len(y), torch.Generator().manual_seed(cfg.eval.seed + 1))
        from fastot.train.plots import plot_run

        plot_run(run.run_dir, x.numpy(), y.numpy(), ref.numpy())
    summary = {
        "preset_algorithm": cfg.algorithm.name,
        "steps": run.step,
        "metrics": results,
        "train_wall_time_s": round(train_time, 3),
        "wall_time_s": round(time.perf_counter() - t0, 3),
        "checkpoint": str(run.last_ckpt) if run.last_ckpt else None,
        "ema": run.ema is not None,
    }
    (run.run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
