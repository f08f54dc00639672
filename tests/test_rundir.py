"""The run directory has one owner: no module but fastot.rundir spells a run file's name."""

from __future__ import annotations

import re
from pathlib import Path

from fastot import rundir

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
