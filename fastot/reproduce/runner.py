"""Running one row of an experiment for one seed: ``python -m fastot.train`` in a subprocess, one thread.

A finished or diverged run is reused, an interrupted run of the same configuration resumes from its
last checkpoint, and anything else in the run's directory is replaced.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from fastot import rundir
from fastot.reproduce.spec import Row, run_name


def run_dir_of(out: Path, budget: str, row: Row, seed: int) -> Path:
    return out / budget / f"{row.preset}--{run_name(row)}-s{seed}"


def run_overrides(row: Row, seed: int, budget: str) -> list[str]:
    overrides = row.budget_overrides(budget)
    if overrides is None:
        raise ValueError(f"row {row.label!r} has no {budget!r} budget")
    return [*overrides, f"seed={seed}", "train.threads=1", "train.progress=false", "eval.plots=false"]


def resumable(run_dir: Path, row: Row, overrides: list[str]) -> bool:
    """An interrupted run of this very configuration with a checkpoint to continue from (the trainer
    resumes bit for bit, so a paper-budget run may span several sittings)."""
    from omegaconf import OmegaConf

    from fastot.config import load_config
    from fastot.train.checkpoint import latest_checkpoint

    if not rundir.config(run_dir).is_file() or latest_checkpoint(run_dir) is None:
        return False
    wanted = OmegaConf.to_container(load_config(row.preset, overrides))
    return OmegaConf.to_container(rundir.read_config(run_dir)) == wanted


def run_one(row: Row, seed: int, out: Path, budget: str) -> Path:
    run_dir = run_dir_of(out, budget, row, seed)
    if rundir.is_finished(run_dir) or rundir.is_diverged(run_dir):
        return run_dir
    overrides = run_overrides(row, seed, budget)
    cmd = [sys.executable, "-m", "fastot.train"]
    if resumable(run_dir, row, overrides):
        cmd += ["--resume", str(run_dir)]
    else:
        if run_dir.exists():  # interrupted before its first checkpoint, or another configuration
            shutil.rmtree(run_dir)
        cmd += ["--preset", row.preset, "--out", str(run_dir), *overrides]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 and "diverged" in proc.stderr.lower():
        run_dir.mkdir(parents=True, exist_ok=True)
        rundir.mark_diverged(run_dir, proc.stderr)
    elif proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return run_dir
