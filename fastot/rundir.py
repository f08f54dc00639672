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

Everything else asks this module for a path, and the run's own files (config, log, summary, samples,
snapshots, checkpoints, the divergence note) are read and written here only; ``tests/test_rundir.py``
checks that no other module spells these names or opens these files. Every file but the append-only
log is written to a temporary name and moved into place, so a crash or a full disk never leaves a
truncated file behind: a half-written ``summary.json`` would mark a run finished that is not.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import torch

from fastot.errors import ConfigError

if TYPE_CHECKING:
    from omegaconf import DictConfig

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


def is_diverged(run_dir: Path) -> bool:
    return diverged(run_dir).is_file()


def has_samples(run_dir: Path) -> bool:
    return samples(run_dir).is_file()


# ---------------------------------------------------------------------------- writing
def write_atomic(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """``write(file)`` into a temporary beside ``path``, then renamed over it (durably).

    An OSError (a full disk) leaves no temporary and the previous ``path`` untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    # Mode 0666 filtered by the umask, like every other file of the run (mkstemp would give 0600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    # Temporaries of a writer that was killed mid-save; the run lock means no other save is running.
    for stale in path.parent.glob(".*.tmp"):
        stale.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (a power cut could otherwise undo it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_text(path: Path, text: str) -> None:
    write_atomic(path, lambda f: f.write(text.encode()))


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    write_atomic(path, lambda f: torch.save(state, f))


def write_config(run_dir: Path, cfg: DictConfig) -> None:
    from omegaconf import OmegaConf

    _write_text(config(run_dir), OmegaConf.to_yaml(cfg, resolve=True))


def write_summary(run_dir: Path, result: dict[str, Any]) -> None:
    _write_text(summary(run_dir), json.dumps(result, indent=2) + "\n")


def remove_summary(run_dir: Path) -> None:
    summary(run_dir).unlink(missing_ok=True)


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    buf = io.BytesIO()  # through a buffer: np.savez on a path would append a second .npz
    np.savez(buf, **arrays)
    write_atomic(path, lambda f: f.write(buf.getbuffer()))


def write_samples(run_dir: Path, x: np.ndarray, y: np.ndarray) -> None:
    _write_npz(samples(run_dir), x=x, y=y)


def write_snapshot(run_dir: Path, step: int, x: np.ndarray, y: np.ndarray, label: str) -> None:
    _write_npz(snapshots(run_dir) / f"{step:08d}.npz", x=x, y=y, label=np.array(label))


def mark_diverged(run_dir: Path, stderr: str) -> None:
    _write_text(diverged(run_dir), stderr)


class MetricsLog:
    """The run's log, one JSON row per line, each flushed as it is written (a killed run keeps its
    rows up to the last whole line)."""

    def __init__(self, run_dir: Path, keep_through: int | None) -> None:
        """Empty for a new run (``keep_through`` None), or cut back to the rows up to step
        ``keep_through`` for a resumed one: the later rows are written again."""
        path = metrics(run_dir)
        kept = [] if keep_through is None else [r for r in read_metrics(run_dir) if r["step"] <= keep_through]
        _write_text(path, "".join(json.dumps(r) + "\n" for r in kept))
        self._file: IO[str] = path.open("a")

    def append(self, row: dict[str, Any]) -> None:
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


# ---------------------------------------------------------------------------- reading
def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The log's rows, oldest first; none when there is no log. A last line cut short (the process
    was killed mid-write) is dropped."""
    path = metrics(run_dir)
    if not path.exists():
        return []
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    rows = []
    for i, line in enumerate(lines):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise ValueError(f"{path}: line {i + 1} is not JSON") from None
    return rows


def read_summary(run_dir: Path) -> dict[str, Any]:
    return json.loads(summary(run_dir).read_text())


def read_samples(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The final map's (x, T(x, z)) pairs."""
    with np.load(samples(run_dir)) as s:
        return s["x"], s["y"]


def snapshot_files(run_dir: Path) -> list[Path]:
    """The snapshots in step order."""
    return sorted(snapshots(run_dir).glob("*.npz"))


def read_snapshot(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as s:
        return {k: s[k] for k in s.files}


def read_config(run_dir: Path, key: str = "run") -> DictConfig:
    """The run's ``config.yaml`` as written by the trainer (resolved and complete); a missing
    directory or file and bad YAML are ConfigErrors under ``key``."""
    import yaml
    from omegaconf import DictConfig, OmegaConf

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(key, f"{run_dir} is not a run directory (it does not exist)")
    path = config(run_dir)
    if not path.is_file():
        raise ConfigError(key, f"{run_dir} is not a run directory ({CONFIG} not found)")
    try:
        cfg = OmegaConf.load(path)
    except (yaml.YAMLError, OSError) as e:
        raise ConfigError(key, f"{path} cannot be read ({str(e).strip().splitlines()[0]})") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(key, f"{path} must hold a mapping of config keys")
    return cfg


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of the run's checkpoint files, oldest first, readable or not."""
    found = []
    for p in checkpoints(run_dir).glob(CHECKPOINT_GLOB):
        m = CHECKPOINT_NAME.search(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """One checkpoint, on the CPU; tensors and primitive containers only, so no pickled code runs."""
    return torch.load(path, map_location="cpu", weights_only=True)
