"""``python -m fastot.info``: where fastot comes from, which kernels loaded, why not, and the fix.

``--require cpp`` (repeatable; cpp, cuda or triton) exits with status 1 and a one-line reason
when that backend did not load, so that scripts fail instead of running on the eager fallback.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import torch

import fastot
from fastot._extension import LOADED, NOT_LOADED, PACKAGE_DIR, SOURCE_ROOT, STATUS, rebuild_command
from fastot.ops._backend import available

BACKEND_NAMES = ("cpp", "cuda", "triton")


def _triton_version() -> str:
    try:
        import triton
    except ImportError:
        return "not installed"
    return triton.__version__


def _shadowed_install() -> Path | None:
    """An installed fastot that the imported source checkout hides (it comes later on sys.path)."""
    for entry in sys.path:
        pkg = Path(entry or ".").resolve() / "fastot"
        if pkg != PACKAGE_DIR and (pkg / "__init__.py").is_file():
            return pkg
    return None


def _origin() -> str:
    line = f"fastot {fastot.__version__} imported from {PACKAGE_DIR}"
    if SOURCE_ROOT is None:
        return line
    shadowed = _shadowed_install()
    return line + (
        " (a source checkout" + (f"; it shadows the installed fastot in {shadowed}" if shadowed else "") + ")"
    )


def stale_sources() -> list[Path]:
    """In a source checkout, the C++/CUDA sources changed after the loaded extension was built."""
    if SOURCE_ROOT is None or not STATUS.cpp:
        return []
    built = min(os.path.getmtime(STATUS.origin[b]) for b in ("cpp", "cuda") if b in STATUS.origin)
    sources = [p for p in sorted((SOURCE_ROOT / "csrc").rglob("*")) if p.is_file()]
    return [p for p in sources if p.stat().st_mtime > built]


def _compiled_state() -> tuple[str, str]:
    """One line on the compiled kernels' state, and the one command that fixes it ("" if none)."""
    if STATUS.state == LOADED:
        stale = stale_sources()
        if not stale:
            return "compiled kernels: loaded", ""
        names = ", ".join(str(p.relative_to(SOURCE_ROOT)) for p in stale[:3])  # type: ignore[arg-type]
        more = f" and {len(stale) - 3} more" if len(stale) > 3 else ""
        return f"compiled kernels: loaded, but {names}{more} changed after they were built", rebuild_command()
    if STATUS.state == NOT_LOADED:
        return f"compiled kernels: built but not loaded: {STATUS.why['cpp']}", STATUS.fix["cpp"]
    # "not built: ..." or "disabled by ..."
    return f"compiled kernels: {STATUS.why['cpp']}", STATUS.fix["cpp"]


def _backend_line(name: str) -> str:
    if getattr(STATUS, name):
        return f"  {name:7s} loaded from {STATUS.origin[name]}"
    if name in ("cpp", "cuda") and STATUS.state != LOADED:
        return f"  {name:7s} unavailable: see compiled kernels above"
    line = f"  {name:7s} unavailable: {STATUS.why[name]}"
    fix = STATUS.fix.get(name)
    if fix and fix != STATUS.fix.get("cpp"):  # cpp's fix is the last line
        line += f" (fix: {fix})"
    return line


def report() -> str:
    state, fix = _compiled_state()
    lines = [
        _origin(),
        f"python {platform.python_version()} on {platform.machine()}",
        f"torch {torch.__version__} (CUDA {torch.version.cuda or 'none'}; "
        f"GPU visible: {torch.cuda.is_available()}; threads: {torch.get_num_threads()})",
        f"triton {_triton_version()} (TRITON_INTERPRET={os.environ.get('TRITON_INTERPRET', '0')})",
        state,
    ]
    if STATUS.build:
        lines.append(
            f"built against torch {STATUS.build.get('TORCH_VERSION')}, "
            f"CUDA kernels {'yes' if STATUS.build.get('WITH_CUDA') else 'no'} "
            f"({STATUS.build.get('WHY_CUDA')})"
        )
    lines.append("backends:")
    lines += [_backend_line(name) for name in BACKEND_NAMES]
    lines.append(f"usable on cpu tensors: {', '.join(available('cpu'))}")
    if torch.cuda.is_available():
        lines.append(f"usable on cuda tensors: {', '.join(available('cuda'))}")
    env = os.environ.get("FASTOT_BACKEND")
    lines.append(f"FASTOT_BACKEND={env}" if env else "FASTOT_BACKEND unset (auto)")
    lines.append(f"fix: {fix}" if fix else "fix: nothing to fix")
    return "\n".join(lines)


def missing(required: list[str]) -> list[str]:
    """One line per required backend that did not load: the reason and the fix."""
    return [
        f"fastot.info: --require {name}: {STATUS.why[name]}"
        + (f"; fix: {STATUS.fix[name]}" if STATUS.fix.get(name) else "")
        for name in required
        if not getattr(STATUS, name)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastot.info", description=__doc__)
    parser.add_argument(
        "--require",
        action="append",
        default=[],
        choices=BACKEND_NAMES,
        help="exit with status 1 unless this backend loaded (repeatable)",
    )
    args = parser.parse_args(argv)
    print(report(), flush=True)
    problems = missing(args.require)
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
