"""Name -> sampler constructor registry (image data sources register here too)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SAMPLERS: dict[str, Callable[..., Any]] = {}


def register_sampler(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        SAMPLERS[name] = fn
        return fn

    return deco


def build_sampler(spec: dict[str, Any], key: str) -> Any:
    """Build a sampler from ``{'name': ..., **kwargs}``; errors name the config ``key``."""
    from fastot.nn.registry import build_from

    return build_from(SAMPLERS, key, spec)
