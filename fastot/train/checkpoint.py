"""Run directories: checkpoint rotation, a new run's claim on its directory, and the run lock.

Only tensors and primitive containers are stored (RNG states are uint8 tensors), so a checkpoint
loads with ``torch.load(weights_only=True)`` and never needs pickled classes. :mod:`fastot.rundir`
writes each to a temporary name and moves it into place, so a crash mid-write never leaves a
truncated checkpoint behind; should one be damaged anyway (a copy cut short), loading
(:func:`fastot.sampling.load_latest`) warns with its name and takes the previous one, which is why
at least two are kept.

One process at a time writes a run directory: rank 0 holds an ``flock`` on ``DIR/.lock`` for the
run's life (the kernel drops it when the process dies, so a crash leaves no stale lock).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastot import rundir
from fastot.rundir import list_checkpoints
from fastot.train.errors import ConfigError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; runs are simply not locked
    fcntl = None  # type: ignore[assignment]

# The previous checkpoint is the fallback when the latest is unreadable.
MIN_KEEP = 2
LOCK_NAME = rundir.LOCK
# What a run writes into its directory; a new run refuses a directory holding any of these.
RUN_FILES = rundir.RUN_FILES


# ---------------------------------------------------------------------------- checkpoints
def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint file, readable or not (see :func:`fastot.sampling.load_latest`)."""
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def prune(run_dir: Path, keep: int) -> None:
    for _, p in list_checkpoints(run_dir)[: -max(keep, MIN_KEEP)]:
        p.unlink(missing_ok=True)


def set_aside(paths: list[Path]) -> None:
    """Rename unreadable checkpoints to ``*.corrupt``: out of the resume order and of pruning, but
    kept for inspection (a resumed run rewrites those steps anyway)."""
    for p in paths:
        p.replace(p.with_name(p.name + ".corrupt"))


# ---------------------------------------------------------------------------- the run directory
def run_files(run_dir: Path) -> list[str]:
    """The names of a run's own files present in ``run_dir``."""
    return [name for name in RUN_FILES if (run_dir / name).exists()]


def check_new_run_dir(run_dir: Path, overwrite: bool) -> None:
    """A new run goes into a missing or empty directory (files of other tools are left alone),
    or replaces an old run only when asked to."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError("out", f"{run_dir} is a file, not a run directory")
    if overwrite or not run_dir.is_dir():
        return
    held = run_files(run_dir)
    if held:
        raise ConfigError(
            "out",
            f"{run_dir} already holds a run ({', '.join(held)}); continue it with --resume {run_dir}, "
            "choose a fresh --out, or pass --overwrite to replace it",
        )


def clear_run(run_dir: Path) -> None:
    """Delete an old run's files (``--overwrite``) so nothing of it is mistaken for the new run."""
    for name in run_files(run_dir):
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def remove_if_unused(run_dir: Path) -> None:
    """Remove a directory that holds nothing but its lock file."""
    if {p.name for p in run_dir.iterdir()} <= {LOCK_NAME}:
        (run_dir / LOCK_NAME).unlink(missing_ok=True)
        run_dir.rmdir()


class RunLock:
    """An exclusive, non-blocking ``flock`` on ``DIR/.lock``; a second holder gets a ConfigError."""

    def __init__(self, run_dir: Path, key: str) -> None:
        self.path = run_dir / LOCK_NAME
        self.fd: int | None = None
        if fcntl is None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            who = f"process {holder}" if holder.isdigit() else "another process"
            raise ConfigError(
                key, f"{who} is already running in {run_dir} (it holds {self.path}); wait for it to end"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the last descriptor drops the flock
            self.fd = None


@contextmanager
def claimed_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> Iterator[None]:
    """Hold the run lock on ``run_dir`` for the body; a new run checks the directory is free first.

    A directory this call created and the run left empty (it failed to start) is removed again.
    """
    if not resume:
        check_new_run_dir(run_dir, overwrite)  # before building anything
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = RunLock(run_dir, "resume" if resume else "out")
    try:
        if not resume:
            # again, under the lock: another process may have started a run here meanwhile
            check_new_run_dir(run_dir, overwrite)
            if overwrite:
                clear_run(run_dir)
        yield
    finally:
        lock.release()
        if created:
            remove_if_unused(run_dir)  # a run that failed to start leaves no empty directory
