"""Bad values on the command line: one line naming the key, exit status 2, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from fastot_testing import run_python

import fastot
from fastot.config import load_config
from fastot.train import checkpoint as ckpt
from fastot.train.__main__ import main
from fastot.train.errors import ConfigError

FAST = ["train.progress=false", "train.iterations=1", "eval.plots=false"]


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("seed=abc", "seed"),
        ("seed=1.5", "seed"),
        ("optim.map.lr=-1", "optim.map.lr"),
        ("optim.map.lr=abc", "optim.map.lr"),
        ("optim.potential.lr=0", "optim.potential.lr"),
        ("optim.map.lr=.inf", "optim.map.lr"),
        ("optim.map.betas=abc", "optim.map.betas"),
        ("optim.map.betas=[0.5,1.5]", "optim.map.betas"),
        ("optim.potential.betas=[0.5]", "optim.potential.betas"),
        ("optim.map.weight_decay=-1", "optim.map.weight_decay"),
        ("optim.map.amsgrad=3", "optim.map.amsgrad"),
        ("optim.eta_min=abc", "optim.eta_min"),
        ("train.batch_size=abc", "train.batch_size"),
        ("train.iterations=abc", "train.iterations"),
        ("train.iterations=2.5", "train.iterations"),
        ("train.threads=abc", "train.threads"),
        ("train.ema.decay=abc", "train.ema.decay"),
        ("train.progress=maybe", "train.progress"),
        ("eval.seed=-1", "eval.seed"),
        ("eval.metrics=kl_knn", "eval.metrics"),
        ("algorithm.tau=abc", "algorithm.tau"),
        ("algorithm.k_v=2.5", "algorithm.k_v"),
        ("algorithm.reg_weight=abc", "algorithm.reg_weight"),
        ("algorithm.tau=.nan", "algorithm.tau"),
        ("algorithm.reg_weight=.inf", "algorithm.reg_weight"),
        ("train.grad_clip=.nan", "train.grad_clip"),
        ("algorithm.schedule_fraction=abc", "algorithm.schedule_fraction"),
        ("networks.map.width=abc", "networks.map.width"),
        ("data.target.p=abc", "data.target.p"),
        ("data.source.dim=1.5", "data.source.dim"),
    ],
)
def test_bad_value_is_one_line_naming_the_key(override, key, tmp_path, capsys):
    code = main(["--out", str(tmp_path / "r"), *FAST, override])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith(f"fastot.train: error: {key}: "), err
    assert not (tmp_path / "r" / "checkpoints").exists()  # refused before training


def test_valid_numbers_still_load():
    cfg = load_config(
        "uotm-outlier-1d",
        ["optim.map.lr=1e-4", "optim.map.weight_decay=1e-10", "optim.potential.betas=[0,0.99]", "seed=7"],
    )
    assert cfg.optim.map.lr == 1e-4 and cfg.seed == 7
    for preset in ("sjko-25gaussians", "knot-moons-uniform", "cifar10-uotm", "digits-uotm"):
        load_config(preset, ["algorithm.k_t=2"] if preset.startswith("knot") else [], allow_missing=True)


def test_a_constructor_rejecting_a_value_names_the_section(tmp_path, capsys):
    # A type-correct value that the network constructor itself refuses.
    code = main(["networks.map.width=-4", "--out", str(tmp_path / "r"), *FAST])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("fastot.train: error: networks.map: "), err


def test_seed_abc_from_the_shell_has_no_traceback(tmp_path):
    # The fastot under test (the one pytest imported), not whichever one is installed.
    env = {"PYTHONPATH": str(Path(fastot.__file__).resolve().parent.parent)}
    argv = ["-m", "fastot.train", "--out", str(tmp_path / "r"), "seed=abc"]
    proc = run_python(argv, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "fastot.train: error: seed: must be a non-negative integer, got 'abc'"
    ]


def test_divergence_step_counts_like_the_logs(nan_potential, tmp_path, capsys):
    # Step 4 diverges; steps 1-3 are logged (log_every=1).
    out = tmp_path / "run"
    argv = nan_potential(out, "train.log_every=1", "train.ckpt_every=2")
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    logged = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3]
    assert err[-1].startswith("fastot.train: error: training diverged at step 4 ("), err[-1]
    assert "ckpt_00000002.pt" in err[-1]
    state = torch.load(ckpt.latest_checkpoint(out), weights_only=True)
    assert state["step"] == 2


def test_trainer_fid_with_a_bad_weight_file_names_the_file(tmp_path, capsys):
    bad = tmp_path / "weights.pth"
    bad.write_bytes(b"this is not a torch file")
    ref = tmp_path / "ref.npz"
    ref.write_bytes(b"unused: the weights are loaded first")
    argv = [
        "--preset",
        "digits-uotm",
        "--smoke",
        "--out",
        str(tmp_path / "r"),
        "train.progress=false",
        "eval.fid_every=1",
        f"eval.fid_ref={ref}",
        f"eval.inception_weights={bad}",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("fastot.train: error: eval.inception_weights: "), err
    assert str(bad) in err[-1] and "weights_only" not in err[-1]
    with pytest.raises(ConfigError, match=r"eval\.inception_weights"):
        from fastot.train.evaluate import PeriodicFID

        PeriodicFID(load_config("digits-uotm", [f"eval.inception_weights={bad}"]), torch.device("cpu"))
