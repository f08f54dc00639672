"""Everything the loop does between steps on a schedule: log rows with their evaluation, FID, sample
grids, snapshots and checkpoints, the progress bar, and rank 0's files they go to."""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import torch

from fastot import rundir
from fastot.sampling import generate
from fastot.train import checkpoint as ckpt
from fastot.train import runtime
from fastot.train.errors import ConfigError
from fastot.train.evaluate import PeriodicFID, compute_metrics
from fastot.train.report import route_warnings, start_block
from fastot.train.run import Run, host_values


@dataclass(frozen=True)
class Due:
    """What falls due after one step."""

    snapshot: str | None  # the algorithm's label when the step deserves a snapshot
    evaluation: bool
    log: bool
    fid: bool
    grid: bool
    checkpoint: bool

    @classmethod
    def after(cls, run: Run, it: int) -> Due:
        """What is due once iteration ``it`` completed step ``it + 1``."""
        cfg, step = run.cfg, it + 1
        evaluation = bool(cfg.eval.every) and step % cfg.eval.every == 0
        return cls(
            snapshot=run.algo.snapshot_due(it),
            evaluation=evaluation,
            log=step % cfg.train.log_every == 0 or step == run.total or evaluation,
            fid=bool(cfg.eval.fid_every) and step % cfg.eval.fid_every == 0,
            grid=bool(cfg.train.sample_every) and step % cfg.train.sample_every == 0,
            checkpoint=step % cfg.train.ckpt_every == 0 or step == run.total,
        )

    @property
    def writes_output(self) -> bool:
        """Whether the step writes something computed from the run (checkpoints check on their own)."""
        return self.snapshot is not None or self.log or self.fid or self.grid


class Bookkeeper:
    """The loop's side of a run besides the updates: the progress bar and, on their schedules, log
    rows, FID, sample grids, snapshots and checkpoints.

    Every rank keeps the schedule, since all check the losses and write checkpoints together; only
    rank 0 has a :class:`Writer`. Creating one prints the start block and draws the bar.
    """

    def __init__(self, run: Run, resumed: bool) -> None:
        from tqdm.auto import tqdm

        self.run = run
        main = run.rank == 0
        self.writer = Writer(run, resumed) if main else None
        if main:
            print(f"fastot.train: starting\n{start_block(run, resumed)}", file=sys.stderr, flush=True)
        self.t0 = time.perf_counter() - run.elapsed  # wall time goes on from the checkpoint's
        self.bar = tqdm(
            total=run.total,
            initial=run.step,
            disable=not (run.cfg.train.progress and main),
            dynamic_ncols=True,
            desc=f"{run.cfg.algorithm.name}",
        )
        self._restore_warnings = route_warnings(self.bar)

    def after_step(self, it: int, logs: dict[str, torch.Tensor]) -> None:
        """Record iteration ``it``'s losses and do what falls due at its step."""
        run, writer = self.run, self.writer
        run.step = it + 1
        run.elapsed = time.perf_counter() - self.t0
        for k, v in logs.items():
            run.window.setdefault(k, []).append(v)
        due = Due.after(run, it)
        if due.writes_output:
            # Nothing is written from a diverged run; every rank checks at the same steps.
            run.check_finite()
        if writer is not None and due.snapshot is not None:
            save_snapshot(run, due.snapshot)
        if due.log:
            self._log_row(with_evaluation=due.evaluation)
        if writer is not None and writer.fid is not None and due.fid:
            writer.write({"step": run.step, "fid": writer.fid(run.sampling_map, run.source)})
        if writer is not None and due.grid:
            writer.sample_grid()
        if due.checkpoint:
            run.save_checkpoint()
        self.bar.update(1)

    def _log_row(self, with_evaluation: bool) -> None:
        run = self.run
        # losses are averaged over the logging window; schedule/phase values are current
        row = {
            "step": run.step,
            **{k: float(np.mean(v)) for k, v in host_values(run.window).items()},
            **run.algo.log_values(),
            "wall_time": round(run.elapsed, 3),
        }
        run.window.clear()
        if self.writer is None:
            return
        if with_evaluation:
            row.update(evaluate(run, run.cfg.eval.eval_n))
        self.writer.write(row)
        self.bar.set_postfix({k: f"{row[k]:.3g}" for k in ("loss_v", "loss_T") if k in row})

    def stop(self, signum: int | None) -> NoReturn:
        """Leave the loop on a signal, with a checkpoint of the step just done."""
        run = self.run
        if run.last_ckpt != rundir.checkpoint(run.run_dir, run.step):
            run.save_checkpoint()
        self.bar.close()
        raise runtime.Interrupted(signum or signal.SIGTERM)  # SIGTERM: another rank's

    def end_training(self) -> None:
        """Close the bar; the last step gets its checkpoint if the schedule gave it none."""
        self.bar.close()
        self._restore_warnings()
        run = self.run
        if run.last_ckpt is None or (run.rank == 0 and ckpt.latest_checkpoint(run.run_dir) is None):
            run.save_checkpoint()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class Writer:
    """Rank 0's outputs during training: config.yaml, metrics.jsonl, TensorBoard, image sample grids."""

    def __init__(self, run: Run, resumed: bool) -> None:
        self.run = run
        if resumed:  # the summary describes where the run stopped before
            rundir.remove_summary(run.run_dir)
        # on resume: with any new overrides
        rundir.write_config(run.run_dir, run.cfg)
        self.log = rundir.MetricsLog(run.run_dir, keep_through=run.step if resumed else None)
        self.tb = None
        if run.cfg.train.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise ConfigError("train.tensorboard", f"needs the tensorboard package ({e})") from None
            self.tb = SummaryWriter(str(rundir.tensorboard(run.run_dir)))
        self.fid = PeriodicFID(run.cfg, run.device) if run.cfg.eval.fid_every else None

    def write(self, row: dict[str, Any]) -> None:
        self.log.append(row)
        if self.tb is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)):
                    self.tb.add_scalar(k, v, row["step"])

    def sample_grid(self) -> None:
        from fastot.train.images import save_grid

        run = self.run
        # The same seeded inputs every time, so successive grids show the same samples evolving.
        _, y = generate(run.sampling_map, run.source, run.cfg.train.sample_grid, run.cfg.eval.seed)
        if y.dim() != 4:
            return  # grids are for images; toys get their plots at the end
        grid = save_grid(y, rundir.grids(run.run_dir) / f"{run.step:08d}.png")
        if self.tb is not None:
            self.tb.add_image("samples", grid, run.step, dataformats="HWC")

    def close(self) -> None:
        self.log.close()
        if self.tb is not None:
            self.tb.close()


def evaluate(run: Run, n: int) -> dict[str, float]:
    """The ``eval.metrics`` of ``n`` seeded samples, for a log row."""
    cfg = run.cfg
    x, y = generate(run.sampling_map, run.source, n, cfg.eval.seed)
    return compute_metrics(
        list(cfg.eval.metrics), x, y, run.target, cfg.eval.seed, cfg.eval.ou_time, cfg.eval.mode_radius
    )


def save_snapshot(run: Run, label: str) -> None:
    """Seeded samples of the current map in ``snapshots/<step>.npz``, with the algorithm's label."""
    x, y = generate(run.sampling_map, run.source, run.cfg.eval.snapshot_samples, run.cfg.eval.seed)
    rundir.write_snapshot(run.run_dir, run.step, x.numpy(), y.numpy(), label)
