"""The trainer: presets, run directory, resume, divergence, bad configs, sampling CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from fastot_testing import run_python
from image_files import cifar_batches, image_folder, mnist_images, rgb, write_idx, write_lmdb
from torch import nn

from fastot import rundir
from fastot.config import DEFAULT_PRESET, list_presets, load_config, smoke
from fastot.config import PRESET_DIR as PRESETS_DIR
from fastot.config.optimizers import build_optimizer
from fastot.nn import POTENTIALS, register_potential
from fastot.sample import main as sample_main
from fastot.sampling import generate
from fastot.train import checkpoint as ckpt
from fastot.train.__main__ import main
from fastot.train.errors import ConfigError
from fastot.train.loop import train
from fastot.train.run import Run

FAST = ["train.progress=false", "train.threads=1", "eval.n_samples=300", "eval.plots=false"]


def _fast_overrides(preset: str, iterations: int = 5) -> list[str]:
    ov = [*FAST, f"train.iterations={iterations}", "train.batch_size=32"]
    if preset.startswith("sjko"):  # cross phase boundaries within the few steps
        ov += ["algorithm.init_iterations=2", "algorithm.phase_iterations=1", "algorithm.num_phases=4"]
    return ov


@pytest.fixture(scope="module")
def image_data(tmp_path_factory) -> Path:
    """One tiny dataset per image format the presets read."""
    root = tmp_path_factory.mktemp("image_data")
    cifar_batches(root / "cifar", n_per_batch=8)
    write_idx(root / "mnist" / "train-images-idx3-ubyte", mnist_images(16))
    imgs = [rgb(64, 64, i) for i in range(6)]
    write_lmdb(root / "celeba" / "train.lmdb", {str(i).encode(): a.tobytes() for i, a in enumerate(imgs)})
    image_folder(root / "domain_a")
    image_folder(root / "domain_b")
    return root


def _image_overrides(preset: str, data: Path) -> list[str]:
    """Tiny generated data for the preset (and image sizes a CPU runs in seconds); --smoke narrows it."""
    ov = [*FAST, "train.iterations=5", "train.ema.decay=0.5", "device=cpu"]
    if preset.startswith("cifar10-mnist"):
        ov += [f"data.target.cifar10_path={data / 'cifar'}", f"data.target.mnist_path={data / 'mnist'}"]
    elif preset.startswith("cifar10"):
        ov += [f"data.target.path={data / 'cifar'}"]
    elif preset.startswith("celebahq256"):  # 64x64 keeps every level of the 256 networks but one
        ov += [f"data.target.path={data / 'celeba'}", "data.target.size=64", "data.source.size=64"]
    elif preset.endswith("translation"):
        ov += [f"data.source.path={data / 'domain_a'}", f"data.target.path={data / 'domain_b'}"]
        ov += ["data.source.size=16", "data.target.size=16", "algorithm.k_t=2"]
    if preset.startswith(("cifar10-sjko", "celebahq256-sjko")):
        ov += ["algorithm.init_iterations=2", "algorithm.phase_iterations=1", "algorithm.num_phases=4"]
    return ov


def _is_image_preset(preset: str) -> bool:
    return "image" in (PRESETS_DIR / f"{preset}.yaml").read_text() or preset.startswith(
        ("cifar10", "celebahq256", "digits")
    )


@pytest.mark.parametrize("preset", list_presets())
def test_every_preset_loads_and_runs_five_steps(preset, tmp_path, request):
    if _is_image_preset(preset):
        overrides = _image_overrides(preset, request.getfixturevalue("image_data"))
    else:
        overrides = _fast_overrides(preset)
    cfg = load_config(preset, overrides)
    if _is_image_preset(preset):
        cfg = smoke(cfg)
        assert cfg.train.batch_size <= 4
    summary = train(cfg, tmp_path)
    assert summary["steps"] == 5
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 5 and np.isfinite(rows[-1]["loss_T"])


def test_image_presets_need_their_data_paths():
    with pytest.raises(ConfigError, match=r"data\.target\.path"):
        load_config("cifar10-uotm", [])
    with pytest.raises(ConfigError, match=r"data\.source\.path"):
        load_config("not-translation", [])


@pytest.mark.parametrize("preset", [p for p in list_presets() if _is_image_preset(p)])
def test_image_dry_run_counts_parameters_without_opening_data(preset, capsys):
    # No data path is given: the network shapes come from the preset, not from the dataset.
    assert main(["--preset", preset, "--dry-run"]) == 0
    counts = [line for line in capsys.readouterr().out.splitlines() if line.endswith("M)")]
    assert [c.split(":")[0] for c in counts] == ["networks.map", "networks.potential"]
    if preset == "cifar10-uotm":  # the figures the README quotes
        assert "44,820,611 parameters" in counts[0] and "12,247,809 parameters" in counts[1]


def test_default_preset_and_list(capsys):
    assert DEFAULT_PRESET in list_presets()
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    assert all(p in out for p in list_presets())


def test_run_directory_contents(tmp_path):
    out = tmp_path / "run"
    argv = [
        "--preset",
        "sjko-25gaussians",
        "--out",
        str(out),
        "train.progress=false",
        "train.threads=1",
        "train.iterations=6",
        "train.log_every=2",
        "train.ckpt_every=4",
        "train.batch_size=50",
        "algorithm.init_iterations=2",
        "algorithm.phase_iterations=2",
        "algorithm.num_phases=3",
        "train.ema.enabled=true",
        "eval.n_samples=1000",
        "eval.snapshot_samples=200",
    ]
    assert main(argv) == 0
    cfg = load_config(None, [], path=out / "config.yaml")  # resolved config reloads
    assert cfg.algorithm.name == "sjko" and cfg.train.iterations == 6
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6] and [r["phase"] for r in rows] == [0, 1, 2]
    with np.load(out / "samples.npz") as s:
        assert s["x"].shape == (1000, 2) and s["y"].shape == (1000, 2)
    summary = json.loads((out / "summary.json").read_text())
    assert {"kl_knn", "energy", "modes_covered", "hq_fraction"} <= set(summary["metrics"])
    assert summary["wall_time_s"] > 0 and summary["ema"] is True
    plots = {p.name for p in (out / "plots").glob("*.png")}
    assert {"target_vs_generated.png", "transport_map.png", "losses.png", "phases.png"} <= plots
    assert len(list((out / "snapshots").glob("*.npz"))) == 3  # one per phase
    state = torch.load(ckpt.latest_checkpoint(out), weights_only=True)
    assert state["step"] == 6 and state["algorithm"]["phase"] == 2 and state["ema"] is not None
    assert isinstance(state["rng"]["generator"], torch.Tensor)
    for name in ("s.npz", "t.npz"):
        argv = ["--run", str(out), "--n", "500", "--out", str(tmp_path / name), "--seed", "3"]
        assert sample_main(argv) == 0
    # the EMA map is the one sampled
    run = Run(load_config(None, [], path=out / "config.yaml"), out)
    run.load_state_dict(torch.load(ckpt.latest_checkpoint(out), weights_only=True))
    _, y_ema = generate(run.ema.module, run.source, 500, 3)
    _, y_raw = generate(run.map, run.source, 500, 3)
    assert not torch.equal(y_ema, y_raw)
    with np.load(tmp_path / "s.npz") as a, np.load(tmp_path / "t.npz") as b:
        assert a["x"].shape == (500, 2) and a["y"].shape == (500, 2)
        np.testing.assert_array_equal(a["y"], y_ema.numpy())
        np.testing.assert_array_equal(a["y"], b["y"])
    with np.load(tmp_path / "s.npz") as a, np.load(out / "samples.npz") as full:
        assert not np.array_equal(a["x"], full["x"][:500])  # a different seed draws different x


@pytest.mark.parametrize(
    ("preset", "extra"),
    [
        ("uotm-sd-8g", ["optim.schedule=cosine", "algorithm.regularizer=r1", "algorithm.reg_weight=0.2"]),
        (
            "sjko-25gaussians",
            ["algorithm.init_iterations=4", "algorithm.phase_iterations=3", "algorithm.num_phases=3"],
        ),
        ("knot-moons-uniform", ["algorithm.gamma_start=0.0", "algorithm.gamma_iterations=6"]),
    ],
)
def test_resume_matches_uninterrupted_run_bit_for_bit(preset, extra, tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    argv = [
        "--preset",
        preset,
        "train.progress=false",
        "train.threads=1",
        "train.iterations=10",
        "train.ckpt_every=5",
        "train.keep_checkpoints=5",
        "train.log_every=3",
        "train.batch_size=40",
        "train.ema.enabled=true",
        "eval.n_samples=200",
        "eval.plots=false",
        *extra,
    ]
    assert main([*argv, "--out", str(full)]) == 0
    shutil.copytree(full, part)
    (part / "checkpoints" / "ckpt_00000010.pt").unlink()  # interrupted after step 5
    (part / "samples.npz").unlink()
    assert main(["--resume", str(part)]) == 0
    a = torch.load(full / "checkpoints" / "ckpt_00000010.pt", weights_only=True)
    b = torch.load(part / "checkpoints" / "ckpt_00000010.pt", weights_only=True)

    def same(u, v, path="state"):
        if isinstance(u, torch.Tensor):
            assert torch.equal(u, v), path
        elif isinstance(u, dict):
            assert u.keys() == v.keys(), path
            for k in u:
                if k != "elapsed":
                    same(u[k], v[k], f"{path}.{k}")
        elif isinstance(u, (list, tuple)):
            for i, (x, y) in enumerate(zip(u, v, strict=True)):
                same(x, y, f"{path}[{i}]")
        else:
            assert u == v, path

    same(a, b)
    strip = [
        {k: v for k, v in json.loads(line).items() if k != "wall_time"}
        for line in (full / "metrics.jsonl").read_text().splitlines()
    ]
    strip_b = [
        {k: v for k, v in json.loads(line).items() if k != "wall_time"}
        for line in (part / "metrics.jsonl").read_text().splitlines()
    ]
    assert strip == strip_b and [r["step"] for r in strip] == [3, 6, 9, 10]
    with np.load(full / "samples.npz") as x, np.load(part / "samples.npz") as y:
        np.testing.assert_array_equal(x["y"], y["y"])


def test_divergence_stops_with_step_and_keeps_last_good_checkpoint(nan_potential, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--preset", "uotm-outlier-1d", *nan_potential(out, "train.ckpt_every=2")]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if "error" in line]  # after the block that says what will run
    # 6 potential calls per step: call 22 is in step 4 (steps count from 1, as in metrics.jsonl)
    assert len(errors) == 1 and "diverged at step 4" in errors[0] and "ckpt_00000002.pt" in errors[0]
    assert ckpt.latest_checkpoint(out).name == "ckpt_00000002.pt"
    state = torch.load(ckpt.latest_checkpoint(out), weights_only=True)
    assert all(torch.isfinite(t).all() for t in state["potential"].values())


@pytest.mark.parametrize(
    ("argv", "key"),
    [
        (["--preset", "no-such-preset"], "preset"),
        (["train.no_such_key=1"], "train.no_such_key"),
        (["algorithm.name=gan"], "algorithm.name"),
        (["algorithm.psi_source=hellinger"], "algorithm.psi_source"),
        (["train.batch_size=0"], "train.batch_size"),
        (["algorithm.tau=-0.5"], "algorithm.tau"),
        (["networks.map.depth=3"], "networks.map.depth"),
        (["data.target.name=no_such_data"], "data.target.name"),
        (["eval.metrics=[fid]"], "eval.metrics"),
    ],
)
def test_bad_configs_exit_with_one_line_naming_the_key(argv, key, tmp_path, capsys):
    code = main([*argv, "--out", str(tmp_path / "r"), "train.iterations=1", "train.progress=false"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert len(err) == 1 and err[0].startswith("fastot.train: error: ") and key in err[0], err


def test_bad_config_from_the_shell_has_no_traceback(tmp_path):
    proc = run_python(["-m", "fastot.train", "--out", str(tmp_path / "r"), "algorithm.tau=-1"], timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "Traceback" not in proc.stderr and "algorithm.tau" in proc.stderr


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "ckpt_00000001.pt"
    rundir.save_checkpoint(path, {"a": torch.ones(3)})

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        rundir.save_checkpoint(path, {"a": torch.zeros(3)})
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(3))  # old file intact
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind


def test_custom_networks_plug_in_by_name(tmp_path):
    class Linear(nn.Module):
        def __init__(self, dim: int) -> None:
            super().__init__()
            self.lin = nn.Linear(dim, 1)

        def forward(self, y):
            return self.lin(y).squeeze(-1)

    register_potential("test_linear")(Linear)
    try:
        cfg = load_config(
            "unified-wgan-gp-8g", [*FAST, "train.iterations=3", "networks.potential={name: test_linear}"]
        )
        assert train(cfg, tmp_path)["steps"] == 3
    finally:
        POTENTIALS.pop("test_linear")


def test_smoke_narrows_networks_and_batch_only(capsys):
    assert main(["--preset", "celebahq256-uotm", "--smoke", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "batch_size: 4" in out and "nf: 8" in out and "ngf: 8" in out
    assert "tau: 1.0e-05" in out and "reg_weight: 5.0" in out  # the algorithm is untouched


@pytest.mark.parametrize(
    ("extra", "fused"), [([], True), (["optim.map.foreach=true"], None)], ids=["adam", "foreach"]
)
def test_adam_runs_fused_unless_the_config_picks_an_implementation(extra, fused, tmp_path):
    # The fused Adam updates every parameter in one kernel; a config that names foreach gets it.
    run = Run(load_config("uotm-outlier-1d", [*FAST, *extra]), tmp_path)
    assert run.opt_map.defaults.get("fused") is fused
    assert run.opt_pot.defaults["fused"] is True
    other = build_optimizer(nn.Linear(2, 2).parameters(), {"name": "rmsprop", "lr": 1e-3}, "optim.map")
    assert not other.defaults.get("fused")
