"""Fixtures shared by the trainer tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fastot.nn import POTENTIALS, register_potential
from fastot.nn.toy import MLPPotential

NAN_POTENTIAL = "test_nan_after"


class _NaNAfter(MLPPotential):
    """A potential that returns NaN from its ``calls``-th call on: a run that diverges on cue."""

    def __init__(self, dim: int, calls: int = 30) -> None:
        super().__init__(dim, width=8)
        self.left = calls

    def forward(self, y):
        self.left -= 1
        out = super().forward(y)
        return out if self.left > 0 else out * float("nan")


def _diverging_argv(out: Path, *extra: str, calls: int = 22) -> list[str]:
    # uotm-outlier-1d without R1: 5 potential steps of 1 potential call (fakes and data together)
    # and 1 map step of 1 call, 6 calls per step; call 22 falls in step 4 (steps count from 1, as in
    # metrics.jsonl).
    return [
        "--out",
        str(out),
        "train.progress=false",
        "train.threads=1",
        f"networks.potential={{name: {NAN_POTENTIAL}, calls: {calls}}}",
        "algorithm.regularizer=none",
        "train.iterations=20",
        "train.batch_size=16",
        *extra,
    ]


@pytest.fixture
def nan_potential() -> Iterator[Callable[..., list[str]]]:
    """Registers the diverging potential for one test; yields ``argv(out, *overrides)``, the
    ``python -m fastot.train`` arguments of a uotm-outlier-1d run that diverges at step 4."""
    register_potential(NAN_POTENTIAL)(_NaNAfter)
    yield _diverging_argv
    POTENTIALS.pop(NAN_POTENTIAL)
