"""Configs: built-in defaults, YAML presets shipped in ``fastot/configs``, dotted-key overrides.

Merging is OmegaConf's. Top-level sections are strict (an unknown key is an error); the sections
whose keys depend on a registered name (data samplers, networks, algorithm, optimisers) are open
here and validated by the builder that consumes them, so every error names its dotted key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fastot.train.errors import ConfigError

PRESET_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_PRESET = "uotm-outlier-1d"

# Sections whose keys depend on the chosen name: a preset replaces them whole.
OPEN_SECTIONS = (
    "data.source",
    "data.target",
    "networks.map",
    "networks.potential",
    "algorithm",
    "optim.map",
    "optim.potential",
)

BASE: dict[str, Any] = {
    "seed": 0,
    "device": "cpu",  # "auto": CUDA when available (one GPU per process under torchrun), else CPU
    "data": {"source": {"name": "gaussian", "dim": 2}, "target": {"name": "8gaussians"}},
    "networks": {"map": {"name": "uotm_toy"}, "potential": {"name": "uotm_toy"}},
    "algorithm": {"name": "uotm"},
    "optim": {
        "map": {"name": "adam", "lr": 1e-4, "betas": [0.5, 0.9]},
        "potential": {"name": "adam", "lr": 1e-4, "betas": [0.5, 0.9]},
        "schedule": "constant",  # or "cosine" (per iteration down to eta_min)
        "eta_min": 0.0,
    },
    "train": {
        "iterations": None,  # None: the algorithm's own length (S-JKO phases)
        "batch_size": 256,
        "ema": {"enabled": False, "decay": 0.999},
        "log_every": 50,
        "ckpt_every": 1000,
        "keep_checkpoints": 2,
        "progress": True,
        "threads": None,
        "amp": "none",  # "bf16" (autocast) or "fp16" (autocast + GradScaler)
        "channels_last": False,
        "compile": False,  # torch.compile the networks
        "grad_clip": None,  # max gradient norm, None = no clipping
        "sample_every": 0,  # image runs: a PNG grid of T(x, z) every this many iterations (0 = off)
        "sample_grid": 64,  # images per grid
        "tensorboard": False,
    },
    "eval": {
        "n_samples": 10000,
        "seed": 12345,
        "metrics": [],  # kl_knn, energy, modes, monotonicity, ou_symkl
        "every": 0,  # also evaluate (on eval_n samples) every this many iterations; 0 = only at the end
        "eval_n": 2000,
        "ou_time": None,
        "mode_radius": None,  # "modes": a sample is high quality within this distance (None: 3 target stds)
        "plots": True,
        # Image runs: FID of fid_n samples against fid_ref (a stats .npz or a dataset path) every
        # fid_every iterations (0 = off), with the FID Inception weights from inception_weights.
        "fid_every": 0,
        "fid_ref": None,
        "fid_n": 5000,
        "inception_weights": None,
        "snapshot_samples": 2000,
    },
}


SMOKE_BATCH = 4


def smoke(cfg: DictConfig) -> DictConfig:
    """The same run at a tiny batch with narrow networks (``--smoke``); everything else unchanged."""
    from fastot.nn.registry import SMOKE

    cfg = cfg.copy()
    cfg.train.batch_size = min(int(cfg.train.batch_size), SMOKE_BATCH)
    for kind in ("map", "potential"):
        spec = cfg.networks[kind]
        for key, value in SMOKE.get((kind, spec.name), {}).items():
            spec[key] = value
    return cfg


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def _select(cfg: DictConfig, dotted: str) -> Any:
    return OmegaConf.select(cfg, dotted)


def load_config(
    preset: str | None,
    overrides: list[str] | None = None,
    path: Path | None = None,
    allow_missing: bool = False,
) -> DictConfig:
    """Defaults <- preset (or a saved ``config.yaml`` at ``path``) <- ``key=value`` overrides.

    ``allow_missing`` accepts unset required values (``???``, e.g. data paths) for inspection only.
    """
    base = OmegaConf.create(BASE)
    if path is not None:
        file = path
    else:
        name = preset or DEFAULT_PRESET
        file = PRESET_DIR / f"{name}.yaml"
        if not file.is_file():
            raise ConfigError("preset", f"unknown preset {name!r}; see --list")
    layer = read_yaml(file)
    for dotted in OPEN_SECTIONS:  # a layer that names a section replaces it instead of merging
        if _select(layer, dotted) is not None:
            parent, _, leaf = dotted.rpartition(".")
            node = _select(base, parent) if parent else base
            node.pop(leaf)
            node[leaf] = {}
    try:
        _set_strict(base)  # before the file is merged in, so that its unknown keys are errors too
        cfg = OmegaConf.merge(base, layer)
        _set_strict(cfg)
    except OmegaConfBaseException as e:
        raise _merge_error(e, f" in {file}") from None
    _check_open_keys(cfg, layer, file)
    try:
        for item in overrides or []:
            if "=" not in item:
                raise ConfigError(item, "overrides must look like key=value")
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([item]))
            _set_strict(cfg)
    except OmegaConfBaseException as e:
        raise _merge_error(e) from None
    validate(cfg, allow_missing)
    return cfg


def read_yaml(file: Path) -> DictConfig:
    """One YAML layer (a preset or a run's config.yaml); bad YAML is a ConfigError naming the file."""
    try:
        layer = OmegaConf.load(file)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).strip().splitlines()[0]
        raise ConfigError(str(file), f"invalid YAML{where}: {problem}") from None
    except OSError as e:
        raise ConfigError(str(file), f"cannot be read ({e.strerror or e})") from None
    if not isinstance(layer, DictConfig):
        raise ConfigError(str(file), "must hold a mapping of config keys")
    return layer


def _merge_error(e: OmegaConfBaseException, where: str = "") -> ConfigError:
    key = getattr(e, "full_key", None) or "config"
    msg = "unknown config key" if "not in struct" in str(e) else str(e).splitlines()[0]
    return ConfigError(str(key), msg + where)


def _accepted_keys(section: str, name: Any) -> set[str] | None:
    """The keys the builder of an open section takes for ``name``; None for a name it does not know
    (the builder reports that one, naming ``<section>.name``)."""
    import dataclasses
    import inspect

    if not isinstance(name, str):
        return None
    if section == "algorithm":
        from fastot.algorithms import ALGORITHMS

        entry = ALGORITHMS.get(name)
        return None if entry is None else {f.name for f in dataclasses.fields(entry[0]) if f.init}
    if section.startswith("data."):
        from fastot.data import SAMPLERS as registry
    elif section == "networks.map":
        from fastot.nn import MAPS as registry
    elif section == "networks.potential":
        from fastot.nn import POTENTIALS as registry
    else:
        from fastot.train.loop import OPTIMIZERS as registry
    ctor = registry.get(name)
    return None if ctor is None else set(inspect.signature(ctor).parameters) - {"params"}


def _check_open_keys(cfg: DictConfig, layer: DictConfig, file: Path) -> None:
    """Unknown keys a YAML file puts in an open section are errors naming the key and the file
    (the builders would name the key only, and only once the run starts)."""
    for section in OPEN_SECTIONS:
        if _select(layer, section) is None:
            continue
        spec = _select(cfg, section)
        accepted = _accepted_keys(section, spec.get("name"))
        if accepted is None:
            continue  # an unknown name: the builder reports it, naming <section>.name
        for key in spec:
            if key != "name" and key not in accepted:
                raise ConfigError(f"{section}.{key}", f"unknown config key in {file}")


def _set_strict(cfg: DictConfig) -> None:
    OmegaConf.set_struct(cfg, True)
    for dotted in OPEN_SECTIONS:
        node = _select(cfg, dotted)
        if node is not None:
            OmegaConf.set_struct(node, False)


def _positive_int(cfg: DictConfig, key: str, allow_none: bool = False, allow_zero: bool = False) -> None:
    value = _select(cfg, key)
    if value is None and allow_none:
        return
    ok = isinstance(value, int) and not isinstance(value, bool) and (value > 0 or (allow_zero and value == 0))
    if not ok:
        want = "non-negative" if allow_zero else "positive"
        raise ConfigError(key, f"must be a {want} integer, got {value!r}")


def validate(cfg: DictConfig, allow_missing: bool = False) -> None:
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing and not allow_missing:
        raise ConfigError(missing[0], f"required; set it on the command line as {missing[0]}=VALUE")
    _positive_int(cfg, "train.batch_size")
    _positive_int(cfg, "train.iterations", allow_none=True, allow_zero=True)
    for key in (
        "train.log_every",
        "train.ckpt_every",
        "train.keep_checkpoints",
        "eval.n_samples",
        "eval.eval_n",
    ):
        _positive_int(cfg, key)
    _positive_int(cfg, "eval.every", allow_zero=True)
    _positive_int(cfg, "train.sample_every", allow_zero=True)
    _positive_int(cfg, "eval.fid_every", allow_zero=True)
    _positive_int(cfg, "eval.fid_n")
    if cfg.eval.fid_every and not cfg.eval.fid_ref:
        raise ConfigError("eval.fid_ref", "required when eval.fid_every > 0 (a stats .npz or a dataset path)")
    _positive_int(cfg, "train.sample_grid")
    if cfg.train.amp not in ("none", "bf16", "fp16"):
        raise ConfigError("train.amp", f"must be 'none', 'bf16' or 'fp16', got {cfg.train.amp!r}")
    clip = cfg.train.grad_clip
    if clip is not None and (isinstance(clip, bool) or not isinstance(clip, (int, float)) or clip <= 0):
        raise ConfigError("train.grad_clip", f"must be a positive number or null, got {clip!r}")
    if cfg.optim.schedule not in ("constant", "cosine"):
        raise ConfigError("optim.schedule", f"must be 'constant' or 'cosine', got {cfg.optim.schedule!r}")
    if not 0 <= cfg.train.ema.decay < 1:
        raise ConfigError("train.ema.decay", f"must be in [0, 1), got {cfg.train.ema.decay}")
    for section in OPEN_SECTIONS:
        if "name" not in _select(cfg, section):
            raise ConfigError(f"{section}.name", "missing")


def to_container(cfg: DictConfig, key: str) -> dict[str, Any]:
    return OmegaConf.to_container(_select(cfg, key), resolve=True)  # type: ignore[return-value]
