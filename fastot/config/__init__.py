"""Config loading: the built-in defaults, a preset or a run's config.yaml, then key=value overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fastot import rundir
from fastot.config.checks import OPEN_SECTIONS, check_open_keys, parameters, select, validate
from fastot.errors import ConfigError

PRESET_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_PRESET = "uotm-outlier-1d"

BASE: dict[str, Any] = {
    "preset": None,  # set by load_config to the preset the run came from (informational)
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
        "threads": None,  # intra-op threads; None: 1 for vector data, the machine's for images
        "amp": "none",  # "bf16" (autocast) or "fp16" (autocast + GradScaler)
        "channels_last": False,
        "compile": False,  # true: torch.compile the networks; "step": the losses around them too
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
SMOKE_ITERATIONS = 6  # S-JKO: 3 phases of 2 iterations; UOTM-SD: alpha runs its whole schedule
SMOKE_SAMPLES = 500  # evaluation samples (metrics, snapshots)
# Larger images are smoke-tested at this size: the 256x256 networks keep every level but the finest,
# and an iteration takes a second instead of several.
SMOKE_IMAGE_SIZE = 64


def smoke(cfg: DictConfig) -> DictConfig:
    """A quick check of a preset (``--smoke``): every part it uses, for a handful of iterations.

    ``SMOKE_ITERATIONS`` iterations (S-JKO: several short phases; schedules such as UOTM-SD's alpha
    or KNOT's gamma ramp run within them) at a tiny batch with narrow networks and at most two
    potential and two map updates per iteration; images larger than ``SMOKE_IMAGE_SIZE`` shrink to
    it. A checkpoint halfway and at the end, periodic evaluation and sample grids within the run,
    a small final evaluation. The algorithm's other settings and the datasets are unchanged.
    """
    from fastot.data.registry import image_shape
    from fastot.nn.registry import SMOKE

    cfg = cfg.copy()
    train, ev, algo = cfg.train, cfg.eval, cfg.algorithm
    n = SMOKE_ITERATIONS
    train.batch_size = min(int(train.batch_size), SMOKE_BATCH)
    for kind in ("map", "potential"):
        spec = cfg.networks[kind]
        for key, value in SMOKE.get((kind, spec.name), {}).items():
            spec[key] = value
    from fastot.algorithms import ALGORITHMS

    cls = ALGORITHMS[algo.name][0] if algo.name in ALGORITHMS else None
    if cls is not None:  # an unknown name is reported by validation
        defaults = {k: v for k, (_, v) in (parameters("algorithm", algo.name) or {}).items()}
        for key, value in cls.smoke_overrides({**defaults, **algo}, n).items():
            algo[key] = value
    if train.iterations is not None or cls is None or not cls.implies_iterations:
        train.iterations = min(int(train.iterations or n), n)
    for side in ("source", "target"):
        shape = image_shape(to_container(cfg, f"data.{side}"))
        if shape is not None and shape[1] > SMOKE_IMAGE_SIZE and "size" in _sampler_parameters(cfg, side):
            cfg.data[side].size = SMOKE_IMAGE_SIZE
    train.log_every = min(int(train.log_every), 2)
    train.ckpt_every = min(int(train.ckpt_every), n // 2)
    if train.sample_every:
        train.sample_every = min(int(train.sample_every), n // 2)
    ev.n_samples = min(int(ev.n_samples), SMOKE_SAMPLES)
    ev.snapshot_samples = min(int(ev.snapshot_samples), SMOKE_SAMPLES)
    ev.eval_n = min(int(ev.eval_n), SMOKE_SAMPLES)
    if ev.every:
        ev.every = min(int(ev.every), n // 2)
    if ev.fid_every:
        ev.fid_every = min(int(ev.fid_every), n)
        ev.fid_n = min(int(ev.fid_n), 2 * SMOKE_BATCH)
    return cfg


def _sampler_parameters(cfg: DictConfig, side: str) -> set[str]:
    return set((parameters(f"data.{side}", cfg.data[side].name) or {}).keys())


def intra_op_threads(cfg: DictConfig) -> int | None:
    """The run's intra-op thread count: ``train.threads`` when set; else 1 for vector (toy) data,
    whose small tensors gain nothing from more threads and stall when another process holds a
    core; else None, the machine's default, for images."""
    if cfg.train.threads:
        return int(cfg.train.threads)
    from fastot.data.registry import image_shape

    return None if image_shape(to_container(cfg, "data.target")) is not None else 1


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def check_run_config(run_dir: Path) -> None:
    """Validate a run's ``config.yaml`` as the trainer would (unknown keys, bad YAML: a ConfigError
    naming the key or line and the file). Commands that only read a run call this before loading
    it; a missing directory or file is left to the loader's own message."""
    path = rundir.config(Path(run_dir))
    if path.is_file():
        load_config(None, [], path=path)


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
        if select(layer, dotted) is not None:
            parent, _, leaf = dotted.rpartition(".")
            node = select(base, parent) if parent else base
            node.pop(leaf)
            node[leaf] = {}
    try:
        _set_strict(base)  # before the file is merged in, so that its unknown keys are errors too
        cfg = OmegaConf.merge(base, layer)
        _set_strict(cfg)
    except OmegaConfBaseException as e:
        raise _merge_error(e, f" in {file}") from None
    check_open_keys(cfg, layer, file)
    try:
        for item in overrides or []:
            if "=" not in item:
                raise ConfigError(item, "overrides must look like key=value")
            key, _, value = item.partition("=")
            if key.strip() in OPEN_SECTIONS and value.lstrip().startswith("{"):
                # A whole section given anew replaces the preset's (as a preset layer does), so
                # that another data source or network does not inherit the old one's keys.
                parent, _, leaf = key.strip().rpartition(".")
                OmegaConf.set_struct(cfg, False)
                node = select(cfg, parent) if parent else cfg
                node.pop(leaf)
                node[leaf] = {}
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([item]))
            _set_strict(cfg)
    except OmegaConfBaseException as e:
        raise _merge_error(e) from None
    if path is None:
        cfg.preset = name
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


def _set_strict(cfg: DictConfig) -> None:
    OmegaConf.set_struct(cfg, True)
    for dotted in OPEN_SECTIONS:
        node = select(cfg, dotted)
        if node is not None:
            OmegaConf.set_struct(node, False)


def to_container(cfg: DictConfig, key: str) -> dict[str, Any]:
    return OmegaConf.to_container(select(cfg, key), resolve=True)  # type: ignore[return-value]
