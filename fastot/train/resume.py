"""Resuming a run: the checkpoint it continues from, the config changes that checkpoint can follow,
and the log rows written after it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from fastot import rundir
from fastot.config import load_config
from fastot.data import build_sampler
from fastot.data.registry import image_shape
from fastot.sampling import Loaded, implied_network_args, load_latest
from fastot.train import checkpoint as ckpt
from fastot.train.errors import ConfigError
from fastot.train.run import Run


class RunFinished(Exception):
    """``--resume`` of a run that has done all its iterations and written its summary."""

    def __init__(self, run_dir: Path, step: int, total: int) -> None:
        super().__init__(
            f"{run_dir} already finished (step {step} of {total}); nothing to do. "
            f"To train longer: --resume {run_dir} train.iterations=N"
        )
        self.run_dir = run_dir


def checkpoint_to_resume(run_dir: Path, cfg: DictConfig) -> Loaded:
    """The run's newest readable checkpoint, once ``cfg`` is known to be one it can continue under."""
    loaded = load_latest(run_dir, "resume")
    check_resume_config(trained_config(loaded.state, run_dir), cfg)
    return loaded


def resume_from(run: Run, loaded: Loaded) -> None:
    """Put ``run`` where the checkpoint left it; raise :class:`RunFinished` when nothing is left to do."""
    run.load_state_dict(loaded.state)
    run.last_ckpt = loaded.path
    if run.rank == 0:
        ckpt.set_aside(loaded.unreadable)
    if run.step >= run.total and rundir.is_finished(run.run_dir):
        raise RunFinished(run.run_dir, run.step, run.total)


# What a resumed run cannot change: the checkpoint's weights, optimiser moments and random streams
# belong to these. Everything else (optimiser hyperparameters, schedule, iterations, logging,
# evaluation, algorithm weights) applies from the resumed step on; so does a data change that keeps
# the data's shapes (a moved dataset path).
FIXED_ON_RESUME = ("seed", "networks", "algorithm.name", "optim.map.name", "optim.potential.name")


def _differences(a: Any, b: Any, key: str) -> list[tuple[str, Any, Any]]:
    """(dotted key, a, b) of every leaf where two config containers differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(a.keys() | b.keys())
        return [d for k in keys for d in _differences(a.get(k), b.get(k), f"{key}.{k}")]
    return [] if a == b else [(key, a, b)]


def _data_shape(spec: dict[str, Any], key: str) -> Any:
    """What the networks are built for from a data spec, or None when it cannot be told."""
    shape = image_shape(spec)
    if shape is not None:  # images: from the spec, without opening the dataset
        return shape
    try:
        return implied_network_args(build_sampler(spec, key)) or None
    except (ConfigError, TypeError, ValueError, OSError):
        return None


def check_resume_config(trained: dict[str, Any], cfg: DictConfig) -> None:
    """Refuse overrides of a resumed run that its checkpoint cannot follow, naming the key."""
    now = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(now, dict)

    def get(tree: Any, dotted: str) -> Any:
        for part in dotted.split("."):
            tree = tree.get(part) if isinstance(tree, dict) else None
        return tree

    for key in FIXED_ON_RESUME:
        for dotted, was, wants in _differences(get(trained, key), get(now, key), key):
            raise ConfigError(
                dotted,
                f"cannot change when resuming (the checkpoint was trained with {was!r}, not {wants!r}); "
                "start a new run with --out instead",
            )
    for side in ("source", "target"):
        key = f"data.{side}"
        was, wants = trained.get("data", {}).get(side), now["data"][side]
        if not isinstance(was, dict) or was == wants:
            continue
        before, after = _data_shape(was, key), _data_shape(wants, key)
        if before is not None and after is not None and before != after:
            dotted = _differences(was, wants, key)[0][0]
            raise ConfigError(
                dotted,
                f"cannot change when resuming: the networks were built for data of shape {before}, "
                f"this gives {after}; start a new run with --out instead",
            )


def trained_config(state: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """The config a checkpoint was trained with (older checkpoints: the run's config.yaml)."""
    trained = state.get("config")
    if not isinstance(trained, dict):
        trained = OmegaConf.to_container(load_config(None, [], path=rundir.config(run_dir)), resolve=True)
    assert isinstance(trained, dict)
    return trained
