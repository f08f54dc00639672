"""Samples of a trained run for evaluation: the map rebuilt from ``config.yaml`` and the latest checkpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor


def load_run(run_dir: str | Path, device: str | None = None):
    """The run's :class:`fastot.train.loop.Run` with its latest checkpoint loaded (EMA weights included).

    ``device`` overrides the device the run was trained on.
    """
    from fastot.train import checkpoint as ckpt
    from fastot.train.config import load_config
    from fastot.train.errors import ConfigError
    from fastot.train.loop import Run

    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise ConfigError("run", f"{cfg_path} not found")
    # The newest readable checkpoint: an unreadable one is named in a warning and skipped.
    loaded = ckpt.load_latest(run_dir, "run")
    overrides = [] if device is None else [f"device={device}"]
    run = Run(load_config(None, overrides, path=cfg_path), run_dir)
    run.load_state_dict(loaded.state)
    return run


def iter_generated(
    run_dir: str | Path, n: int, batch_size: int = 100, seed: int = 0, device: str | None = None
) -> Iterator[Tensor]:
    """``n`` samples T(x, z) of the run's sampling map (the EMA copy when the run kept one), in batches.

    Batch ``b`` draws its inputs from a generator seeded with ``(seed, b)``, so the same arguments
    give the same images.
    """
    from fastot.train.evaluate import generate

    if n <= 0 or batch_size <= 0:
        raise ValueError(f"n and batch_size must be positive, got {n} and {batch_size}")
    run = load_run(run_dir, device)
    for b, start in enumerate(range(0, n, batch_size)):
        m = min(batch_size, n - start)
        _, y = generate(run.sampling_map, run.source, m, seed * 1_000_003 + b, chunk=m)
        yield y


def generate_images(
    run_dir: str | Path, n: int, batch_size: int = 100, seed: int = 0, device: str | None = None
) -> Tensor:
    """All ``n`` samples of :func:`iter_generated` in one tensor (use the iterator for large ``n``)."""
    return torch.cat(list(iter_generated(run_dir, n, batch_size, seed, device)))
