"""What a user sees: --smoke, the start block, summary.json provenance, threads, --list, --help,
plots, sample grids, warnings above the progress bar."""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import fastot
from fastot.algorithms import build_algorithm
from fastot.config import (
    DEFAULT_PRESET,
    PRESET_DIR,
    SMOKE_IMAGE_SIZE,
    SMOKE_ITERATIONS,
    intra_op_threads,
    list_presets,
    load_config,
    smoke,
    to_container,
)
from fastot.data.registry import image_shape
from fastot.train import report
from fastot.train.__main__ import _description, estimate_cpu_seconds, list_presets_table, main
from fastot.train.images import MIN_SAVED_SIDE, save_grid
from fastot.train.run import Run
from fastot.train.runtime import fused_backend


@pytest.fixture(autouse=True)
def _keep_threads():
    """Runs set the process's intra-op thread count; put it back for the other tests."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------------------- --smoke
def _smoke_length(preset: str) -> int:
    cfg = smoke(load_config(preset, [], allow_missing=True))
    if cfg.train.iterations is not None:
        return int(cfg.train.iterations)
    return build_algorithm(to_container(cfg, "algorithm")).default_iterations()


@pytest.mark.parametrize("preset", list_presets())
def test_smoke_is_a_handful_of_iterations_for_every_preset(preset):
    full = load_config(preset, [], allow_missing=True)
    cfg = smoke(full)
    assert 2 <= _smoke_length(preset) <= SMOKE_ITERATIONS
    assert cfg.train.batch_size <= 4 and cfg.eval.n_samples <= 500
    assert cfg.train.ckpt_every < _smoke_length(preset)  # a checkpoint to resume from before the end
    assert cfg.algorithm.name == full.algorithm.name
    algo = build_algorithm(to_container(cfg, "algorithm"))
    assert 1 <= algo.k_v <= 2 and 1 <= algo.k_t <= 2
    if "num_phases" in cfg.algorithm:
        assert cfg.algorithm.num_phases >= 2
    shapes = {side: image_shape(to_container(cfg, f"data.{side}")) for side in ("source", "target")}
    assert all(s is None or s[1] <= SMOKE_IMAGE_SIZE for s in shapes.values())
    before = {side: image_shape(to_container(full, f"data.{side}")) for side in ("source", "target")}
    if before["source"] == before["target"]:  # images shrink on both sides together
        assert shapes["source"] == shapes["target"]


def test_smoke_run_is_short_checkpointed_and_resumable(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--preset", "sjko-25gaussians", "--smoke", "--out", str(out), "train.progress=false"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] <= SMOKE_ITERATIONS and summary["metrics"]  # the quick evaluation ran
    phases = {r["phase"] for r in _rows(out)}
    assert len(phases) >= 2  # S-JKO's phases are exercised
    ckpts = sorted(p.name for p in (out / "checkpoints").glob("ckpt_*.pt"))
    assert len(ckpts) == 2 and ckpts[-1] == f"ckpt_{summary['steps']:08d}.pt"
    # Resume from the halfway checkpoint: the state written by --smoke is a resumable one.
    (out / "checkpoints" / ckpts[-1]).unlink()
    (out / "summary.json").unlink()
    capsys.readouterr()
    assert main(["--resume", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["steps"] == summary["steps"]
    assert "resuming after step 3" in capsys.readouterr().err


def test_smoke_runs_the_uotm_sd_alpha_schedule(tmp_path):
    out = tmp_path / "run"
    assert main(["--preset", "uotm-sd-8g", "--smoke", "--out", str(out), "train.progress=false"]) == 0
    alphas = [r["alpha"] for r in _rows(out)]
    # alpha goes from alpha_min 0.2 to alpha_max 5 over 75% of the 6 smoke steps (logged every 2)
    assert alphas == sorted(alphas) and len(set(alphas)) == len(alphas) and alphas[-1] == pytest.approx(5.0)


def test_a_run_that_stops_before_the_last_jko_phase_says_so(tmp_path, capsys):
    out = tmp_path / "run"
    phases = ["algorithm.num_phases=3", "algorithm.init_iterations=2", "algorithm.phase_iterations=2"]
    quiet = ["train.progress=false", "eval.plots=false", *phases]
    assert main(["--preset", "sjko-ou", "--out", str(out), *quiet, "train.iterations=3"]) == 0
    warned = [ln for ln in capsys.readouterr().err.splitlines() if "warning:" in ln]
    assert warned == [
        "fastot.train: warning: train.iterations: 3 iterations end in JKO phase 1 of 3, whose schedule takes "
        "6 (init_iterations + (num_phases - 1) * phase_iterations); leave train.iterations unset to train "
        "every phase"
    ]
    assert main(["--preset", "sjko-ou", "--out", str(tmp_path / "whole"), *quiet]) == 0
    assert "warning:" not in capsys.readouterr().err


# ---------------------------------------------------------------------------- start block, summary
def test_start_block_and_summary_say_what_ran(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--out", str(out), "train.progress=false", "train.iterations=2", "eval.plots=false"]) == 0
    err = capsys.readouterr().err
    backend = fused_backend(torch.device("cpu"))
    expected = {
        "preset": DEFAULT_PRESET,
        "algorithm": "uotm",
        "device": f"cpu (fused ops: {backend} backend)",
        "threads": "1 intra-op",
        "iterations": "2 (batch 256)",
        "run dir": str(out.resolve()),
    }
    block = {}
    for line in err.splitlines():
        for key in expected:
            if line.startswith(f"  {key} "):
                block[key] = line[len(key) + 2 :].strip()
    assert set(block) == set(expected), err
    for key, value in expected.items():
        assert block[key].startswith(value), (key, block[key])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["preset"] == DEFAULT_PRESET and summary["backend"] == backend
    assert summary["torch_version"] == torch.__version__ and summary["fastot_version"] == fastot.__version__
    assert summary["threads"] == 1
    root = Path(fastot.__file__).resolve().parent.parent
    if (root / ".git").exists() and shutil.which("git"):
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
        assert summary["git_sha"] == head.stdout.strip()


def test_version_without_git(monkeypatch):
    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(report.subprocess, "run", no_git)
    info = report.source_version()
    assert info["git_sha"] is None and info["fastot_version"] == fastot.__version__


def test_fastot_backend_that_cannot_run_is_a_config_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FASTOT_BACKEND", "cuda")
    assert main(["--out", str(tmp_path / "r"), "train.iterations=1", "train.progress=false"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fastot.train: error: FASTOT_BACKEND: "), err


# ---------------------------------------------------------------------------- threads
def test_threads_default_one_for_vectors_machine_for_images_explicit_wins():
    assert intra_op_threads(load_config("uotm-outlier-1d")) == 1
    assert intra_op_threads(load_config("sjko-ou")) == 1
    assert intra_op_threads(load_config("digits-uotm")) is None  # keeps the machine's threads
    assert intra_op_threads(load_config("cifar10-uotm", [], allow_missing=True)) is None
    assert intra_op_threads(load_config("uotm-outlier-1d", ["train.threads=2"])) == 2
    assert intra_op_threads(load_config("digits-uotm", ["train.threads=3"])) == 3


def test_a_toy_run_uses_one_thread(tmp_path):
    torch.set_num_threads(2)
    Run(load_config("unified-uotm-8g"), tmp_path)
    assert torch.get_num_threads() == 1
    Run(load_config("unified-uotm-8g", ["train.threads=2"]), tmp_path)
    assert torch.get_num_threads() == 2


# ---------------------------------------------------------------------------- --list, --help
def test_list_is_aligned_untruncated_and_says_what_each_preset_needs():
    text = list_presets_table(width=100)
    lines = text.splitlines()
    header = lines[0]
    cols = [header.index(h) for h in ("algorithm", "data", "runs on")]
    rows = {line.split()[0]: line for line in lines[1:] if line and not line.startswith(" ")}
    assert set(list_presets()) <= set(rows)
    for name, line in rows.items():
        if name in list_presets():
            for c in cols:  # every column starts where its header does
                assert line[c - 2 : c] == "  " and line[c] != " ", (name, line)
    assert "(default)" in rows[DEFAULT_PRESET] and "CPU" in rows[DEFAULT_PRESET]
    assert "path needed" in rows["cifar10-uotm"] and "GPU" in rows["cifar10-uotm"]
    assert "built-in" in rows["digits-uotm"] and "CPU" in rows["digits-uotm"]
    below = {}  # the indented lines under each preset: the paths to set and the description
    for line in lines[1:]:
        if line and not line.startswith(" "):
            current = line.split()[0]
        elif line.startswith("    "):
            below[current] = f"{below.get(current, '')} {line.strip()}".strip()
            assert len(line) <= 100
    assert below["cifar10-uotm"].startswith("Set data.target.path=DIR.")
    assert "data.source.path=DIR data.target.path=DIR" in below["not-translation"]
    # the description is the whole opening sentence, not the YAML's first line cut short
    first = (PRESET_DIR / "cifar10-uotm.yaml").read_text().splitlines()[0].lstrip("# ")
    desc = _description((PRESET_DIR / "cifar10-uotm.yaml").read_text())
    assert desc.startswith(first) and len(desc) > len(first) and desc.endswith(".")
    assert desc in below["cifar10-uotm"]
    assert "estimate" in text


def test_time_estimates_grow_with_the_work():
    short = estimate_cpu_seconds(load_config("uotm-outlier-1d"))
    longer = estimate_cpu_seconds(load_config("uotm-outlier-1d", ["train.iterations=3000"]))
    assert short > 0 and longer == pytest.approx(2 * short)
    assert estimate_cpu_seconds(load_config("cifar10-uotm", [], allow_missing=True)) > 24 * 3600
    # NOT's map updates draw n_z outputs per source sample: k_v * 1 + k_t * n_z updates per iteration
    few, many = (load_config("not-moons-uniform", [f"algorithm.n_z={n}"]) for n in (2, 8))
    per_update = (estimate_cpu_seconds(many) - estimate_cpu_seconds(few)) / (6 * many.algorithm.k_t)
    assert estimate_cpu_seconds(few) == pytest.approx((1 + 2 * few.algorithm.k_t) * per_update)


def test_help_is_plain_text_and_names_the_default(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert DEFAULT_PRESET in out and "``" not in out and ":class:" not in out
    assert "--smoke" in out and "--list" in out


# ---------------------------------------------------------------------------- plots, grids
def test_plots_label_every_axis_and_name_the_run(tmp_path, monkeypatch):
    from fastot.train import plots

    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path, dpi=110: figures.append((path.name, fig)) or path)
    out = tmp_path / "run"
    main(["--out", str(out), "train.progress=false", "train.iterations=4", "train.log_every=2"])
    names = {n for n, _ in figures}
    assert {"target_vs_generated.png", "transport_map.png", "losses.png"} <= names
    for name, fig in figures:
        assert DEFAULT_PRESET in fig._suptitle.get_text() and "step 4" in fig._suptitle.get_text(), name
        for ax in fig.axes:
            if ax.axison:
                assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title(), (name, ax)
    (target,) = [fig for n, fig in figures if n == "target_vs_generated.png"]
    assert "log" in [ax.get_yscale() for ax in target.axes]  # the 1% outlier mode is visible


def test_image_runs_get_a_loss_plot_and_large_grids(tmp_path):
    out = tmp_path / "run"
    argv = ["--preset", "digits-uotm", "--smoke", "--out", str(out), "train.progress=false"]
    argv.append("eval.plots=true")  # the image presets turn the plots off
    assert main(argv) == 0
    assert (out / "plots" / "losses.png").exists()
    with Image.open(out / "samples.png") as img:
        assert min(img.size) >= MIN_SAVED_SIDE


def test_saved_grid_is_upsampled_by_whole_pixels(tmp_path):
    images = torch.rand(4, 3, 8, 8) * 2 - 1
    grid = save_grid(images, tmp_path / "g.png", nrow=2)
    with Image.open(tmp_path / "g.png") as img:
        big = np.asarray(img)
    k = big.shape[0] // grid.shape[0]
    assert min(big.shape[:2]) >= MIN_SAVED_SIDE and big.shape[:2] == (grid.shape[0] * k, grid.shape[1] * k)
    np.testing.assert_array_equal(big[::k, ::k], grid)  # nearest neighbour: no blurring
    np.testing.assert_array_equal(big[k - 1 :: k, k - 1 :: k], grid)


# ---------------------------------------------------------------------------- warnings and the bar
def test_corrupt_image_warning_gets_its_own_line_above_the_bar(tmp_path, capsys):
    folder = tmp_path / "digits"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((16, 16), 60 * i, np.uint8)).save(folder / f"{i}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    argv = [
        "--preset",
        "digits-uotm",
        "--smoke",
        "--out",
        str(tmp_path / "run"),
        f"data.target={{name: image_folder, path: {folder}, size: 16, channels: 1}}",
        "train.progress=true",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(argv) == 0
    err = capsys.readouterr().err
    # What a terminal shows of each line is what follows its last carriage return.
    shown = [line.rsplit("\r", 1)[-1] for line in err.split("\n")]
    hits = [line for line in shown if "broken.png" in line]
    assert hits, err
    assert all(line.startswith("CorruptImageWarning: ") and "it/s" not in line for line in hits), hits
