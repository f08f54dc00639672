"""What an experiment of ``python -m fastot.reproduce`` is: rows of presets plus overrides, per budget.

Shared by the toy experiments (:mod:`fastot.reproduce.toys`) and the image ones
(:mod:`fastot.reproduce.images`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# cpu: short runs for a CPU; paper: the papers' schedules (toys); long: a longer CPU budget (images).
BUDGETS = ("cpu", "paper", "long")


@dataclass
class Row:
    label: str
    preset: str
    overrides: list[str] = field(default_factory=list)
    cpu: list[str] = field(default_factory=list)  # overrides for the CPU budget
    paper: list[str] = field(default_factory=list)  # overrides for the paper budget (often none)
    paper_value: str = "—"
    ms_per_iteration: float | None = None  # when the row's step costs differ from its experiment's
    long: list[str] | None = None  # overrides for the long budget; None: the row has no long run
    max_seeds: int | None = None  # run only the first this many of --seeds (ablations)
    run_as: str | None = None  # the run directory's name when another row shares this row's runs

    def budget_overrides(self, budget: str) -> list[str] | None:
        """The row's overrides for ``budget``, or None when the row does not run at that budget."""
        extra = {"cpu": self.cpu, "paper": self.paper, "long": self.long}[budget]
        return None if extra is None else [*self.overrides, *extra]


@dataclass
class Experiment:
    title: str
    source: str  # the paper's table or figure
    rows: list[Row]
    extract: Callable[[Path], dict[str, float]]
    ms_per_iteration: float  # one idle thread of a 2-core CPU (two --jobs: 1.3-2x); for --list
    exact: bool = True  # compare with fastot.groundtruth
    floor: Callable[[Path], dict[str, float]] | None = None  # what the exact solution itself scores
    budgets: tuple[str, ...] = ("cpu", "paper")
    # Images: writes the figure of the finished runs (sample grids) instead of the toy plot.
    figure: Callable[[dict[str, list[Path]], Path], None] | None = None
    notes: str = ""  # printed under the table: what the columns mean


def run_name(row: Row) -> str:
    """The slug of a row's run directories (``run_as`` when the row shares another's runs)."""
    label = row.run_as or row.label
    return "-".join("".join(c if c.isalnum() or c == "." else " " for c in label.lower()).split())


def iters(n: int) -> list[str]:
    return [f"train.iterations={n}"]


def sjko_phases(phases: int, init: int, per_phase: int) -> list[str]:
    return [
        f"algorithm.num_phases={phases}",
        f"algorithm.init_iterations={init}",
        f"algorithm.phase_iterations={per_phase}",
    ]
