"""The run directory has one owner: no module but fastot.rundir spells a run file's name or reads
and writes the run's data files, and its writes are atomic."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from fastot import rundir
from fastot.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
# Names that are also ordinary words of the code (config keys, tensorboard tags) are checked as
# path components only: "<something> / 'name'".
FILE_NAMES = [rundir.CONFIG, rundir.METRICS, rundir.SUMMARY, rundir.SAMPLES, rundir.SAMPLES_GRID]
FILE_NAMES += [rundir.DIVERGED]
DIR_NAMES = [rundir.CHECKPOINTS, rundir.SNAPSHOTS, rundir.GRIDS, rundir.PLOTS, rundir.TENSORBOARD]


def _offences(text: str) -> list[str]:
    found = [n for n in FILE_NAMES if re.search(rf"[\"']{re.escape(n)}[\"']", text)]
    found += [n for n in DIR_NAMES if re.search(rf"/\s*[\"']{re.escape(n)}[\"']", text)]
    found += ["ckpt_"] if re.search(r"ckpt_(\{|\*|\(\\d)", text) else []  # file names, not ckpt_every
    return found


# torch.hub's own cache folder is also called checkpoints/; it is not a run directory.
NOT_RUN_DIRECTORIES = {"fastot/eval/inception.py"}


def test_no_module_but_rundir_spells_a_run_file_name() -> None:
    offences = {}
    for path in sorted((ROOT / "fastot").rglob("*.py")):
        name = str(path.relative_to(ROOT))
        if path.name == "rundir.py" or name in NOT_RUN_DIRECTORIES:
            continue
        if found := _offences(path.read_text()):
            offences[name] = found
    assert offences == {}


def test_the_check_sees_a_spelled_name() -> None:
    assert _offences('p = run_dir / "summary.json"') == ["summary.json"]
    assert _offences('p = run.run_dir / "checkpoints" / x') == ["checkpoints"]
    assert _offences('cfg = {"plots": True, "ckpt_every": 5}') == []  # config keys, not paths
    assert _offences('p = d / f"ckpt_{step:08d}.pt"') == ["ckpt_"]


def test_paths_compose_under_the_run_directory(tmp_path: Path) -> None:
    assert rundir.checkpoint(tmp_path, 300) == tmp_path / "checkpoints" / "ckpt_00000300.pt"
    assert rundir.CHECKPOINT_NAME.search(rundir.checkpoint(tmp_path, 7).name).group(1) == "00000007"
    assert not rundir.is_finished(tmp_path)
    rundir.summary(tmp_path).write_text("{}")
    assert rundir.is_finished(tmp_path)


# The files rundir reads and writes itself: no other module may even ask for their paths. config.yaml's
# path is handed to the config loader, which validates what it reads; the directories hold images.
DATA_FILES = ("metrics", "summary", "samples", "snapshots", "diverged")
_FUNCTIONS, _NAMES = "|".join(DATA_FILES), "|".join(n.upper() for n in DATA_FILES)
_DATA_FILE_USE = re.compile(rf"rundir\.(?:(?:{_FUNCTIONS})\(|(?:{_NAMES})\b)")


def test_no_module_but_rundir_reads_or_writes_the_data_files() -> None:
    offences = {}
    for path in sorted((ROOT / "fastot").rglob("*.py")):
        if path.name != "rundir.py" and (found := _DATA_FILE_USE.findall(path.read_text())):
            offences[str(path.relative_to(ROOT))] = found
    assert offences == {}
    assert _DATA_FILE_USE.findall("x = rundir.summary(d).read_text(); y = d / rundir.METRICS") == [
        "rundir.summary(",
        "rundir.METRICS",
    ]


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    rundir.write_summary(tmp_path, {"steps": 1})

    def full_disk(f):
        f.write(b"{")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        rundir.write_atomic(rundir.summary(tmp_path), full_disk)
    assert rundir.read_summary(tmp_path) == {"steps": 1}
    assert [p.name for p in tmp_path.iterdir()] == [rundir.SUMMARY]


def test_the_log_drops_a_line_cut_short_and_resumes_at_a_step(tmp_path: Path) -> None:
    log = rundir.MetricsLog(tmp_path, keep_through=None)
    for step in (1, 2, 3):
        log.append({"step": step, "loss": 0.5})
    log.close()
    with rundir.metrics(tmp_path).open("a") as f:
        f.write('{"step": 4, "lo')  # the process was killed mid-write
    assert [r["step"] for r in rundir.read_metrics(tmp_path)] == [1, 2, 3]
    rundir.MetricsLog(tmp_path, keep_through=2).close()
    assert [r["step"] for r in rundir.read_metrics(tmp_path)] == [1, 2]
    rundir.MetricsLog(tmp_path, keep_through=None).close()
    assert rundir.read_metrics(tmp_path) == []
    rundir.metrics(tmp_path).write_text('{"step": 1}\nnot json\n{"step": 3}\n')
    with pytest.raises(ValueError, match="line 2"):
        rundir.read_metrics(tmp_path)


def test_files_read_back_as_written(tmp_path: Path) -> None:
    x, y = np.arange(6.0).reshape(3, 2), np.ones((3, 2))
    rundir.write_samples(tmp_path, x, y)
    assert rundir.has_samples(tmp_path)
    assert all(np.array_equal(a, b) for a, b in zip(rundir.read_samples(tmp_path), (x, y), strict=True))
    rundir.write_snapshot(tmp_path, 20, x, y, "phase 2")
    rundir.write_snapshot(tmp_path, 10, x, y, "phase 1")
    snaps = rundir.snapshot_files(tmp_path)
    assert [str(rundir.read_snapshot(p)["label"]) for p in snaps] == ["phase 1", "phase 2"]
    rundir.save_checkpoint(rundir.checkpoint(tmp_path, 5), {"step": 5, "w": torch.ones(2)})
    [(step, path)] = rundir.list_checkpoints(tmp_path)
    assert step == 5 and torch.equal(rundir.load_checkpoint(path)["w"], torch.ones(2))
    assert not rundir.is_diverged(tmp_path)
    rundir.mark_diverged(tmp_path, "loss_v is nan")
    assert rundir.is_diverged(tmp_path)


def test_reading_a_missing_or_bad_config_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a run directory"):
        rundir.read_config(tmp_path / "missing", key="run")
    rundir.config(tmp_path).write_text("a: [1,\n")
    with pytest.raises(ConfigError, match="cannot be read"):
        rundir.read_config(tmp_path)
