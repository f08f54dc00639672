"""Named OT algorithms on the unified step; ``build_algorithm({'name': ..., **overrides})``.

Each name is a class plus its paper defaults (the image-scale defaults: tau on summed costs,
R1 0.2). Toy presets override what their papers change.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastot.algorithms.base import StepContext, UnifiedOT
from fastot.algorithms.sjko import SJKO
from fastot.algorithms.weak import WeakNOT
from fastot.errors import ConfigError
from fastot.ops.psi_star import PSI_KINDS

_SP = "softplus"
ALGORITHMS: dict[str, tuple[type[UnifiedOT], dict[str, Any]]] = {
    # WGAN (Arjovsky et al.): c = 0, g = Id, weight clipping, 5 critic steps.
    "wgan": (UnifiedOT, {"regularizer": "clip", "clip": 0.01, "k_v": 5}),
    # WGAN-GP (Gulrajani et al.): gradient penalty lambda = 10 on interpolates.
    "wgan-gp": (UnifiedOT, {"regularizer": "gp", "reg_weight": 10.0, "k_v": 5}),
    # OTM (Rout et al.): tau > 0, g = Id, R1.
    "otm": (UnifiedOT, {"tau": 1e-3, "regularizer": "r1", "reg_weight": 0.2}),
    # UOTM (Choi et al. 2023a): Psi* on both potential terms, g3 = Id.
    "uotm": (
        UnifiedOT,
        {"tau": 1e-3, "psi_source": "kl", "psi_target": "kl", "regularizer": "r1", "reg_weight": 0.2},
    ),
    "uotm-nocost": (
        UnifiedOT,
        {"tau": 0.0, "psi_source": _SP, "psi_target": _SP, "regularizer": "r1", "reg_weight": 0.2},
    ),
    "uotm-fixed-source": (
        UnifiedOT,
        {"tau": 1e-3, "psi_source": "identity", "psi_target": "kl", "regularizer": "r1", "reg_weight": 0.2},
    ),
    # UOTM-SD: alpha * Psi*(t / alpha), alpha linear 0.2 -> 5 over the first 75% of iterations.
    "uotm-sd": (
        UnifiedOT,
        {
            "tau": 1e-3,
            "psi_source": _SP,
            "psi_target": _SP,
            "regularizer": "r1",
            "reg_weight": 0.2,
            "alpha_schedule": "linear",
            "alpha_min": 0.2,
            "alpha_max": 5.0,
            "schedule_fraction": 0.75,
        },
    ),
    "sjko": (SJKO, {"psi_target": "kl", "regularizer": "none"}),
    # NOT / KNOT toy recipe: 10 map steps per potential step, Z = 4.
    "not": (WeakNOT, {"weak_cost": "weak_quadratic", "k_t": 10, "gamma": 0.66}),
    "knot": (WeakNOT, {"weak_cost": "energy", "k_t": 10, "gamma": 1.0}),
}


def build_algorithm(spec: dict[str, Any]) -> UnifiedOT:
    """Instantiate the algorithm ``spec['name']`` with its defaults overridden by the other keys."""
    spec = dict(spec)
    name = spec.pop("name", None)
    if name not in ALGORITHMS:
        raise ConfigError("algorithm.name", f"unknown algorithm {name!r}; choose from {sorted(ALGORITHMS)}")
    cls, defaults = ALGORITHMS[name]
    fields = {f.name for f in dataclasses.fields(cls)}
    for key in spec:
        if key not in fields:
            raise ConfigError(f"algorithm.{key}", f"{name!r} has no parameter {key!r}")
    algo = cls(**{**defaults, **spec})
    algo.registered_name = name  # for logs only
    return algo


__all__ = ["ALGORITHMS", "PSI_KINDS", "SJKO", "StepContext", "UnifiedOT", "WeakNOT", "build_algorithm"]
