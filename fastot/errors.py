"""Errors every layer of fastot raises and the command-line entry points turn into one-line messages.

The bottom layer: it imports nothing from fastot, so any module may raise these.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A bad configuration value; ``key`` is the dotted config key at fault."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class ConfigWarning(UserWarning):
    """A configuration that runs, but not as its other values ask; ``key`` is the config key to look at."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class DivergenceError(RuntimeError):
    """A loss became NaN or Inf; the last good checkpoint is left in place."""

    def __init__(self, step: int, name: str, value: float, checkpoint: str | None) -> None:
        where = f"; last good checkpoint: {checkpoint}" if checkpoint else "; no checkpoint was written yet"
        super().__init__(f"training diverged at step {step} ({name} = {value}){where}")
        self.step = step


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full, read-only, quota); nothing older was touched."""

    def __init__(self, path: str, reason: str, previous: str | None, run_dir: str) -> None:
        kept = f"the previous checkpoint {previous} is intact" if previous else "no earlier checkpoint exists"
        resume = f"free space and continue with --resume {run_dir}"
        super().__init__(f"could not write checkpoint {path} ({reason}); {kept}; {resume}")
