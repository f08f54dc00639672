"""The training loop: build the run, resume it, step it with its bookkeeping in between, finish.
Updates never wait for the device; losses are read back only at steps that write something."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from fastot.train import runtime
from fastot.train.bookkeeping import Bookkeeper
from fastot.train.checkpoint import claimed_run_dir
from fastot.train.report import finish
from fastot.train.resume import checkpoint_to_resume, resume_from
from fastot.train.run import Run


def train(cfg: DictConfig, run_dir: Path, resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Train (or continue) the run in ``run_dir``; returns the summary (empty on ranks > 0).

    With several processes every rank trains; only rank 0 writes logs, samples and checkpoints, and
    it holds a lock on the directory for the run's life. A new run refuses a directory that holds
    another run unless ``overwrite`` (which deletes that run's files first). Resuming takes the
    newest readable checkpoint (warning about unreadable ones) and raises
    :class:`fastot.train.resume.RunFinished` when nothing is left to do. SIGINT and SIGTERM stop
    training at the end of the current iteration with a checkpoint and raise :class:`runtime.Interrupted`.
    """
    main = runtime.launch_rank() == 0
    stop = runtime.GracefulStop()
    claim = claimed_run_dir(run_dir, resume, overwrite) if main else contextlib.nullcontext()
    with claim, _where_it_stopped(stop):
        loaded = checkpoint_to_resume(run_dir, cfg) if resume else None
        with stop:
            run = Run(cfg, run_dir)
            stop.run = run
            if loaded is not None:
                resume_from(run, loaded)
            books = Bookkeeper(run, resumed=loaded is not None)
            stop.phase = "training"  # a signal now waits for the end of the iteration
            for it in range(run.step, run.total):
                books.after_step(it, run.iteration(it))
                if stop.requested(run.device, run.step):
                    books.stop(stop.signum)
            books.end_training()
            stop.phase = "final evaluation"
            if stop.requested(run.device):  # a signal during the last iteration: the checkpoint is complete
                raise runtime.Interrupted(stop.signum or signal.SIGTERM)
            if run.rank != 0:
                return {}
            books.close()
            return finish(run, run.elapsed, books.t0)


@contextlib.contextmanager
def _where_it_stopped(stop: runtime.GracefulStop) -> Iterator[None]:
    """An :class:`runtime.Interrupted` leaves with the step, checkpoint and phase it stopped at."""
    try:
        yield
    except runtime.Interrupted as e:
        run = stop.run
        e.step = None if run is None else run.step
        e.checkpoint = None if run is None or run.last_ckpt is None else str(run.last_ckpt)
        e.during = stop.phase
        raise
