"""Name -> constructor tables: what a config's ``name`` key picks (networks, samplers).

The bottom layer beside :mod:`fastot.errors`: networks and data register here without
importing each other.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from fastot.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


def register(table: dict[str, Callable[..., Any]], name: str) -> Callable[[F], F]:
    """A decorator that enters its function in ``table`` under ``name``."""

    def deco(fn: F) -> F:
        table[name] = fn
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
