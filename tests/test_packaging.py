"""``pip install .`` ships every package of the source tree: pyproject.toml lists them by hand, so a new
subpackage left out of it would import from a checkout and be missing from an install."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]


def _source_packages() -> set[str]:
    found = set()
    for package, base in (("fastot", ROOT / "fastot"), ("fastot.kernels", ROOT / "kernels")):
        for init in base.rglob("__init__.py"):
            parts = init.parent.relative_to(base).parts
            found.add(".".join([package, *parts]))
    return found


def test_pyproject_lists_every_package() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(setuptools["packages"]) == _source_packages()
    assert setuptools["package-dir"]["fastot.kernels"] == "kernels"
