"""Compatibility name: the errors live in :mod:`fastot.errors`, below every layer that raises them."""

from fastot.errors import ConfigError, DivergenceError

__all__ = ["ConfigError", "DivergenceError"]
