"""``python -m fastot.gpucheck``: its stages, its report, and what it says when it cannot run.

The whole CPU dry run is a CI stage (.ci/run); these check the pieces that decide what a GPU owner
reads: the pip line of a missing package, a failed stage's tail, the deadline.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import torch

from fastot import gpucheck
from fastot.ops._library import op_names

ROOT = Path(__file__).resolve().parents[1]


def test_every_registered_op_has_a_bench_stage(tmp_path: Path) -> None:
    names = [s.name for s in gpucheck.stages(ROOT, tmp_path, dry=True)]
    assert op_names() and all(f"bench {op}" in names for op in op_names())
    assert all((ROOT / "bench" / f"bench_{op}.py").exists() for op in op_names())


def test_a_missing_package_is_named_with_its_pip_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpucheck, "REQUIREMENTS", ("torch", "omegaconf-not-installed>=2.3", "nosuchpkg"))
    missing = gpucheck.missing_requirements()
    assert missing == ["omegaconf-not-installed>=2.3", "nosuchpkg"]
    assert gpucheck.pip_line(missing) == 'pip install "omegaconf-not-installed>=2.3" nosuchpkg'


def test_a_failed_stage_shows_its_tail_and_the_next_stage_runs(tmp_path: Path) -> None:
    fail = gpucheck.Stage("fails", [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], 30)
    ok = gpucheck.Stage("passes", [sys.executable, "-c", "print('fine')"], 30)
    deadline = time.monotonic() + 60
    for s in (fail, ok):
        gpucheck.run_stage(s, tmp_path, deadline)
    assert fail.status == "FAILED (exit 3)" and ok.status == "ok"
    text = gpucheck.report({"GPU": "none"}, [], [fail, ok], dry=True, sha="abc")
    assert "| fails | FAILED (exit 3) |" in text and "### fails: FAILED (exit 3)" in text and "boom" in text
    assert "### passes" not in text  # only failures get their output


def test_a_hanging_stage_times_out_and_later_ones_are_skipped_past_the_deadline(tmp_path: Path) -> None:
    hang = gpucheck.Stage("hangs", [sys.executable, "-c", "import time; time.sleep(30)"], 1)
    late = gpucheck.Stage("late", [sys.executable, "-c", "pass"], 30)
    gpucheck.run_stage(hang, tmp_path, time.monotonic() + 20)
    assert hang.status == "TIMED OUT after 1 s"
    gpucheck.run_stage(late, tmp_path, time.monotonic() + 1)
    assert late.status == "skipped (out of time)"


def test_a_slow_stage_leaves_a_later_stage_its_reserve(tmp_path: Path) -> None:
    slow = gpucheck.Stage("slow", [sys.executable, "-c", "import time; time.sleep(30)"], 30)
    steps = gpucheck.Stage("steps", [sys.executable, "-c", "pass"], 30, reserve_s=6)
    start = time.monotonic()
    gpucheck.run_stages([slow, steps], tmp_path, start + 12)
    assert slow.status.startswith("TIMED OUT") and slow.seconds < 8
    assert steps.status == "ok" and time.monotonic() - start < 12


def test_the_training_steps_have_a_reserve(tmp_path: Path) -> None:
    todo = gpucheck.stages(ROOT, tmp_path, dry=True)
    assert todo[-1].name == "bench training steps" and todo[-1].reserve_s > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_without_a_gpu_it_points_at_the_dry_run(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as e:
        gpucheck.main(["--out", "unused.md"])
    assert e.value.code == 2 and "--cpu-dry-run" in capsys.readouterr().err


def test_outside_the_repository_it_says_where_to_run(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        gpucheck.main(["--cpu-dry-run"])
    assert "repository root" in capsys.readouterr().err


def test_a_wheels_argument_that_is_not_a_folder_is_named(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(gpucheck, "REQUIREMENTS", ("nosuchpkg",))
    with pytest.raises(SystemExit):
        gpucheck.main(["--cpu-dry-run", "--wheels", str(tmp_path / "absent")])
    assert "--wheels" in capsys.readouterr().err
