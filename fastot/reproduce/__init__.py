"""The papers' experiments, side by side with the paper and the exact optimum.

``python -m fastot.reproduce``; the package's modules:

- :mod:`.spec`: what an experiment is (rows of presets plus overrides, per budget);
- :mod:`.toys` and :mod:`.images`: the experiments, with :mod:`.image_metrics`; :mod:`.experiments`
  names them all;
- :mod:`.runner`: one row and seed through ``python -m fastot.train``;
- :mod:`.optimum`: the toys' exact optima; :mod:`.tables`: the tables and figures; :mod:`.cli`: the
  command line.
"""

from fastot.reproduce.cli import main
from fastot.reproduce.experiments import EXPERIMENTS, GROUPS, estimate_minutes
from fastot.reproduce.runner import run_dir_of, run_one, run_overrides
from fastot.reproduce.spec import BUDGETS, Experiment, Row

__all__ = [
    "BUDGETS",
    "EXPERIMENTS",
    "GROUPS",
    "Experiment",
    "Row",
    "estimate_minutes",
    "main",
    "run_dir_of",
    "run_one",
    "run_overrides",
]
