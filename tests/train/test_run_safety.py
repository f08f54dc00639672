"""Runs are never lost, clobbered or mixed: run directories, the run lock, signals, damaged
checkpoints, resume overrides and the YAML a run is read from."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import fastot
from fastot import config as config_module
from fastot import rundir
from fastot.rundir import list_checkpoints, load_checkpoint
from fastot.sample import main as sample_main
from fastot.sampling import generate
from fastot.train import checkpoint as ckpt
from fastot.train import loop
from fastot.train.__main__ import main
from fastot.train.errors import ConfigError
from fastot.train.run import Run


@pytest.fixture(autouse=True)
def _sigint_as_in_a_terminal():
    # A script that starts the suite in the background (`cmd &`) hands it SIGINT ignored, and the
    # trainer rightly leaves ignored signals alone; these tests need Ctrl-C's default handling.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


# A few iterations of the 1-d toy with narrow networks: each run takes well under a second.
FAST = [
    "--preset",
    "uotm-outlier-1d",
    "train.progress=false",
    "train.threads=1",
    "train.batch_size=16",
    "networks.map.width=16",
    "networks.potential.width=16",
    "eval.n_samples=200",
    "eval.plots=false",
]


def _train(out: Path, *extra: str) -> int:
    return main([*FAST, "--out", str(out), *extra])


def _errors(err: str) -> list[str]:
    """The error lines of a run's stderr (the start-of-run block may precede them)."""
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("fastot.train: error:")]


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(path)
    return {f"{net}.{k}": v for net in ("map", "potential") for k, v in state[net].items()}


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


# ---------------------------------------------------------------------------- 1. the run directory
def test_new_run_refuses_a_directory_holding_a_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out, "train.iterations=4", "train.ckpt_every=2") == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert _train(out, "train.iterations=2") == 2
    (line,) = _errors(capsys.readouterr().err)
    assert str(out) in line and f"--resume {out}" in line and "--out" in line and "--overwrite" in line
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # nothing of the old run was touched


def test_overwrite_replaces_the_old_run_entirely(tmp_path):
    out = tmp_path / "run"
    assert _train(out, "train.iterations=4", "train.ckpt_every=2", "train.log_every=1") == 0
    (out / "notes.txt").write_text("mine")  # not a run file: left alone
    assert _train(out, "--overwrite", "train.iterations=3", "train.ckpt_every=3", "train.log_every=1") == 0
    assert [p.name for _, p in list_checkpoints(out)] == ["ckpt_00000003.pt"]
    assert [r["step"] for r in _rows(out)] == [1, 2, 3]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 3 and Path(summary["checkpoint"]).name == "ckpt_00000003.pt"
    assert config_module.load_config(None, [], path=out / "config.yaml").train.iterations == 3
    assert (out / "notes.txt").read_text() == "mine"


def test_empty_or_foreign_directories_are_fine_and_a_file_is_not(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _train(empty, "train.iterations=1") == 0
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "slurm-1.out").write_text("log")
    assert _train(foreign, "train.iterations=1") == 0
    assert (foreign / "slurm-1.out").read_text() == "log"
    file = tmp_path / "file"
    file.write_text("x")
    capsys.readouterr()
    assert _train(file, "train.iterations=1") == 2
    (line,) = _errors(capsys.readouterr().err)
    assert str(file) in line and "is a file" in line
    assert file.read_text() == "x"


def test_a_run_that_fails_to_start_leaves_no_directory(tmp_path):
    out = tmp_path / "never"
    assert _train(out, "networks.map.no_such_arg=1") == 2
    assert not out.exists()


def test_resume_with_out_or_overwrite_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out, "train.iterations=1") == 0
    capsys.readouterr()
    for flag in (["--out", str(tmp_path / "other")], ["--overwrite"]):
        assert main(["--resume", str(out), *flag]) == 2
        (line,) = _errors(capsys.readouterr().err)
        assert flag[0] in line


# ---------------------------------------------------------------------------- 2. one process per run
def test_a_locked_run_directory_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out, "train.iterations=2") == 0
    lock = ckpt.RunLock(out, "out")  # as another process holding the run would
    try:
        rows = (out / "metrics.jsonl").read_text()
        capsys.readouterr()
        assert main(["--resume", str(out), "train.iterations=4"]) == 2
        (line,) = _errors(capsys.readouterr().err)
        assert f"process {os.getpid()}" in line and "already running" in line and str(out) in line
        assert (out / "metrics.jsonl").read_text() == rows
        fresh = tmp_path / "fresh"
        fresh.mkdir()
        second = ckpt.RunLock(fresh, "out")
        assert _train(fresh, "train.iterations=1") == 2
        second.release()
    finally:
        lock.release()
    assert main(["--resume", str(out), "train.iterations=4"]) == 0  # released: the run continues
    ckpt.RunLock(out, "out").release()  # and the trainer released its own lock when it ended


# ---------------------------------------------------------------------------- 3. signals
def _send_at(it: int, signum: int, monkeypatch) -> None:
    """Deliver ``signum`` to this process during iteration ``it`` (as Ctrl-C or ``timeout`` would)."""
    original = Run.iteration

    def iteration(self, i):
        if i == it:
            os.kill(os.getpid(), signum)
        return original(self, i)

    monkeypatch.setattr(Run, "iteration", iteration)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_checkpoints_and_resume_is_exact(signum, code, tmp_path, monkeypatch, capsys):
    ov = ["train.iterations=8", "train.ckpt_every=5", "train.log_every=2", "optim.schedule=cosine"]
    ov += ["train.ema.enabled=true"]
    full, part = tmp_path / "full", tmp_path / "part"
    handler = signal.getsignal(signum)
    assert _train(full, *ov) == 0
    with monkeypatch.context() as m:
        _send_at(2, signum, m)
        assert _train(part, *ov) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [ln for ln in err.splitlines() if "interrupted" in ln]
    name = signal.Signals(signum).name
    assert f"interrupted by {name} at step 3" in line and "ckpt_00000003.pt" in line
    assert f"--resume {part}" in line
    assert ckpt.latest_checkpoint(part).name == "ckpt_00000003.pt"
    assert not (part / "summary.json").exists()
    assert signal.getsignal(signum) == handler  # the trainer's handler is gone with the run
    assert main(["--resume", str(part)]) == 0
    _assert_same_weights(full / "checkpoints" / "ckpt_00000008.pt", part / "checkpoints" / "ckpt_00000008.pt")
    strip = [{k: v for k, v in r.items() if k != "wall_time"} for r in _rows(full)]
    assert strip == [{k: v for k, v in r.items() if k != "wall_time"} for r in _rows(part)]


def test_signal_during_final_evaluation_is_finished_by_resume(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    original = loop.finish

    def finish(*args):
        os.kill(os.getpid(), signal.SIGINT)
        return original(*args)

    with monkeypatch.context() as m:
        m.setattr(loop, "finish", finish)
        assert _train(out, "train.iterations=3", "train.log_every=1") == 130
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if "interrupted" in ln]
    assert "final evaluation" in line and "ckpt_00000003.pt" in line
    rows = _rows(out)
    assert main(["--resume", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["steps"] == 3
    assert _rows(out) == rows  # evaluation only: no training step was repeated


def _source_env() -> dict[str, str]:
    """The environment of a child process that imports the same fastot as these tests."""
    root = str(Path(fastot.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def _wait_for(predicate, proc: subprocess.Popen, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(
                f"the trainer exited ({proc.returncode}) before {what}: {proc.stderr.read()}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_training_process_stops_cleanly_on_a_signal(signum, code, tmp_path, capsys):
    out = tmp_path / "run"
    argv = [*FAST, "--out", str(out), "train.iterations=1000000", "train.log_every=1", "train.ckpt_every=5"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastot.train", *argv],
        cwd=tmp_path,
        env=_source_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell's background job ignores SIGINT, and so would its children: restore the default.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        metrics = out / "metrics.jsonl"
        _wait_for(lambda: metrics.exists() and metrics.read_text().count("\n") >= 2, proc, "training")
        # While it trains, a second trainer on the same directory is refused.
        capsys.readouterr()
        assert main(["--resume", str(out)]) == 2
        (line,) = _errors(capsys.readouterr().err)
        assert f"process {proc.pid} is already running in {out}" in line
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert "Traceback" not in err
    (line,) = [ln for ln in err.splitlines() if ln.startswith("fastot.train: interrupted")]
    step = int(line.split(" at step ")[1].split(";")[0])
    assert step >= 2 and f"ckpt_{step:08d}.pt" in line
    state = load_checkpoint(ckpt.latest_checkpoint(out))
    assert state["step"] == step
    assert not list((out / "checkpoints").glob(".*.tmp"))
    # The lock went with the process; the run continues from where it stopped.
    assert main(["--resume", str(out), f"train.iterations={step + 2}"]) == 0
    assert load_checkpoint(ckpt.latest_checkpoint(out))["step"] == step + 2


# ---------------------------------------------------------------------------- 4. damaged checkpoints
def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if how == "truncated" else os.urandom(len(data)))


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_unreadable_latest_checkpoint_falls_back_to_the_previous(how, tmp_path, capsys):
    out = tmp_path / "run"
    ov = ["train.iterations=4", "train.ckpt_every=2", "train.keep_checkpoints=1", "train.log_every=1"]
    assert _train(out, *ov) == 0
    names = [p.name for _, p in list_checkpoints(out)]
    assert names == ["ckpt_00000002.pt", "ckpt_00000004.pt"]  # two kept although 1 was asked for
    good = {k: v.clone() for k, v in _weights(out / "checkpoints" / "ckpt_00000004.pt").items()}
    _damage(out / "checkpoints" / "ckpt_00000004.pt", how)
    stale = out / "checkpoints" / ".ckpt_00000006.pt.999.abcd.tmp"  # a writer killed mid-save
    stale.write_bytes(b"partial")
    capsys.readouterr()

    # Sampling uses step 2's weights and says why.
    assert sample_main(["--run", str(out), "--n", "50", "--out", str(tmp_path / "s.npz")]) == 0
    warned = [ln for ln in capsys.readouterr().err.splitlines() if "warning" in ln]
    assert len(warned) == 1 and "ckpt_00000004.pt" in warned[0] and "unreadable" in warned[0]
    run = Run(config_module.load_config(None, [], path=out / "config.yaml"), out)
    run.load_state_dict(load_checkpoint(out / "checkpoints" / "ckpt_00000002.pt"))
    _, y = generate(run.sampling_map, run.source, 50, run.cfg.eval.seed)
    with np.load(tmp_path / "s.npz") as s:
        np.testing.assert_array_equal(s["y"], y.numpy())

    # Resuming redoes steps 3 and 4 from step 2, exactly.
    assert main(["--resume", str(out)]) == 0
    err = capsys.readouterr().err
    (warned,) = [ln for ln in err.splitlines() if "fastot.train: warning" in ln]
    assert "ckpt_00000004.pt" in warned
    redone = _weights(out / "checkpoints" / "ckpt_00000004.pt")
    assert all(torch.equal(redone[k], good[k]) for k in good)
    assert [r["step"] for r in _rows(out)] == [1, 2, 3, 4]
    assert (out / "checkpoints" / "ckpt_00000004.pt.corrupt").exists()  # kept for inspection
    assert not list((out / "checkpoints").glob(".*.tmp"))


def test_only_unreadable_checkpoints_is_an_error(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out, "train.iterations=2", "train.ckpt_every=1") == 0
    for _, p in list_checkpoints(out):
        _damage(p, "truncated")
    capsys.readouterr()
    assert sample_main(["--run", str(out), "--n", "5", "--out", str(tmp_path / "s.npz")]) == 2
    err = capsys.readouterr().err.splitlines()
    (line,) = [ln for ln in err if ln.startswith("fastot.sample: error:")]
    assert str(out / "checkpoints") in line
    assert sum(ln.startswith("fastot.sample: warning:") for ln in err) == 2
    assert main(["--resume", str(out)]) == 2
    (line,) = _errors(capsys.readouterr().err)
    assert "no readable checkpoint" in line


def test_checkpoints_get_the_mode_of_the_other_run_files(tmp_path):
    old = os.umask(0o027)
    try:
        out = tmp_path / "run"
        assert _train(out, "train.iterations=2", "train.ckpt_every=1") == 0
    finally:
        os.umask(old)
    mode = stat.S_IMODE((out / "config.yaml").stat().st_mode)
    assert mode == 0o640
    for _, p in list_checkpoints(out):
        assert stat.S_IMODE(p.stat().st_mode) == mode


def test_failed_save_leaves_the_old_checkpoint_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "ckpt_00000001.pt"
    rundir.save_checkpoint(path, {"step": 1, "a": torch.ones(3)})

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # e.g. a second Ctrl-C in the middle of writing

    monkeypatch.setattr(torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        rundir.save_checkpoint(path, {"step": 1, "a": torch.zeros(3)})
    assert torch.equal(load_checkpoint(path)["a"], torch.ones(3))
    assert [p.name for p in path.parent.iterdir()] == [path.name]


# ---------------------------------------------------------------------------- 5. resume overrides
def test_optimizer_overrides_apply_on_resume(tmp_path):
    out = tmp_path / "run"
    assert _train(out, "train.iterations=2") == 0
    assert (
        main(["--resume", str(out), "train.iterations=4", "optim.map.lr=0.5", "optim.map.betas=[0.1,0.2]"])
        == 0
    )
    state = load_checkpoint(ckpt.latest_checkpoint(out))
    (group,) = state["optim_map"]["param_groups"]
    assert group["lr"] == 0.5 and tuple(group["betas"]) == (0.1, 0.2)
    assert state["optim_map"]["state"][0]["step"] == 4  # the moments carried on from the checkpoint
    assert state["optim_potential"]["param_groups"][0]["lr"] == 1e-4
    cfg = config_module.load_config(None, [], path=out / "config.yaml")
    assert cfg.optim.map.lr == 0.5 and list(cfg.optim.map.betas) == [0.1, 0.2] and cfg.train.iterations == 4


def test_resume_overrides_match_a_run_that_had_them_from_the_start_of_the_resumed_part(tmp_path):
    # The override takes effect at the resumed step: a cosine schedule and a constant one agree on
    # what "the learning rate" is (the config's), so both see the new base lr.
    for schedule in ("constant", "cosine"):
        out = tmp_path / schedule
        assert _train(out, "train.iterations=2", f"optim.schedule={schedule}") == 0
        assert main(["--resume", str(out), "train.iterations=4", "optim.potential.lr=0.25"]) == 0
        lr = load_checkpoint(ckpt.latest_checkpoint(out))["optim_potential"]["param_groups"][0]["lr"]
        expected = 0.25 if schedule == "constant" else 0.5 * 0.25 * (1 + np.cos(np.pi * 3 / 4))
        assert lr == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "override",
    [
        "networks.map.width=8",
        "networks.map.z_dim=2",
        "networks.potential.name=mlp",
        "data.source.dim=2",
        "seed=7",
        "algorithm.name=otm",
        "optim.map.name=sgd",
    ],
)
def test_resume_refuses_changes_the_checkpoint_cannot_follow(override, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out, "train.iterations=2") == 0
    config = (out / "config.yaml").read_text()
    capsys.readouterr()
    assert main(["--resume", str(out), "train.iterations=4", override]) == 2
    (line,) = _errors(capsys.readouterr().err)
    key = override.split("=")[0]
    assert f"error: {key}:" in line and "resuming" in line and "--out" in line
    assert (out / "config.yaml").read_text() == config  # it records what ran, and nothing else ran
    assert load_checkpoint(ckpt.latest_checkpoint(out))["step"] == 2


def test_resume_refuses_an_edited_network_in_config_yaml(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out, "train.iterations=2") == 0
    text = (out / "config.yaml").read_text()
    assert "width: 16" in text
    (out / "config.yaml").write_text(text.replace("width: 16", "width: 24", 1))
    capsys.readouterr()
    assert main(["--resume", str(out), "train.iterations=4"]) == 2
    (line,) = _errors(capsys.readouterr().err)
    assert "networks." in line and ".width" in line


# ---------------------------------------------------------------------------- 6. YAML files
@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda t: t + "bogus_top: 1\n", "bogus_top"),
        (lambda t: t.replace("train:\n", "train:\n  bogus_nested: 1\n", 1), "train.bogus_nested"),
        (lambda t: t.replace("algorithm:\n", "algorithm:\n  taux: 1\n", 1), "algorithm.taux"),
        (lambda t: t + "eval: [unclosed\n", "invalid YAML at line"),
    ],
)
def test_an_edited_config_yaml_gets_a_one_line_error(edit, key, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out, "train.iterations=2") == 0
    path = out / "config.yaml"
    path.write_text(edit(path.read_text()))
    capsys.readouterr()
    assert main(["--resume", str(out), "train.iterations=3"]) == 2
    (line,) = _errors(capsys.readouterr().err)
    assert key in line and str(path) in line
    assert sample_main(["--run", str(out), "--n", "5", "--out", str(tmp_path / "s.npz")]) == 2
    assert key in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("train: {iterations: 1, no_such: 2}\n", "train.no_such"),
        ("networks:\n  map: {name: uotm_toy, depth: 3}\n", "networks.map.depth"),
        ("optim:\n  map: {name: adam, lr: 0.1, momentum: 0.9}\n", "optim.map.momentum"),
        ("train: {iterations: 1\n", "invalid YAML"),
        ("- just\n- a list\n", "mapping"),
    ],
)
def test_unknown_keys_in_a_preset_name_the_key_and_the_file(text, key, tmp_path, monkeypatch):
    presets = tmp_path / "configs"
    presets.mkdir()
    (presets / "mine.yaml").write_text(text)
    monkeypatch.setattr(config_module, "PRESET_DIR", presets)
    with pytest.raises(ConfigError) as e:
        config_module.load_config("mine", [])
    assert key in str(e.value) and str(presets / "mine.yaml") in str(e.value)


def test_shipped_presets_have_no_unknown_keys():
    for name in config_module.list_presets():
        config_module.load_config(name, [], allow_missing=True)


# ---------------------------------------------------------------------------- 7. missing and finished runs
def test_sampling_a_missing_run_names_the_path(tmp_path, capsys):
    missing = tmp_path / "nope"
    assert sample_main(["--run", str(missing), "--n", "5", "--out", str(tmp_path / "s.npz")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("fastot.sample: error:") and str(missing) in line
    assert not (tmp_path / "s.npz").exists()


def test_resuming_a_finished_run_says_so_and_changes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out, "train.iterations=3") == 0

    def files() -> dict[Path, tuple[bytes, int]]:
        found = [p for p in out.rglob("*") if p.is_file() and p.name != ckpt.LOCK_NAME]
        return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in found}

    before = files()
    capsys.readouterr()
    assert main(["--resume", str(out)]) == 0
    err = capsys.readouterr().err
    (line,) = [ln for ln in err.splitlines() if "already finished" in ln]
    assert str(out) in line and "step 3 of 3" in line and "train.iterations=" in line
    assert files() == before
    # Asking for more iterations continues it.
    assert main(["--resume", str(out), "train.iterations=5"]) == 0
    assert json.loads((out / "summary.json").read_text())["steps"] == 5


def test_a_full_disk_at_a_checkpoint_is_one_line_and_the_run_resumes(tmp_path, capsys, monkeypatch):
    import errno

    out = tmp_path / "run"
    real_save = torch.save
    calls = {"n": 0}

    def save_until_full(obj, f, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:  # the second checkpoint meets a full disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", save_until_full)
    ov = ["train.iterations=4", "train.ckpt_every=2", "train.log_every=1"]
    assert _train(out, *ov) == 1
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
    assert "ckpt_00000004.pt" in line and "No space left" in line
    assert "ckpt_00000002.pt is intact" in line and f"--resume {out}" in line
    assert [p.name for _, p in list_checkpoints(out)] == ["ckpt_00000002.pt"]
    assert not list((out / "checkpoints").glob(".*.tmp"))  # no partial file left behind
    monkeypatch.setattr(torch, "save", real_save)
    assert main(["--resume", str(out)]) == 0
    assert [p.name for _, p in list_checkpoints(out)][-1] == "ckpt_00000004.pt"


def test_zero_iterations_is_refused_with_the_key_named(tmp_path, capsys):
    assert _train(tmp_path / "run", "train.iterations=0") == 2
    assert "train.iterations" in capsys.readouterr().err
    assert not (tmp_path / "run" / "summary.json").exists()
