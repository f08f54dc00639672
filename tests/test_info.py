"""``python -m fastot.info`` tells where fastot comes from, the kernels' state and the one fix.

The states are produced for real in a scratch copy of the source checkout (the layout a user's
clone has), run from its root as the README's commands are.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import fastot
from fastot import info
from fastot._extension import LOADED, NOT_BUILT, PACKAGE_DIR, STATUS

CHECKOUT = Path(__file__).resolve().parents[1]
BUILD_ARTEFACTS = shutil.ignore_patterns("*.so", "_build_info.py", "__pycache__")


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A checkout as cloned: sources only, no compiled extension, no build record."""
    root = tmp_path / "fastot-clone"
    for name in ("fastot", "kernels", "csrc"):
        shutil.copytree(CHECKOUT / name, root / name, ignore=BUILD_ARTEFACTS)
    shutil.copy2(CHECKOUT / "setup.py", root / "setup.py")
    return root


def _build_record(root: Path, torch_version: str) -> None:
    (root / "fastot" / "_build_info.py").write_text(
        f"TORCH_VERSION = {torch_version!r}\nTORCH_CUDA_VERSION = None\n"
        "WITH_CUDA = False\nWHY_CUDA = 'torch is a CPU build'\nDEBUG = False\n"
    )


def _info(root: Path, *args: str) -> subprocess.CompletedProcess:
    unset = ("PYTHONPATH", "FASTOT_DISABLE_EXTENSIONS", "TRITON_INTERPRET")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "-m", "fastot.info", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _state(res: subprocess.CompletedProcess) -> str:
    return next(line for line in res.stdout.splitlines() if line.startswith("compiled kernels:"))


def _fix(root: Path) -> str:
    return f"cd {root} && pip install --no-build-isolation ."


def _assert_require_fails(res: subprocess.CompletedProcess, reason: str, fix: str) -> None:
    assert res.returncode == 1, res.stdout + res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("fastot.info: --require cpp: ") and reason in last, last
    assert last.endswith(f"; fix: {fix}"), last


def test_fresh_clone_is_not_built_and_says_how_to_build(clone):
    res = _info(clone, "--require", "cpp")
    out = res.stdout.splitlines()
    # The checkout shadows any installed fastot: info says which one was imported.
    origin = f"fastot {fastot.__version__} imported from {clone / 'fastot'} (a source checkout"
    assert out[0].startswith(origin), out[0]
    assert _state(res) == (
        f"compiled kernels: not built: the source checkout {clone} has no compiled extension "
        "(no fastot/_build_info.py)"
    )
    assert out[-1] == f"fix: {_fix(clone)}"
    assert "usable on cpu tensors: eager" in out
    _assert_require_fails(res, "not built", _fix(clone))
    # Importing it warned once, with the same fix.
    assert res.stderr.count("RuntimeWarning") == 1 and _fix(clone) in res.stderr


def test_build_record_without_the_extension_names_the_missing_file(clone):
    _build_record(clone, torch.__version__)
    res = _info(clone, "--require", "cpp")
    state = _state(res)
    assert state.startswith("compiled kernels: built but not loaded: ")
    assert f"{clone / 'fastot' / '_build_info.py'} records a build, but no compiled fastot._C" in state
    assert res.stdout.splitlines()[-1] == f"fix: {_fix(clone)}"
    _assert_require_fails(res, "no compiled fastot._C", _fix(clone))


def test_build_for_another_torch_is_not_loaded(clone):
    _build_record(clone, "1.13.0")
    res = _info(clone, "--require", "cpp")
    assert _state(res) == (
        "compiled kernels: built but not loaded: fastot's compiled kernels were built against torch "
        f"1.13.0 but torch {torch.__version__} is running"
    )
    assert "built against torch 1.13.0, CUDA kernels no (torch is a CPU build)" in res.stdout
    assert res.stdout.splitlines()[-1] == f"fix: {_fix(clone)}"
    _assert_require_fails(res, "built against torch 1.13.0", _fix(clone))


def test_built_checkout_loads_its_kernels_and_flags_stale_sources(clone):
    assert STATUS.cpp, STATUS.why.get("cpp")
    so = Path(STATUS.origin["cpp"])
    shutil.copy2(so, clone / "fastot" / so.name)
    _build_record(clone, torch.__version__)
    os.utime(clone / "fastot" / so.name)  # built after every source
    res = _info(clone, "--require", "cpp")
    assert res.returncode == 0, res.stderr
    out = res.stdout.splitlines()
    assert _state(res) == "compiled kernels: loaded"
    assert f"  cpp     loaded from {clone / 'fastot' / so.name}" in out
    assert "usable on cpu tensors: eager, cpp" in out[-3]
    assert out[-1] == "fix: nothing to fix"
    assert "RuntimeWarning" not in res.stderr
    if _has_triton():
        # The top-level kernels/ is found as fastot.kernels.
        assert f"  triton  loaded from {clone / 'kernels'}" in out

    # A C++ source edited after the build: still loaded, but info says to rebuild.
    edited = clone / "csrc" / "fastot.cpp"
    later = (clone / "fastot" / so.name).stat().st_mtime + 10
    os.utime(edited, (later, later))
    res = _info(clone, "--require", "cpp")
    assert res.returncode == 0, res.stderr
    assert _state(res) == "compiled kernels: loaded, but csrc/fastot.cpp changed after they were built"
    assert res.stdout.splitlines()[-1] == f"fix: {_fix(clone)}"


def _has_triton() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def test_disabled_extensions_name_the_variable(clone):
    env_res = subprocess.run(
        [sys.executable, "-m", "fastot.info", "--require", "cpp"],
        cwd=clone,
        env={**os.environ, "FASTOT_DISABLE_EXTENSIONS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert _state(env_res) == "compiled kernels: disabled by FASTOT_DISABLE_EXTENSIONS=1"
    assert env_res.stdout.splitlines()[-1] == "fix: unset FASTOT_DISABLE_EXTENSIONS"
    _assert_require_fails(
        env_res, "disabled by FASTOT_DISABLE_EXTENSIONS=1", "unset FASTOT_DISABLE_EXTENSIONS"
    )


# --- in process: the report and --require against a given status ---


def test_report_of_this_process_names_where_fastot_was_imported_from():
    first = info.report().splitlines()[0]
    assert first.startswith(f"fastot {fastot.__version__} imported from {PACKAGE_DIR}")
    assert STATUS.state == LOADED


def test_require_passes_when_loaded_and_fails_with_one_line_per_missing_backend(monkeypatch, capsys):
    assert info.main(["--require", "cpp"]) == 0
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(STATUS, "cpp", False)
    monkeypatch.setattr(STATUS, "triton", False)
    monkeypatch.setattr(STATUS, "state", NOT_BUILT)
    monkeypatch.setitem(STATUS.why, "cpp", "not built: somewhere")
    monkeypatch.setitem(STATUS.fix, "cpp", "cd somewhere && pip install --no-build-isolation .")
    monkeypatch.setitem(STATUS.why, "triton", "Triton kernels unavailable: No module named 'triton'")
    monkeypatch.setitem(STATUS.fix, "triton", 'pip install "triton>=3.2"')
    assert info.main(["--require", "cpp", "--require", "triton"]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "fastot.info: --require cpp: not built: somewhere; "
        "fix: cd somewhere && pip install --no-build-isolation .",
        "fastot.info: --require triton: Triton kernels unavailable: No module named 'triton'; "
        'fix: pip install "triton>=3.2"',
    ]
    out = captured.out.splitlines()
    assert "compiled kernels: not built: somewhere" in out
    assert out[-1] == "fix: cd somewhere && pip install --no-build-isolation ."
    assert (
        "  triton  unavailable: Triton kernels unavailable: No module named 'triton' "
        '(fix: pip install "triton>=3.2")'
    ) in out


def test_require_rejects_an_unknown_backend(capsys):
    with pytest.raises(SystemExit) as err:
        info.main(["--require", "gpu"])
    assert err.value.code == 2
    assert "--require: invalid choice: 'gpu'" in capsys.readouterr().err
