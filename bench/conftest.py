"""pytest configuration of the benchmark suite (``pytest bench/ --benchmark-only``).

The suite's files are named ``bench_*.py``; the hook below collects them when pytest is pointed
at ``bench/``, without changing what a plain ``pytest`` (testpaths = tests) collects.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import _allocator


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    # Files named on the command line are collected by pytest itself whatever their name.
    if parent.session.isinitpath(file_path):
        return None
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_configure(config: pytest.Config) -> None:
    _allocator.init_run()
