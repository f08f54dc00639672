"""Config validation: every value is checked when the config loads, and each error names its dotted key."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from fastot.checks import is_real, number_fault
from fastot.errors import ConfigError

# Sections whose keys depend on the chosen name (data samplers, networks, algorithm, optimisers): a
# preset replaces them whole. The other sections are strict (an unknown key is an error); these are
# open to the merge and checked here against the named class's arguments, naming the dotted key.
OPEN_SECTIONS = (
    "data.source",
    "data.target",
    "networks.map",
    "networks.potential",
    "algorithm",
    "optim.map",
    "optim.potential",
)


def select(cfg: DictConfig, dotted: str) -> Any:
    """The node or value at a dotted key, None where there is none."""
    return OmegaConf.select(cfg, dotted)


def validate(cfg: DictConfig, allow_missing: bool = False) -> None:
    """Every value the trainer reads, and the numbers and booleans of the named sections; with
    ``allow_missing``, unset required values (``???``) pass."""
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
    # inf passes: clipping at an infinite norm leaves the gradients alone. NaN would make them NaN.
    if clip is not None and (number_fault(clip, positive=True, finite=False) or clip != clip):
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
        if not isinstance(select(cfg, key), bool):
            raise ConfigError(key, f"must be true or false, got {select(cfg, key)!r}")
    if not (isinstance(cfg.train.compile, bool) or cfg.train.compile == "step"):
        raise ConfigError("train.compile", f"must be true, false or step, got {cfg.train.compile!r}")
    if not isinstance(cfg.eval.metrics, (list, ListConfig)):
        raise ConfigError("eval.metrics", f"must be a list such as [kl_knn, energy], got {cfg.eval.metrics}")
    for section in OPEN_SECTIONS:
        if "name" not in select(cfg, section):
            raise ConfigError(f"{section}.name", "missing")
    for kind in ("map", "potential"):
        _check_optimizer(cfg, f"optim.{kind}")
    for section in OPEN_SECTIONS:
        _check_argument_types(cfg, section)


def _integer(cfg: DictConfig, key: str, allow_none: bool = False, allow_zero: bool = False) -> None:
    """A positive integer (with ``allow_zero``, a non-negative one), or null with ``allow_none``."""
    value = select(cfg, key)
    if value is None and allow_none:
        return
    if number_fault(value, integer=True, positive=not allow_zero, nonneg=allow_zero):
        want = "non-negative" if allow_zero else "positive"
        raise ConfigError(key, f"must be a {want} integer, got {value!r}")


def _number(
    cfg: DictConfig, key: str, positive: bool = False, below: float | None = None, allow_none: bool = False
) -> None:
    """A finite number >= 0 (> 0 with ``positive``) and under ``below``, or null with ``allow_none``."""
    value = select(cfg, key)
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
    node = select(cfg, key)
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


def parameters(section: str, name: str) -> dict[str, tuple[Any, Any]] | None:
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
        from fastot.config.optimizers import OPTIMIZERS as registry
    if name not in registry:
        return None
    params = inspect.signature(registry[name]).parameters.values()
    return {p.name: (p.annotation, p.default) for p in params}


def _check_argument_types(cfg: DictConfig, section: str) -> None:
    """Numbers and booleans of a named section have the type its constructor takes, so that
    ``seed=abc`` style mistakes name their key instead of failing inside the constructor."""
    node = select(cfg, section)
    params = parameters(section, node.get("name"))
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


def check_open_keys(cfg: DictConfig, layer: DictConfig, file: Path) -> None:
    """Unknown keys a YAML file puts in an open section are errors naming the key and the file
    (the builders would name the key only, and only once the run starts)."""
    for section in OPEN_SECTIONS:
        if select(layer, section) is None:
            continue
        spec = select(cfg, section)
        name = spec.get("name")
        accepted = parameters(section, name) if isinstance(name, str) else None
        if accepted is None:
            continue  # an unknown name: the builder reports it, naming <section>.name
        for key in spec:
            if key != "name" and (key not in accepted or key == "params"):
                raise ConfigError(f"{section}.{key}", f"unknown config key in {file}")
