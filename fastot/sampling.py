"""Samples of a trained map: read a run directory, rebuild its map and source, draw seeded samples.

The layer above networks and data and below the trainer, so that evaluation, ``fastot.sample`` and
the trainer itself draw samples the same way, and sampling a finished run builds no optimisers,
potential or training state. The run's files are read through :mod:`fastot.rundir`; loading the
newest checkpoint falls back past unreadable ones, each named in a :class:`CheckpointWarning`.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from fastot import rundir
from fastot.data import build_sampler
from fastot.data.registry import image_shape
from fastot.errors import ConfigError, ConfigWarning
from fastot.nn import build_map


# ---------------------------------------------------------------------------- drawing samples
@torch.no_grad()
def generate(net: nn.Module, source: Any, n: int, seed: int, chunk: int = 4096) -> tuple[Tensor, Tensor]:
    """n pairs (x, T(x, z)) with x from the source, drawn from their own seeded generator."""
    g = torch.Generator().manual_seed(seed)
    was_training = net.training
    net.eval()
    xs, ys = [], []
    z_dim = getattr(net, "z_dim", 0)
    for i in range(0, n, chunk):
        m = min(chunk, n - i)
        x = source.sample(m, g)
        z = torch.randn(m, z_dim, generator=g) if z_dim else None
        dev = next(net.parameters()).device
        xs.append(x)
        ys.append(net(x.to(dev), None if z is None else z.to(dev)).cpu())
    net.train(was_training)
    return torch.cat(xs), torch.cat(ys)


def generate_batches(net: nn.Module, source: Any, n: int, batch_size: int, seed: int) -> Iterator[Tensor]:
    """``n`` samples T(x, z) in batches; batch ``b`` draws from a generator seeded with ``(seed, b)``,
    so a batch does not depend on how many came before it (FID during training and after it)."""
    if n <= 0 or batch_size <= 0:
        raise ValueError(f"n and batch_size must be positive, got {n} and {batch_size}")
    for b, start in enumerate(range(0, n, batch_size)):
        m = min(batch_size, n - start)
        yield generate(net, source, m, seed * 1_000_003 + b, chunk=m)[1]


# ---------------------------------------------------------------------------- reading a run directory
class CheckpointWarning(UserWarning):
    """A checkpoint could not be read and an older one is used instead."""


@contextmanager
def report_warnings(prog: str) -> Iterator[None]:
    """Show CheckpointWarnings and ConfigWarnings as one ``prog: warning: ...`` line on stderr
    (command-line tools)."""
    with warnings.catch_warnings():
        show = warnings.showwarning

        def one_line(
            message: Warning | str,
            category: type[Warning],
            filename: str,
            lineno: int,
            file: TextIO | None = None,
            line: str | None = None,
        ) -> None:
            if issubclass(category, (CheckpointWarning, ConfigWarning)):
                print(f"{prog}: warning: {message}", file=sys.stderr)
            else:
                show(message, category, filename, lineno, file, line)

        warnings.showwarning = one_line
        yield


@dataclass
class Loaded:
    """The checkpoint :func:`load_latest` read."""

    path: Path
    state: dict[str, Any]
    unreadable: list[Path]  # newer checkpoints that were skipped


def load_latest(run_dir: Path, key: str) -> Loaded:
    """The newest checkpoint that loads; each unreadable newer one is named in a CheckpointWarning.

    Raises a ConfigError under ``key`` when the run has no readable checkpoint at all.
    """
    found = rundir.list_checkpoints(run_dir)
    bad: list[Path] = []
    for _, path in reversed(found):
        try:
            state = rundir.load_checkpoint(path)
            if not isinstance(state, dict) or "step" not in state:
                raise ValueError("not a fastot checkpoint")
        except Exception as e:  # truncated zip, bad pickle, unreadable file: all mean "skip it"
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            tail = "; falling back to the previous checkpoint" if path != found[0][1] else ""
            warnings.warn(f"checkpoint {path} is unreadable ({reason}){tail}", CheckpointWarning, 2)
            bad.append(path)
            continue
        return Loaded(path, state, bad)
    where = rundir.checkpoints(run_dir)
    if bad:
        raise ConfigError(key, f"no readable checkpoint in {where} ({len(bad)} unreadable)")
    raise ConfigError(key, f"no checkpoint in {where}")


# ---------------------------------------------------------------------------- the trained map
def implied_network_args(target: Any) -> dict[str, Any]:
    """Network arguments the data determine: ``dim`` for vectors, ``channels``/``image_size`` for images."""
    if hasattr(target, "dim"):
        return {"dim": target.dim}
    shape = getattr(target, "shape", None)
    if shape is not None and len(shape) == 3:
        return {"channels": shape[0], "image_size": shape[-1]}
    return {}


def _network_args(target_spec: dict[str, Any]) -> dict[str, Any]:
    # Image targets: the shape comes from the spec, so sampling never opens the training images.
    shape = image_shape(target_spec)
    if shape is not None:
        return {"channels": shape[0], "image_size": shape[1]}
    return implied_network_args(build_sampler(target_spec, "data.target"))


def parse_device(name: str) -> torch.device:
    """``auto`` is CUDA when torch sees a GPU, else the CPU; a device torch cannot use is a ConfigError."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ConfigError("device", str(e)) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "CUDA was asked for but torch sees no GPU; use device=cpu or auto")
    return device


def _section(cfg: DictConfig, key: str) -> dict[str, Any]:
    node = OmegaConf.select(cfg, key)
    if not isinstance(node, DictConfig):
        raise ConfigError(key, f"missing from the run's {rundir.CONFIG}")
    return OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]


@dataclass
class TrainedMap:
    """What generation needs from a run: the map to sample and the source it maps."""

    net: nn.Module  # the EMA copy's weights when the run kept one; in eval mode, no gradients
    source: Any
    config: DictConfig  # the run's config.yaml
    checkpoint: Path
    step: int

    def generate(self, n: int, seed: int, chunk: int = 4096) -> tuple[Tensor, Tensor]:
        return generate(self.net, self.source, n, seed, chunk)


def load_map(run_dir: str | Path, device: str | None = None, checkpoint: Path | None = None) -> TrainedMap:
    """The run's sampling map and source from its ``config.yaml`` and newest readable checkpoint.

    The weights are the EMA copy's when the run kept one (as the trainer samples), else the map's.
    An unreadable newest checkpoint is named in a :class:`CheckpointWarning` and the previous one is
    used. ``device`` overrides the run's; ``checkpoint`` picks another of the run's checkpoints. Image
    sources that read a dataset continue from the checkpoint's stream position, as the trainer's
    own samples do.
    """
    run_dir = Path(run_dir)
    cfg = rundir.read_config(run_dir)
    if checkpoint is None:
        loaded = load_latest(run_dir, "run")
    else:
        loaded = Loaded(Path(checkpoint), rundir.load_checkpoint(Path(checkpoint)), [])
    state = loaded.state
    seed = OmegaConf.select(cfg, "seed", default=0)
    # The trainer builds everything right after seeding torch with the run's seed; an image source's
    # default stream seed follows it. Forked, so loading leaves the caller's random state alone.
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(int(seed))
        source = build_sampler(_section(cfg, "data.source"), "data.source")
        net = build_map(_section(cfg, "networks.map"), **_network_args(_section(cfg, "data.target")))
    net = net.to(parse_device(device or OmegaConf.select(cfg, "device", default="cpu")))
    if OmegaConf.select(cfg, "train.channels_last", default=False):
        net.to(memory_format=torch.channels_last)  # the layout the run's map computed in
    # A run that switched EMA on when resuming has no EMA state before its first checkpoint after.
    use_ema = OmegaConf.select(cfg, "train.ema.enabled", default=False) and state.get("ema") is not None
    try:
        net.load_state_dict(state["ema"] if use_ema else state["map"])
    except RuntimeError as e:  # e.g. a config.yaml edited to other network sizes
        lines = str(e).strip().splitlines()
        detail = lines[1].strip() if len(lines) > 1 else lines[0]
        raise ConfigError("networks.map", f"the checkpoint does not fit this network ({detail})") from None
    net.eval().requires_grad_(False)
    source_state = state.get("data", {}).get("source")
    if source_state is not None and hasattr(source, "load_state_dict"):
        source.load_state_dict(source_state)
    return TrainedMap(net, source, cfg, loaded.path, int(state["step"]))


def iter_generated(
    run_dir: str | Path, n: int, batch_size: int = 100, seed: int = 0, device: str | None = None
) -> Iterator[Tensor]:
    """``n`` samples T(x, z) of the run's sampling map (the EMA copy when the run kept one), in batches.

    Batch ``b`` draws its inputs from a generator seeded with ``(seed, b)``, so the same arguments
    give the same images.
    """
    trained = load_map(run_dir, device)
    yield from generate_batches(trained.net, trained.source, n, batch_size, seed)


def generate_images(
    run_dir: str | Path, n: int, batch_size: int = 100, seed: int = 0, device: str | None = None
) -> Tensor:
    """All ``n`` samples of :func:`iter_generated` in one tensor (use the iterator for large ``n``)."""
    return torch.cat(list(iter_generated(run_dir, n, batch_size, seed, device)))
