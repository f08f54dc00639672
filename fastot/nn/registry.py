"""Name -> constructor registries for transport maps and potentials.

The trainer builds both networks from the config by name, so image networks
(NCSN++, DCGAN, ...) plug in later with one ``@register_map`` line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from fastot.registry import build_from, register

Constructor = Callable[..., nn.Module]

MAPS: dict[str, Constructor] = {}
POTENTIALS: dict[str, Constructor] = {}
# Per network, the keyword arguments that shrink it to a few-second CPU smoke test (``--smoke``):
# the same layout at a small width.
SMOKE: dict[tuple[str, str], dict[str, Any]] = {}


def register_map(name: str, smoke: dict[str, Any] | None = None) -> Callable[[Constructor], Constructor]:
    SMOKE[("map", name)] = dict(smoke or {})
    return register(MAPS, name)


def register_potential(
    name: str, smoke: dict[str, Any] | None = None
) -> Callable[[Constructor], Constructor]:
    SMOKE[("potential", name)] = dict(smoke or {})
    return register(POTENTIALS, name)


def build_map(spec: dict[str, Any], **implied: Any) -> nn.Module:
    return build_from(MAPS, "networks.map", spec, **implied)


def build_potential(spec: dict[str, Any], **implied: Any) -> nn.Module:
    return build_from(POTENTIALS, "networks.potential", spec, **implied)
