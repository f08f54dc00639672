"""Fixtures shared by the trainer tests."""

from __future__ import annotations

from collections.abc import Iterator

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


@pytest.fixture
def nan_potential() -> Iterator[str]:
    """Registers the diverging potential for one test; yields its registry name."""
    register_potential(NAN_POTENTIAL)(_NaNAfter)
    yield NAN_POTENTIAL
    POTENTIALS.pop(NAN_POTENTIAL)
