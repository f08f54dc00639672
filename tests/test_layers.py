"""fastot's layers import only downwards.

Bottom to top: errors, the number rule and the name registry; the ops with their compiled
kernels; networks, data, algorithms, metrics (the toy metrics and fastot.eval's FID,
precision/recall and Inception Score, which training and evaluation both compute) and exact
solutions; a run's config and sampling (a trained map rebuilt from its run directory, seeded
draws); the trainer; the reproductions and the ``python -m`` entry points (``python -m
fastot.eval`` among them). Every ``import`` statement counts, also the ones inside functions: a
lazy import still ties the lower layer to the upper one. There are no exceptions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Module-name prefixes per layer, bottom first. A module belongs to the layer of its longest
# matching prefix (``fastot.eval.__main__`` tops ``fastot.eval``); ``fastot`` itself (the public
# op API) matches only exactly.
LAYERS: list[tuple[str, ...]] = [
    ("fastot.errors", "fastot.checks", "fastot.registry", "fastot.rundir"),
    ("fastot", "fastot._extension", "fastot._build_info", "fastot.ops", "fastot.kernels"),
    (
        "fastot.nn",
        "fastot.data",
        "fastot.algorithms",
        "fastot.metrics",
        "fastot.eval",
        "fastot.groundtruth",
        "fastot.groundtruth_gaussian",
    ),
    ("fastot.config", "fastot.sampling"),  # a run's config (loading, checks) and its trained map
    ("fastot.train",),
    (
        "fastot.eval.__main__",
        "fastot.reproduce",
        "fastot.train.__main__",
        "fastot.sample",
        "fastot.info",
        "fastot.demo",
        "fastot.bench_report",
    ),
    ("fastot.gpucheck",),  # runs the info, tests and benches and renders with bench_report
]


def _modules() -> dict[str, Path]:
    """Every module of the package by its import name; the top-level kernels/ is fastot.kernels."""
    found = {}
    for package, base in (("fastot", ROOT / "fastot"), ("fastot.kernels", ROOT / "kernels")):
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def layer_of(module: str) -> int | None:
    best, best_len = None, -1
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            exact_only = prefix == "fastot"
            hit = module == prefix or (not exact_only and module.startswith(prefix + "."))
            if hit and len(prefix) > best_len:
                best, best_len = i, len(prefix)
    return best


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def imported_modules(module: str) -> set[str]:
    """The fastot modules ``module`` imports anywhere in its body (functions included)."""
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    package = module if _is_package(module) else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # `from fastot import ops` imports the module fastot.ops; `from fastot.ops import x` a name.
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in MODULES else base)
    return {m for m in out if m == "fastot" or m.startswith("fastot.")}


def test_every_module_has_a_layer():
    assert [m for m in MODULES if layer_of(m) is None] == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_point_down(module):
    mine = layer_of(module)
    upward = [
        f"{module} (layer {mine}) imports {target} (layer {layer_of(target)})"
        for target in sorted(imported_modules(module))
        if (layer_of(target) or 0) > (mine or 0)
    ]
    assert upward == []


def test_metrics_sit_below_the_trainer_and_their_command_line_on_top():
    assert layer_of("fastot.eval.fid") == layer_of("fastot.metrics") < layer_of("fastot.sampling")
    assert layer_of("fastot.sampling") < layer_of("fastot.train.evaluate") < layer_of("fastot.eval.__main__")


def test_reading_a_run_needs_no_trainer():
    # python -m fastot.eval and fastot.sample check and load a run without importing fastot.train.
    for module in ("fastot.eval.__main__", "fastot.sample", "fastot.sampling", "fastot.config"):
        assert not [m for m in imported_modules(module) if m.startswith("fastot.train")], module


def test_catches_a_lazy_upward_import(tmp_path, monkeypatch):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from fastot.train import loop\n")
    monkeypatch.setitem(MODULES, "fastot.nn.bad", bad)
    assert "fastot.train.loop" in imported_modules("fastot.nn.bad")
    assert layer_of("fastot.train.loop") > layer_of("fastot.nn.bad")


# A module past this many lines is doing several jobs: split it by job rather than raise the limit.
MAX_LINES = 400


def test_no_module_is_over_the_line_limit():
    sources = [*MODULES.values(), *sorted((ROOT / "bench").glob("*.py"))]
    lines = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in sources}
    assert {name: n for name, n in lines.items() if n > MAX_LINES} == {}
