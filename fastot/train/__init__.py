"""Training: the loop, checkpoints, EMA, logging and the ``python -m fastot.train`` entry point.

Submodules are imported lazily so that ``fastot.train.errors`` stays importable from
anywhere in the package without pulling in the loop.
"""

from fastot.train.errors import ConfigError, DivergenceError

__all__ = ["ConfigError", "DivergenceError"]
