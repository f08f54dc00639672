"""The algorithms' hyperparameter checks; each error is a ConfigError naming ``algorithm.<key>``."""

from __future__ import annotations

from typing import Any

from fastot.checks import number_fault
from fastot.errors import ConfigError
from fastot.ops.psi_star import PSI_KINDS


def kind(key: str, value: str) -> None:
    if value not in PSI_KINDS:
        raise ConfigError(f"algorithm.{key}", f"unknown Psi* kind {value!r}; choose from {list(PSI_KINDS)}")


def choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"algorithm.{key}", f"{value!r} is not one of {list(choices)}")


def number(key: str, value: float, positive: bool = False) -> None:
    """A finite non-negative (or, with ``positive``, positive) number: NaN or inf would reach the
    step and poison the weights before the NaN guard could name the key."""
    if number_fault(value, positive=positive, nonneg=True):
        want = "positive" if positive else "non-negative"
        raise ConfigError(f"algorithm.{key}", f"must be a {want} number, got {value!r}")
