"""Every experiment of ``python -m fastot.reproduce`` by name: the toys', then the images', and the groups."""

from __future__ import annotations

from fastot.reproduce.images import GROUPS, IMAGES
from fastot.reproduce.spec import Experiment
from fastot.reproduce.toys import TOYS

EXPERIMENTS: dict[str, Experiment] = TOYS | IMAGES
__all__ = ["EXPERIMENTS", "GROUPS", "estimate_minutes"]


def estimate_minutes(exp: Experiment, budget: str) -> float:
    from fastot.algorithms import build_algorithm
    from fastot.config import load_config, to_container

    total = 0.0
    for row in exp.rows:
        overrides = row.budget_overrides(budget)
        if overrides is None or budget not in exp.budgets:
            continue
        cfg = load_config(row.preset, overrides, allow_missing=True)
        if cfg.train.iterations is not None:
            iterations = int(cfg.train.iterations)
        else:  # S-JKO: the phases set the length
            iterations = int(build_algorithm(to_container(cfg, "algorithm")).default_iterations() or 0)
        total += iterations * (row.ms_per_iteration or exp.ms_per_iteration)
    return total / 60000
