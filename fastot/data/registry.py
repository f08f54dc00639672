"""Name -> sampler constructor registry (image data sources register here too)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from fastot.registry import build_from, register

SAMPLERS: dict[str, Callable[..., Any]] = {}


def register_sampler(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return register(SAMPLERS, name)


def build_sampler(spec: dict[str, Any], key: str) -> Any:
    """Build a sampler from ``{'name': ..., **kwargs}``; errors name the config ``key``."""
    return build_from(SAMPLERS, key, spec)


def image_shape(spec: dict[str, Any]) -> tuple[int, int] | None:
    """(channels, size) of the images a sampler spec yields, from the spec or the constructor's
    defaults (or its fixed ``image_shape``), without opening any data; None for non-image samplers."""
    fn = SAMPLERS.get(spec.get("name", ""))
    if hasattr(fn, "image_shape"):
        return fn.image_shape
    params = inspect.signature(fn).parameters if fn is not None else {}
    if "size" not in params:
        return None

    def value(name: str, fallback: int) -> int:
        if name in spec:
            return int(spec[name])
        default = params[name].default if name in params else inspect.Parameter.empty
        return fallback if default is inspect.Parameter.empty else int(default)

    return value("channels", 3), value("size", 0)
