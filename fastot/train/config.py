"""Configs: built-in defaults, YAML presets shipped in ``fastot/configs``, dotted-key overrides.

Merging is OmegaConf's. Top-level sections are strict (an unknown key is an error); the sections
whose keys depend on a registered name (data samplers, networks, algorithm, optimisers) are open
here and validated by the builder that consumes them, so every error names its dotted key.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fastot import rundir
from fastot.checks import is_real, number_fault
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
        defaults = {k: v for k, (_, v) in (_parameters("algorithm", algo.name) or {}).items()}
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
    return set((_parameters(f"data.{side}", cfg.data[side].name) or {}).keys())


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


def _select(cfg: DictConfig, dotted: str) -> Any:
    return OmegaConf.select(cfg, dotted)


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
            key, _, value = item.partition("=")
            if key.strip() in OPEN_SECTIONS and value.lstrip().startswith("{"):
                # A whole section given anew replaces the preset's (as a preset layer does), so
                # that another data source or network does not inherit the old one's keys.
                parent, _, leaf = key.strip().rpartition(".")
                OmegaConf.set_struct(cfg, False)
                node = _select(cfg, parent) if parent else cfg
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


def _check_open_keys(cfg: DictConfig, layer: DictConfig, file: Path) -> None:
    """Unknown keys a YAML file puts in an open section are errors naming the key and the file
    (the builders would name the key only, and only once the run starts)."""
    for section in OPEN_SECTIONS:
        if _select(layer, section) is None:
            continue
        spec = _select(cfg, section)
        name = spec.get("name")
        accepted = _parameters(section, name) if isinstance(name, str) else None
        if accepted is None:
            continue  # an unknown name: the builder reports it, naming <section>.name
        for key in spec:
            if key != "name" and (key not in accepted or key == "params"):
                raise ConfigError(f"{section}.{key}", f"unknown config key in {file}")


def _set_strict(cfg: DictConfig) -> None:
    OmegaConf.set_struct(cfg, True)
    for dotted in OPEN_SECTIONS:
        node = _select(cfg, dotted)
        if node is not None:
            OmegaConf.set_struct(node, False)


def _integer(cfg: DictConfig, key: str, allow_none: bool = False, allow_zero: bool = False) -> None:
    """A positive integer (with ``allow_zero``, a non-negative one), or null with ``allow_none``."""
    value = _select(cfg, key)
    if value is None and allow_none:
        return
    if number_fault(value, integer=True, positive=not allow_zero, nonneg=allow_zero):
        want = "non-negative" if allow_zero else "positive"
        raise ConfigError(key, f"must be a {want} integer, got {value!r}")


def validate(cfg: DictConfig, allow_missing: bool = False) -> None:
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing and not allow_missing:
        raise ConfigError(missing[0], f"required; set it on the command line as {missing[0]}=VALUE")
    _integer(cfg, "train.batch_size")
    _integer(cfg, "train.iterations", allow_none=True)
    for key in (
        "train.log_every",
        "train.ckpt_every",
        "train.keep_checkpoints",
        "eval.n_samples",
        "eval.eval_n",
    ):
        _integer(cfg, key)
    _integer(cfg, "eval.every", allow_zero=True)
    _integer(cfg, "train.sample_every", allow_zero=True)
    _integer(cfg, "eval.fid_every", allow_zero=True)
    _integer(cfg, "eval.fid_n")
    if cfg.eval.fid_every and not cfg.eval.fid_ref:
        raise ConfigError("eval.fid_ref", "required when eval.fid_every > 0 (a stats .npz or a dataset path)")
    _integer(cfg, "train.sample_grid")
    if cfg.train.amp not in ("none", "bf16", "fp16"):
        raise ConfigError("train.amp", f"must be 'none', 'bf16' or 'fp16', got {cfg.train.amp!r}")
    clip = cfg.train.grad_clip
    # inf passes, as it always has: clipping at an infinite norm leaves the gradients alone.
    if clip is not None and number_fault(clip, positive=True, finite=False):
        raise ConfigError("train.grad_clip", f"must be a positive number or null, got {clip!r}")
    if cfg.optim.schedule not in ("constant", "cosine"):
        raise ConfigError("optim.schedule", f"must be 'constant' or 'cosine', got {cfg.optim.schedule!r}")
    _number(cfg, "train.ema.decay", below=1.0)
    for key in ("seed", "eval.seed"):
        _integer(cfg, key, allow_zero=True)
    _integer(cfg, "train.threads", allow_none=True)
    _number(cfg, "optim.eta_min")
    for key in ("eval.mode_radius", "eval.ou_time"):
        _number(cfg, key, positive=True, allow_none=True)
    for key in (
        "train.ema.enabled",
        "train.progress",
        "train.channels_last",
        "train.tensorboard",
        "eval.plots",
    ):
        if not isinstance(_select(cfg, key), bool):
            raise ConfigError(key, f"must be true or false, got {_select(cfg, key)!r}")
    if not (isinstance(cfg.train.compile, bool) or cfg.train.compile == "step"):
        raise ConfigError("train.compile", f"must be true, false or step, got {cfg.train.compile!r}")
    if not isinstance(cfg.eval.metrics, (list, ListConfig)):
        raise ConfigError("eval.metrics", f"must be a list such as [kl_knn, energy], got {cfg.eval.metrics}")
    for section in OPEN_SECTIONS:
        if "name" not in _select(cfg, section):
            raise ConfigError(f"{section}.name", "missing")
    for kind in ("map", "potential"):
        _check_optimizer(cfg, f"optim.{kind}")
    for section in OPEN_SECTIONS:
        _check_argument_types(cfg, section)


def _number(
    cfg: DictConfig, key: str, positive: bool = False, below: float | None = None, allow_none: bool = False
) -> None:
    """A finite number >= 0 (> 0 with ``positive``) and under ``below``, or null with ``allow_none``."""
    value = _select(cfg, key)
    if value is None and allow_none:
        return
    if number_fault(value, positive=positive, nonneg=True) or (below is not None and value >= below):
        if below is None:
            where = " > 0" if positive else " >= 0"
        else:
            where = f" in {'(' if positive else '['}0, {below:g})"
        null = " or null" if allow_none else ""
        raise ConfigError(key, f"must be a number{where}{null}, got {value!r}")


def _check_optimizer(cfg: DictConfig, key: str) -> None:
    """Learning rate, betas and the other numeric settings torch.optim would reject (or crash on)."""
    node = _select(cfg, key)
    if "lr" in node:
        _number(cfg, f"{key}.lr", positive=True)
    if "betas" in node:
        betas = node.betas
        ok = isinstance(betas, (list, ListConfig)) and len(betas) == 2
        if not (ok and all(is_real(b) and 0 <= b < 1 for b in betas)):
            want = "must be two numbers in [0, 1) such as [0.5, 0.9]"
            raise ConfigError(f"{key}.betas", f"{want}, got {betas}")
    for name in ("eps",):
        if name in node:
            _number(cfg, f"{key}.{name}", positive=True)
    for name in ("weight_decay", "momentum", "alpha"):
        if name in node:
            _number(cfg, f"{key}.{name}")


# Annotation names _check_argument_types understands; anything else (strings, lists, tensors) is
# left to the constructor.
_SCALARS = {"int": "an integer", "float": "a number", "bool": "true or false", "None": "null"}


def _accepts(kinds: set[str], value: Any) -> bool:
    return (
        ("None" in kinds and value is None)
        or ("bool" in kinds and isinstance(value, bool))
        or ("int" in kinds and number_fault(value, integer=True) is None)
        or ("float" in kinds and is_real(value))
    )


def _kinds(annotation: Any, default: Any) -> set[str] | None:
    """The scalar kinds a parameter takes, from its (string) annotation or else its default."""
    if isinstance(annotation, str) and annotation:
        kinds = {part.strip() for part in annotation.split("|")}
        return kinds if kinds <= set(_SCALARS) and kinds - {"None"} else None
    if isinstance(default, bool):
        return {"bool"}
    if is_real(default):  # unannotated: an int default (weight_decay=0) takes any number
        return {"float"}
    return None


def _parameters(section: str, name: str) -> dict[str, tuple[Any, Any]] | None:
    """(annotation, default) of each argument the builder of ``section`` passes the named class."""
    if section.startswith("data."):
        from fastot.data import SAMPLERS as registry
    elif section == "networks.map":
        from fastot.nn import MAPS as registry
    elif section == "networks.potential":
        from fastot.nn import POTENTIALS as registry
    elif section == "algorithm":
        from fastot.algorithms import ALGORITHMS

        if name not in ALGORITHMS:
            return None
        cls, defaults = ALGORITHMS[name]
        return {f.name: (f.type, defaults.get(f.name, f.default)) for f in dataclasses.fields(cls) if f.init}
    else:
        from fastot.train.optimizers import OPTIMIZERS as registry
    if name not in registry:
        return None
    params = inspect.signature(registry[name]).parameters.values()
    return {p.name: (p.annotation, p.default) for p in params}


def _check_argument_types(cfg: DictConfig, section: str) -> None:
    """Numbers and booleans of a named section have the type its constructor takes, so that
    ``seed=abc`` style mistakes name their key instead of failing inside the constructor."""
    node = _select(cfg, section)
    params = _parameters(section, node.get("name"))
    if params is None:
        return  # an unknown name: the builder reports it
    for key in node:
        if key == "name" or key not in params or OmegaConf.is_missing(node, key):
            continue
        kinds = _kinds(*params[key])
        value = node[key]
        if kinds is not None and not _accepts(kinds, value):
            want = " or ".join(_SCALARS[k] for k in sorted(kinds, key=list(_SCALARS).index))
            raise ConfigError(f"{section}.{key}", f"must be {want}, got {value!r}")


def to_container(cfg: DictConfig, key: str) -> dict[str, Any]:
    return OmegaConf.to_container(_select(cfg, key), resolve=True)  # type: ignore[return-value]
