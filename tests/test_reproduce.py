"""python -m fastot.reproduce: every experiment's rows are valid runs, and the tables are filled."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from fastot import reproduce
from fastot.algorithms import build_algorithm
from fastot.config import load_config, to_container
from fastot.reproduce import cli, optimum, runner, toys
from fastot.train.loop import train

FAST = [
    "train.progress=false",
    "train.threads=1",
    "eval.plots=false",
    "eval.n_samples=300",
    "train.batch_size=32",
]
ROWS = [
    (name, row, budget)
    for name, exp in reproduce.EXPERIMENTS.items()
    for row in exp.rows
    for budget in exp.budgets
    if row.budget_overrides(budget) is not None
]


@pytest.mark.parametrize(("name", "row", "budget"), ROWS, ids=[f"{n}-{r.label}-{b}" for n, r, b in ROWS])
def test_every_row_is_a_valid_configuration(name, row, budget):
    cfg = load_config(row.preset, row.budget_overrides(budget))
    assert cfg.preset == row.preset


@pytest.mark.parametrize(("name", "row", "budget"), ROWS, ids=[f"{n}-{r.label}-{b}" for n, r, b in ROWS])
def test_every_row_trains_its_whole_schedule(name, row, budget):
    """A budget that lengthens S-JKO's phases must lengthen the run too, or the last phases never train."""
    cfg = load_config(row.preset, row.budget_overrides(budget))
    algo = build_algorithm(to_container(cfg, "algorithm"))
    iterations = cfg.train.iterations if cfg.train.iterations is not None else algo.default_iterations()
    assert algo.unfinished_schedule(int(iterations)) is None


@pytest.mark.parametrize("name", list(reproduce.EXPERIMENTS))
def test_no_budget_is_shorter_than_the_cpu_budget(name):
    exp = reproduce.EXPERIMENTS[name]
    cpu = reproduce.estimate_minutes(exp, "cpu")
    assert cpu > 0
    assert all(reproduce.estimate_minutes(exp, b) >= cpu for b in exp.budgets)


def test_rows_that_share_runs_share_their_configuration():
    """A row that reuses another row's runs (run_as) must train exactly that row's configuration."""
    from omegaconf import OmegaConf

    rows = [row for exp in reproduce.EXPERIMENTS.values() for row in exp.rows]
    shared = [row for row in rows if row.run_as is not None]
    assert shared
    for row in shared:
        owner = next(r for r in rows if r.label == row.run_as and r.preset == row.preset and r.run_as is None)
        mine = load_config(row.preset, reproduce.run_overrides(row, 0, "cpu"))
        theirs = load_config(owner.preset, reproduce.run_overrides(owner, 0, "cpu"))
        assert OmegaConf.to_container(mine) == OmegaConf.to_container(theirs)
        assert reproduce.run_dir_of(Path("o"), "cpu", row, 0) == reproduce.run_dir_of(
            Path("o"), "cpu", owner, 0
        )


def test_a_rows_own_step_cost_replaces_its_experiments_in_the_estimate():
    exp = reproduce.EXPERIMENTS["grids"]
    row = next(r for r in exp.rows if r.ms_per_iteration is not None)
    one = dataclasses.replace(exp, rows=[row])
    estimate = reproduce.estimate_minutes(one, "paper")
    uniform = reproduce.estimate_minutes(
        dataclasses.replace(one, rows=[dataclasses.replace(row, ms_per_iteration=None)]), "paper"
    )
    assert estimate == pytest.approx(uniform * row.ms_per_iteration / exp.ms_per_iteration)


def _tiny(row: reproduce.Row) -> list[str]:
    if "sjko" in row.preset:  # 9 JKO steps: the OU table reads the snapshots after steps 5 and 9
        return [f"algorithm.{k}" for k in ("num_phases=9", "init_iterations=1", "phase_iterations=1")]
    return ["train.iterations=2", "eval.every=0"] if "moons" not in row.preset else ["train.iterations=4"]


@pytest.mark.parametrize("name", list(reproduce.EXPERIMENTS))
def test_first_steps_of_every_experiment_give_its_metrics(name, tmp_path):
    exp = reproduce.EXPERIMENTS[name]
    row = exp.rows[0]
    overrides = [*row.overrides, *FAST, *_tiny(row)]
    if "moons" in row.preset:
        overrides.append("eval.every=1")
    train(load_config(row.preset, overrides), tmp_path)
    metrics = exp.extract(tmp_path)
    assert metrics and all(isinstance(v, (int, float)) and v == v for v in metrics.values())


def test_outlier_table_sets_ours_beside_the_paper_and_the_exact_optimum(tmp_path, monkeypatch):
    monkeypatch.setitem(optimum.EXACT_POINTS, 1, 200)
    label = "UOTM, std 0.5 (paper text)"
    exp = reproduce.EXPERIMENTS["outlier"]
    row = next(r for r in exp.rows if r.label == label)
    monkeypatch.setattr(row, "cpu", ["train.iterations=2", "eval.n_samples=300"])
    assert reproduce.main(["outlier", "--only", label, "--seeds", "0", "--out", str(tmp_path)]) == 0
    md = (tmp_path / "cpu" / "outlier.md").read_text()
    assert (tmp_path / "cpu" / "outlier.png").exists()
    lines = md.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("| run |"))
    header, values = lines[start], lines[start + 2]
    cols = [c.strip() for c in header.strip("|").split("|")]
    cells = dict(zip(cols, [c.strip() for c in values.strip("|").split("|")], strict=True))
    # The exact optimum of this objective puts ~5% below 0 (the data: 3.2%).
    assert 0.04 < float(cells["optimum: P(T(x) < 0)"]) < 0.06
    # Draws of the optimum are continuous: a kNN estimate of its KL to nu is small, not degenerate.
    assert 0 < float(cells["optimum: KL(T#μ‖ν)"]) < 0.2
    assert cells["map L2 gap"] != "—" and cells["energy to optimum"] != "—"
    assert "semi-dual optimum (kl/kl" in md


def test_ou_noise_floor_is_what_exact_samples_score(tmp_path):
    # Exact samples of rho_t in the shape of an S-JKO run: the floor is their expected symKL, about
    # (d + d(d + 1) / 2) / N for a Gaussian fit of N samples in d dimensions.
    import numpy as np
    from omegaconf import OmegaConf

    d, n = 4, 2000
    (tmp_path / "snapshots").mkdir()
    OmegaConf.save(OmegaConf.create({"data": {"target": {"dim": d, "seed": 0}}}), tmp_path / "config.yaml")
    np.savez(tmp_path / "snapshots" / "phase_000.npz", y=np.zeros((n, d)))
    floor = toys.ou_floor(tmp_path, reps=50)
    expected = math.log10((d + d * (d + 1) / 2) / n)
    for v in floor.values():
        assert abs(v - expected) < 0.1, (v, expected)


def test_an_interrupted_run_resumes_and_a_changed_one_starts_again(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from fastot.train.checkpoint import latest_checkpoint

    row = next(r for r in reproduce.EXPERIMENTS["outlier"].rows if r.preset == "uotm-outlier-1d")
    monkeypatch.setattr(row, "cpu", ["train.iterations=4", "train.ckpt_every=2", *FAST[3:]])
    run_dir = reproduce.run_dir_of(tmp_path, "cpu", row, 0)
    train(load_config(row.preset, reproduce.run_overrides(row, 0, "cpu")), run_dir)
    (run_dir / "summary.json").unlink()  # cut off during the final evaluation
    calls: list[list[str]] = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return SimpleNamespace(returncode=0, stderr="")

    monkeypatch.setattr(runner.subprocess, "run", fake_run)
    reproduce.run_one(row, 0, tmp_path, "cpu")
    assert calls[-1][3:] == ["--resume", str(run_dir)]
    assert latest_checkpoint(run_dir) is not None  # nothing was deleted

    # A longer budget is another configuration: its run starts from nothing.
    monkeypatch.setattr(row, "cpu", ["train.iterations=6", "train.ckpt_every=2", *FAST[3:]])
    reproduce.run_one(row, 0, tmp_path, "cpu")
    assert "--resume" not in calls[-1] and calls[-1][3:7] == ["--preset", row.preset, "--out", str(run_dir)]
    assert not run_dir.exists()


def test_runs_of_several_experiments_share_one_pool(tmp_path, monkeypatch):
    # With --jobs 2, the second experiment's run starts while the first experiment's is running:
    # neither passes the barrier alone. Each table is still written from its own runs.
    import threading

    barrier = threading.Barrier(2, timeout=30)
    reports: list[tuple[str, list[str]]] = []

    def fake_run(row, seed, out, budget):
        barrier.wait()
        return tmp_path / row.label

    monkeypatch.setattr(cli, "run_one", fake_run)
    monkeypatch.setattr(cli, "report", lambda name, results, *a: reports.append((name, list(results))))
    argv = ["outlier", "weak", "--seeds", "0", "--jobs", "2", "--out", str(tmp_path)]
    argv += ["--only", "UOTM, std 0.5 (paper text)", "NOT γ=0.5"]
    assert reproduce.main(argv) == 0
    assert reports == [("outlier", ["UOTM, std 0.5 (paper text)"]), ("weak", ["NOT γ=0.5"])]


def test_the_fifth_of_a_run_is_a_kept_checkpoint_near_it_or_none():
    from fastot.reproduce.image_metrics import fifth_of_run

    assert fifth_of_run([300, 600, 900, 1200, 1500]) == 300
    assert fifth_of_run([3600, 3900, 4200, 4500, 4800, 5000]) is None  # only the last ones kept
    assert fifth_of_run([]) is None
