"""The one owner of a run directory's layout: every file name a run writes, and the path of each.

    runs/uotm/
      config.yaml      the resolved config the run trained with
      metrics.jsonl    one JSON row per log step
      summary.json     written last: the run finished
      samples.npz      (x, T(x, z)) pairs of the final map; samples.png its grid
      checkpoints/     ckpt_<step>.pt, the newest few
      snapshots/       samples at the algorithm's snapshot steps (S-JKO phases)
      samples/         sample grids during training; plots/ the toy plots; tensorboard/
      diverged.txt     fastot.reproduce: the run diverged (stderr of the trainer)
      .lock            held while a trainer writes the directory

Everything else asks this module for a path; ``tests/test_rundir.py`` checks that no other module
spells these names.
"""

from __future__ import annotations

import re
from pathlib import Path

CONFIG = "config.yaml"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
SAMPLES = "samples.npz"
SAMPLES_GRID = "samples.png"
CHECKPOINTS = "checkpoints"
SNAPSHOTS = "snapshots"
GRIDS = "samples"
PLOTS = "plots"
TENSORBOARD = "tensorboard"
DIVERGED = "diverged.txt"
LOCK = ".lock"

# What a run writes into its directory; a new run refuses a directory holding any of these.
RUN_FILES = (
    CONFIG,
    METRICS,
    SUMMARY,
    SAMPLES,
    SAMPLES_GRID,
    CHECKPOINTS,
    PLOTS,
    SNAPSHOTS,
    GRIDS,
    TENSORBOARD,
)
CHECKPOINT_GLOB = "ckpt_*.pt"
CHECKPOINT_NAME = re.compile(r"ckpt_(\d+)\.pt$")


def config(run_dir: Path) -> Path:
    return Path(run_dir) / CONFIG


def metrics(run_dir: Path) -> Path:
    return Path(run_dir) / METRICS


def summary(run_dir: Path) -> Path:
    return Path(run_dir) / SUMMARY


def samples(run_dir: Path) -> Path:
    return Path(run_dir) / SAMPLES


def samples_grid(run_dir: Path) -> Path:
    return Path(run_dir) / SAMPLES_GRID


def checkpoints(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINTS


def checkpoint(run_dir: Path, step: int) -> Path:
    return checkpoints(run_dir) / f"ckpt_{step:08d}.pt"


def snapshots(run_dir: Path) -> Path:
    return Path(run_dir) / SNAPSHOTS


def grids(run_dir: Path) -> Path:
    return Path(run_dir) / GRIDS


def plots(run_dir: Path) -> Path:
    return Path(run_dir) / PLOTS


def tensorboard(run_dir: Path) -> Path:
    return Path(run_dir) / TENSORBOARD


def diverged(run_dir: Path) -> Path:
    return Path(run_dir) / DIVERGED


def lock(run_dir: Path) -> Path:
    return Path(run_dir) / LOCK


def is_finished(run_dir: Path) -> bool:
    return summary(run_dir).is_file()
