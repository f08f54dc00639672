"""The number rule every layer checks its arguments and settings with; each caller words its own error.

The bottom layer: it imports nothing from fastot, so the ops, the algorithms and the config all use it.
"""

from __future__ import annotations

import math


def is_real(value: object) -> bool:
    """An int or a float and not a bool: True is an int to Python but never a number to a user."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def number_fault(
    value: object,
    *,
    positive: bool = False,
    nonneg: bool = False,
    integer: bool = False,
    finite: bool = True,
) -> str | None:
    """What ``value`` fails to be, worded to follow "must be": "a number" (or "an integer") for the
    wrong type, then "finite", "> 0", ">= 0"; None when it is an acceptable number."""
    if not is_real(value) or (integer and not isinstance(value, int)):
        return "an integer" if integer else "a number"
    # An int is finite (and math.isfinite would overflow on a huge one that an integer check accepts).
    if finite and not integer and not math.isfinite(value):  # type: ignore[arg-type]
        return "finite"
    if positive and value <= 0:  # type: ignore[operator]
        return "> 0"
    if nonneg and value < 0:  # type: ignore[operator]
        return ">= 0"
    return None
