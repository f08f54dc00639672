"""Name -> constructor registries for transport maps and potentials.

The trainer builds both networks from the config by name, so image networks
(NCSN++, DCGAN, ...) plug in later with one ``@register_map`` line.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from fastot.train.errors import ConfigError

MAPS: dict[str, Callable[..., nn.Module]] = {}
POTENTIALS: dict[str, Callable[..., nn.Module]] = {}
# Per network, the keyword arguments that shrink it to a few-second CPU smoke test (``--smoke``):
# the same layout at a small width.
SMOKE: dict[tuple[str, str], dict[str, Any]] = {}


def register_map(
    name: str, smoke: dict[str, Any] | None = None
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        MAPS[name] = fn
        SMOKE[("map", name)] = dict(smoke or {})
        return fn

    return deco


def register_potential(
    name: str, smoke: dict[str, Any] | None = None
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        POTENTIALS[name] = fn
        SMOKE[("potential", name)] = dict(smoke or {})
        return fn

    return deco


def build_from(
    registry: dict[str, Callable[..., Any]], kind: str, spec: dict[str, Any], **implied: Any
) -> Any:
    """Call ``registry[spec['name']]`` with the remaining keys; unknown names or keys are config errors.

    ``implied`` holds arguments the trainer derives (e.g. ``dim`` from the data) unless the spec sets them.
    """
    spec = dict(spec)
    name = spec.pop("name", None)
    if name not in registry:
        raise ConfigError(f"{kind}.name", f"unknown {kind} {name!r}; choose from {sorted(registry)}")
    ctor = registry[name]
    params = inspect.signature(ctor).parameters
    for key in spec:
        if key not in params:
            raise ConfigError(f"{kind}.{key}", f"{name!r} takes no argument {key!r}")
    kwargs = {k: v for k, v in implied.items() if k in params}
    kwargs.update(spec)
    return ctor(**kwargs)


def build_map(spec: dict[str, Any], **implied: Any) -> nn.Module:
    return build_from(MAPS, "networks.map", spec, **implied)


def build_potential(spec: dict[str, Any], **implied: Any) -> nn.Module:
    return build_from(POTENTIALS, "networks.potential", spec, **implied)
