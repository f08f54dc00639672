"""The papers' low-dimensional experiments, side by side with the paper and the exact optimum.

    python -m fastot.reproduce --list
    python -m fastot.reproduce outlier unified --seeds 0 1 2 --budget cpu --out runs/repro

Every row of an experiment is a shipped preset plus overrides, run once per seed through
``python -m fastot.train`` (one intra-op thread per run, ``--jobs`` runs at a time). ``--budget paper``
runs the papers' schedules (the presets' own lengths unless a row says otherwise); ``--budget cpu``
runs the shorter budgets below. For every row the table gives our mean +- std over seeds, the
paper's value, and the same metric at the exact optimum of the objective being trained
(``fastot.groundtruth``), plus our distance to that optimum. An interrupted sweep continues: finished
runs are reused, and a run cut off mid-way resumes from its last checkpoint if its configuration is
unchanged. Writes ``OUT/<budget>/<experiment>.md`` and ``.png``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastot import repro_metrics, rundir
from fastot.repro_images import GROUPS, digits_experiments
from fastot.repro_spec import BUDGETS, Experiment, Row, _iters, _sjko, run_name

# Grid cells (1-D) or samples (2-D) of the exact solutions: the optimum's own discretisation error is
# below the runs' sampling noise at these sizes.
EXACT_POINTS = {1: 1000, 2: 1500}


def _uotm_grid_row(label: str, preset: str) -> Row:
    # UOTM's step on the 2-D grids costs half of S-JKO's, which also runs the frozen previous map.
    return Row(label, preset, ["eval.every=0"], cpu=_iters(5000), ms_per_iteration=22.0)


# ---------------------------------------------------------------- metrics read from a run
def _summary(run_dir: Path) -> dict[str, float]:
    return json.loads((rundir.summary(run_dir)).read_text())["metrics"]


def _samples(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    s = np.load(rundir.samples(run_dir))
    return s["x"], s["y"]


def _table1(run_dir: Path) -> dict[str, float]:
    return {"KL(T#μ‖ν)": _summary(run_dir)["kl_knn"]}


def _outlier(run_dir: Path) -> dict[str, float]:
    _, y = _samples(run_dir)
    m = _summary(run_dir)
    return {"P(T(x) < 0)": float((y < 0).mean()), "KL(T#μ‖ν)": m["kl_knn"], "monotonicity": m["monotonicity"]}


def _grid(run_dir: Path) -> dict[str, float]:
    m = _summary(run_dir)
    keep = {
        "modes_covered": "modes",
        "hq_fraction": "hq fraction",
        "energy": "energy to ν",
        "kl_knn": "KL(T#μ‖ν)",
    }
    return {name: m[k] for k, name in keep.items() if k in m}


def _weak(run_dir: Path) -> dict[str, float]:
    rows = [json.loads(ln) for ln in (rundir.metrics(run_dir)).read_text().splitlines() if ln.strip()]
    energy = [r["energy"] for r in rows if "energy" in r][-5:]
    return {"energy (last 5 evals)": float(np.mean(energy)), "fluctuation (std)": float(np.std(energy))}


def _ou_floor(run_dir: Path, reps: int = 200) -> dict[str, float]:
    """log10 E symKL of a Gaussian fitted to exact samples of rho_t, at the snapshot's sample size:
    what a perfect flow would score, so values near it cannot be told apart."""
    from omegaconf import OmegaConf

    from fastot import metrics
    from fastot.data.ou import ou_solution

    target = OmegaConf.load(rundir.config(run_dir)).data.target
    n = len(np.load(sorted((rundir.snapshots(run_dir)).glob("*.npz"))[0])["y"])
    g = torch.Generator().manual_seed(0)
    out = {}
    for t in (0.5, 0.9):
        mean, cov = ou_solution(int(target.dim), t, seed=int(target.seed))
        chol = torch.linalg.cholesky(cov)
        kls = [
            metrics.gaussian_symmetric_kl(
                mean + torch.randn(n, len(mean), generator=g, dtype=cov.dtype) @ chol.T, mean, cov
            )
            for _ in range(reps)
        ]
        out[f"log10 symKL t={t}"] = math.log10(float(np.mean(kls)))
    return out


def _ou(run_dir: Path) -> dict[str, float]:
    from omegaconf import OmegaConf

    from fastot import metrics
    from fastot.data.ou import ou_solution

    target = OmegaConf.load(rundir.config(run_dir)).data.target
    snaps = sorted((rundir.snapshots(run_dir)).glob("*.npz"))
    out = {}
    for t, idx in ((0.5, 4), (0.9, 8)):  # snapshot k closes JKO step k + 1: t = (k + 1) h
        y = torch.from_numpy(np.load(snaps[idx])["y"])
        mean, cov = ou_solution(int(target.dim), t, seed=int(target.seed))
        out[f"log10 symKL t={t}"] = math.log10(metrics.gaussian_symmetric_kl(y, mean, cov))
    return out


# ---------------------------------------------------------------- the experiments
# The papers' toy figures make qualitative claims; the table quotes them.
OTM_FIG2 = "mass sent to the outliers (Fig. 2)"
UOTM_FIG2 = "outliers ignored (Fig. 2)"
FIG1 = {
    "WGAN": "loss diverges, mode collapse",
    "WGAN-GP": "stable, mode mixture",
    "OTM": "all modes, then diverges",
    "UOTM w/o cost": "stable, mode collapse",
    "UOTM": "stable, all modes",
    "UOTM-SD": "— (not in Fig. 1)",
}
TABLE1_PAPER = {("OTM", 0.1): "0.05", ("OTM", 0.02): "0.05", ("UOTM fixed source", 0.1): "0.02"}
TABLE1_PAPER |= {("UOTM fixed source", 0.02): "0.004", ("UOTM", 0.1): "0.02", ("UOTM", 0.02): "0.005"}
EXPERIMENTS: dict[str, Experiment] = {
    "table1": Experiment(
        "UOTM Table 1: KL(T#μ‖ν) on the 1-D mixture pair",
        "UOTM paper, Table 1 (Sec. 5.2)",
        [
            Row(
                f"{name} τ={tau}",
                preset,
                [f"algorithm.tau={tau / 2}"],
                cpu=_iters(1000),
                paper_value=TABLE1_PAPER[(name, tau)],
            )
            for name, preset in (
                ("OTM", "otm-table1-1d"),
                ("UOTM fixed source", "uotm-fixed-source-table1-1d"),
                ("UOTM", "uotm-table1-1d"),
            )
            for tau in (0.1, 0.02)
        ]
        + [
            Row(
                "UOTM τ=0.1, reference setting",
                "uotm-table1-1d",
                ["algorithm.tau=0.05", "algorithm.reuse_potential_batch=true"]
                + [f"optim.{net}.lr=1e-5" for net in ("map", "potential")],
                cpu=_iters(1000),
                paper_value="0.02",
            )
        ],
        _table1,
        ms_per_iteration=100.0,
    ),
    "outlier": Experiment(
        "UOTM outlier robustness (1-D)",
        "UOTM paper, Fig. 2 (Sec. 5.1)",
        [
            Row(
                f"{name}, {std}",
                f"{preset}{suffix}",
                cpu=_iters(1500),
                paper=_iters(6250),
                paper_value=claim if suffix == "" else "—",
            )
            for suffix, std in (("", "std 0.5 (paper text)"), ("-reference", "std 0.1 (reference code)"))
            for name, preset, claim in (
                ("OTM", "otm-outlier-1d", OTM_FIG2),
                ("UOTM", "uotm-outlier-1d", UOTM_FIG2),
            )
        ],
        _outlier,
        ms_per_iteration=100.0,
    ),
    "unified": Experiment(
        "Unified framework: N(0, I₂) → 8 Gaussians",
        "Unified-framework paper, Fig. 1 (Sec. 3.2)",
        [
            Row(name, preset, ["eval.every=0"], cpu=_iters(2000), paper_value=FIG1[name])
            for name, preset in (
                ("WGAN", "unified-wgan-8g"),
                ("WGAN-GP", "unified-wgan-gp-8g"),
                ("OTM", "unified-otm-8g"),
                ("UOTM w/o cost", "unified-uotm-nocost-8g"),
                ("UOTM", "unified-uotm-8g"),
                ("UOTM-SD", "uotm-sd-8g"),
            )
        ],
        _grid,
        ms_per_iteration=42.0,
    ),
    "grids": Experiment(
        "S-JKO vs UOTM vs source-fixed UOTM: 25 Gaussians and two circles",
        "S-JKO paper, Fig. 3 (Sec. 5.1)",
        [
            Row("S-JKO 25 Gaussians", "sjko-25gaussians", ["eval.every=0"], cpu=_sjko(10, 500, 500)),
            _uotm_grid_row("UOTM 25 Gaussians", "uotm-25gaussians"),
            _uotm_grid_row("UOTM fixed source 25 Gaussians", "uotm-fixed-source-25gaussians"),
            Row(
                "S-JKO two circles",
                "sjko-two-circles",
                ["eval.every=0", "eval.metrics=[kl_knn,energy]"],
                cpu=_sjko(10, 500, 500),
            ),
            _uotm_grid_row("UOTM two circles", "uotm-two-circles"),
            _uotm_grid_row("UOTM fixed source two circles", "uotm-fixed-source-two-circles"),
        ],
        _grid,
        ms_per_iteration=46.0,
    ),
    "weak": Experiment(
        "NOT vs KNOT: two moons → Unif([−2, 2]²)",
        "KNOT paper, Sec. 5 (fluctuation of NOT for γ > 0)",
        [
            Row(
                f"{name.upper()} γ={gamma}",
                f"{name}-moons-uniform",
                [f"algorithm.gamma={gamma}", "eval.every=200"],
                cpu=_iters(2000),
            )
            for name in ("not", "knot")
            for gamma in (0.0, 0.5, 1.0)
        ],
        _weak,
        ms_per_iteration=50.0,
        exact=False,
    ),
    "ou": Experiment(
        "S-JKO vs the Ornstein–Uhlenbeck closed form",
        "S-JKO paper, Tables 6–7",
        [
            Row(
                f"S-JKO OU d={d}",
                "sjko-ou",
                [f"data.source.dim={d}", f"data.target.dim={d}"],
                cpu=_sjko(9, 400, 200),
                paper_value=paper,
            )
            for d, paper in ((2, "−2.3 / −2.4"), (4, "−0.9 / −1.2"), (6, "−1.8 / −0.8"), (10, "−0.1 / −0.1"))
        ],
        _ou,
        ms_per_iteration=50.0,
        exact=False,
        floor=_ou_floor,
    ),
}


EXPERIMENTS |= digits_experiments(
    repro_metrics.digits_extract,
    repro_metrics.digits_floor,
    repro_metrics.figure,
    repro_metrics.outlier_extract,
    repro_metrics.gaussian_extract,
    repro_metrics.gaussian_floor,
)


# ---------------------------------------------------------------- running
def run_dir_of(out: Path, budget: str, row: Row, seed: int) -> Path:
    return out / budget / f"{row.preset}--{run_name(row)}-s{seed}"


def run_overrides(row: Row, seed: int, budget: str) -> list[str]:
    overrides = row.budget_overrides(budget)
    if overrides is None:
        raise ValueError(f"row {row.label!r} has no {budget!r} budget")
    return [*overrides, f"seed={seed}", "train.threads=1", "train.progress=false", "eval.plots=false"]


def resumable(run_dir: Path, row: Row, overrides: list[str]) -> bool:
    """An interrupted run of this very configuration with a checkpoint to continue from (the trainer
    resumes bit for bit, so a paper-budget run may span several sittings)."""
    from omegaconf import OmegaConf

    from fastot.train.checkpoint import latest_checkpoint
    from fastot.train.config import load_config

    if not (rundir.config(run_dir)).is_file() or latest_checkpoint(run_dir) is None:
        return False
    wanted = OmegaConf.to_container(load_config(row.preset, overrides))
    return OmegaConf.to_container(OmegaConf.load(rundir.config(run_dir))) == wanted


def run_one(row: Row, seed: int, out: Path, budget: str) -> Path:
    run_dir = run_dir_of(out, budget, row, seed)
    if rundir.is_finished(run_dir) or (rundir.diverged(run_dir)).exists():
        return run_dir
    overrides = run_overrides(row, seed, budget)
    cmd = [sys.executable, "-m", "fastot.train"]
    if resumable(run_dir, row, overrides):
        cmd += ["--resume", str(run_dir)]
    else:
        if run_dir.exists():  # interrupted before its first checkpoint, or another configuration
            shutil.rmtree(run_dir)
        cmd += ["--preset", row.preset, "--out", str(run_dir), *overrides]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 and "diverged" in proc.stderr.lower():
        run_dir.mkdir(parents=True, exist_ok=True)
        (rundir.diverged(run_dir)).write_text(proc.stderr)
    elif proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return run_dir


# ---------------------------------------------------------------- the exact optimum
def exact_metrics(name: str, run_dir: Path, cache: Path) -> tuple[dict[str, float], Any]:
    """The experiment's metrics at the exact optimum of the run's objective, and the optimum itself."""
    from omegaconf import OmegaConf

    from fastot import groundtruth, metrics

    cfg = OmegaConf.load(rundir.config(run_dir))
    # Cached by the objective itself (data and algorithm), which the seeds of a row share.
    spec = json.dumps(
        OmegaConf.to_container(OmegaConf.masked_copy(cfg, ["data", "algorithm"])), sort_keys=True
    )
    key = cache / f"{hashlib.sha1(spec.encode()).hexdigest()[:16]}.pt"
    if key.exists():
        toy = torch.load(key, weights_only=False)
    else:
        dim = int(cfg.data.source.get("dim", 1) or 1)
        toy = groundtruth.toy_objective(cfg, n=EXACT_POINTS[min(dim, 2)])
        key.parent.mkdir(parents=True, exist_ok=True)
        torch.save(toy, key)
    from fastot.data.registry import build_sampler

    y_opt = toy.sample_pushforward(10000, seed=1).float()
    # Fresh draws of nu, independent of the sample the optimum was solved on.
    target = build_sampler(dict(cfg.data.target), "data.target")
    ref = target.sample(10000, torch.Generator().manual_seed(12345)).float()
    out: dict[str, float] = {"energy to ν": metrics.energy_distance(y_opt, ref)}
    if toy.solution is None or toy.source.cell is not None:
        # A kNN estimate needs a continuous law: in 2-D the solved T#mu is a finite point set.
        out["KL(T#μ‖ν)"] = metrics.knn_kl(y_opt, ref)
    if name == "outlier":
        pf = toy.pushforward()
        out["P(T(x) < 0)"] = float(pf.weights[pf.points[:, 0] < 0].sum())
    return out, toy


def distance_to_optimum(run_dir: Path, toy: Any) -> dict[str, float]:
    from fastot import metrics

    x, y = _samples(run_dir)
    y_opt = toy.sample_pushforward(10000, seed=1).float()
    out = {"energy to optimum": metrics.energy_distance(torch.from_numpy(y).float(), y_opt)}
    if y.shape[1] == 1:  # the map itself is known in 1-D
        gap = y[:, 0] - toy.map(torch.from_numpy(x[:, 0])).numpy()
        out["map L2 gap"] = float(np.sqrt(np.mean(gap**2)))
    return out


# ---------------------------------------------------------------- tables and plots
def _fmt(vals: list[float]) -> str:
    if not vals:
        return "—"
    return f"{np.mean(vals):.3g} ± {np.std(vals):.2g}" if len(vals) > 1 else f"{vals[0]:.3g}"


def table(name: str, results: dict[str, list[Path]], out: Path) -> tuple[str, dict[str, Any]]:
    exp = EXPERIMENTS[name]
    rows_by_label = {r.label: r for r in exp.rows}
    lines: list[str] = []
    optima: dict[str, Any] = {}
    cells: dict[str, dict[str, list[float]]] = {}
    exact_cells: dict[str, dict[str, float]] = {}
    for label, dirs in results.items():
        good = [d for d in dirs if not (rundir.diverged(d)).exists()]
        c: dict[str, list[float]] = {}
        for d in good:
            vals = exp.extract(d)
            if exp.exact:
                if label not in optima:
                    exact_cells[label], optima[label] = exact_metrics(name, d, out / "groundtruth")
                vals |= distance_to_optimum(d, optima[label])
            elif exp.floor is not None and label not in exact_cells:
                exact_cells[label] = exp.floor(d)
            for k, v in vals.items():
                c.setdefault(k, []).append(v)
        cells[label] = c
    cols = list(dict.fromkeys(k for c in cells.values() for k in c))
    head = ["run", "seeds", *cols, "paper"]
    exact_cols = [k for k in cols if any(k in e for e in exact_cells.values())]
    head += [f"{'floor' if exp.floor else 'optimum'}: {k}" for k in exact_cols]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + " --- |" * len(head))
    for label, dirs in results.items():
        n_div = sum((rundir.diverged(d)).exists() for d in dirs)
        seeds = f"{len(dirs) - n_div}/{len(dirs)}" + (f" ({n_div} diverged)" if n_div else "")
        row = [label, seeds, *(_fmt(cells[label].get(k, [])) for k in cols), rows_by_label[label].paper_value]
        row += [
            f"{exact_cells[label][k]:.3g}" if k in exact_cells.get(label, {}) else "—" for k in exact_cols
        ]
        lines.append("| " + " | ".join(row) + " |")
    notes = {label: toy.note for label, toy in optima.items()}
    if notes:
        lines.append("")
        lines += [f"- optimum of {label}: {note}" for label, note in notes.items()]
    return "\n".join(lines) + "\n", optima


def plot(name: str, results: dict[str, list[Path]], optima: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [label for label, dirs in results.items() if (rundir.samples(dirs[0])).exists()]
    if not labels:
        return
    fig, axes = plt.subplots(1, len(labels), figsize=(3.2 * len(labels), 3.2), squeeze=False)
    for ax, label in zip(axes[0], labels, strict=True):
        _, y = _samples(results[label][0])
        toy = optima.get(label)
        if y.shape[1] == 1:
            bins = np.linspace(-3, 4, 141)
            ax.hist(y[:, 0], bins=bins, density=True, alpha=0.6, label="ours")
            if toy is not None:
                pf = toy.pushforward()
                ax.hist(
                    pf.points[:, 0].numpy(),
                    bins=bins,
                    weights=pf.weights.numpy(),
                    density=True,
                    histtype="step",
                    color="k",
                    label="exact T#μ",
                )
            ax.set_yscale("log")
            ax.set_xlabel("T(x)")
            ax.set_ylabel("density (log)")
        else:
            if toy is not None:
                opt = toy.sample_pushforward(2000, seed=1).numpy()
                ax.scatter(opt[:, 0], opt[:, 1], s=1, c="k", alpha=0.3, label="exact T#μ")
            ax.scatter(y[:2000, 0], y[:2000, 1], s=1, alpha=0.5, label="ours")
            ax.set_xlabel("x₁")
            ax.set_ylabel("x₂")
        ax.set_title(label, fontsize=8)
        ax.legend(fontsize=6)
    fig.suptitle(f"{EXPERIMENTS[name].title} (seed of the first run)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(name: str, results: dict[str, list[Path]], out: Path, budget: str, seeds: list[int]) -> None:
    """Write ``OUT/<budget>/<name>.md`` and ``.png`` from the finished runs, and print the table."""
    exp = EXPERIMENTS[name]
    md, optima = table(name, results, out)
    base = out / budget / name
    header = f"## {exp.title}\n\n{exp.source}; budget `{budget}`, seeds {seeds}.\n\n"
    if exp.notes:
        md += f"\n{exp.notes}\n"
    base.with_suffix(".md").write_text(header + md)
    if exp.figure is not None:
        exp.figure(results, base.with_suffix(".png"))
    else:
        plot(name, results, optima, base.with_suffix(".png"))
    print(header + md, flush=True)


def estimate_minutes(exp: Experiment, budget: str) -> float:
    from fastot.algorithms import build_algorithm
    from fastot.train.config import load_config, to_container

    total = 0.0
    for row in exp.rows:
        overrides = row.budget_overrides(budget)
        if overrides is None or budget not in exp.budgets:
            continue
        cfg = load_config(row.preset, overrides, allow_missing=True)
        if cfg.train.iterations is not None:
            iterations = int(cfg.train.iterations)
        else:  # S-JKO: the phases set the length
            iterations = int(build_algorithm(to_container(cfg, "algorithm")).default_iterations() or 0)
        total += iterations * (row.ms_per_iteration or exp.ms_per_iteration)
    return total / 60000


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fastot.reproduce", description=__doc__.splitlines()[0])
    names = [*EXPERIMENTS, *GROUPS]
    p.add_argument("experiments", nargs="*", metavar="NAME", help=f"any of: {', '.join(names)}")
    p.add_argument(
        "--list", action="store_true", help="name every experiment, its source and expected CPU time"
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--budget", choices=BUDGETS, default="cpu")
    p.add_argument("--out", type=Path, default=Path("runs/repro"))
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (one thread each)")
    p.add_argument("--only", nargs="+", metavar="LABEL", help="run only the rows whose label is one of these")
    p.add_argument(
        "--finished-only",
        action="store_true",
        help="train nothing: write the tables from the runs that have finished",
    )
    args = p.parse_args(argv)
    if args.list or not args.experiments:
        print(
            f"{'name':15} {'source':52} "
            + " ".join(f"{b:>8}" for b in BUDGETS)
            + "  (min per seed, 1 thread)"
        )
        for name, exp in EXPERIMENTS.items():
            minutes = [
                f"{estimate_minutes(exp, b):8.0f}" if b in exp.budgets else f"{'—':>8}" for b in BUDGETS
            ]
            print(f"{name:15} {exp.source[:52]:52} " + " ".join(minutes))
        for group, members in GROUPS.items():
            print(f"{group:15} the group of {', '.join(members)}")
        return 0
    wanted = [m for n in args.experiments for m in GROUPS.get(n, [n])]
    unknown = [n for n in wanted if n not in EXPERIMENTS]
    if unknown:
        p.error(f"unknown experiment(s) {unknown}; choose from {names}")
    plan: list[tuple[str, list[tuple[Row, int]]]] = []
    for name in dict.fromkeys(wanted):
        exp = EXPERIMENTS[name]
        if args.budget not in exp.budgets and name not in args.experiments:  # a group's member
            print(f"{name}: not run at the {args.budget} budget", file=sys.stderr)
            continue
        if args.budget not in exp.budgets:
            p.error(f"--budget {args.budget}: {name} runs at {' or '.join(exp.budgets)}")
        rows = [r for r in exp.rows if not args.only or r.label in args.only]
        if not rows:
            p.error(f"--only matches no row of {name}: {[r.label for r in exp.rows]}")
        rows = [r for r in rows if r.budget_overrides(args.budget) is not None]
        if not rows:
            print(f"{name}: no row runs at the {args.budget} budget", file=sys.stderr)
            continue
        jobs = [(row, s) for row in rows for s in args.seeds[: row.max_seeds]]
        if args.finished_only:
            jobs = [(r, s) for r, s in jobs if rundir.is_finished(run_dir_of(args.out, args.budget, r, s))]
            if not jobs:
                print(f"{name}: no finished run in {args.out / args.budget}", file=sys.stderr)
                continue
        plan.append((name, jobs))
    # One pool for every experiment's runs, so that --jobs stays busy from one experiment to the
    # next; each table is written as soon as its own runs are done.
    pool = ThreadPoolExecutor(args.jobs)
    try:
        futures = [
            [pool.submit(run_one, row, seed, args.out, args.budget) for row, seed in jobs] for _, jobs in plan
        ]
        for (name, jobs), done in zip(plan, futures, strict=True):
            results: dict[str, list[Path]] = {}
            for (row, _), future in zip(jobs, done, strict=True):
                results.setdefault(row.label, []).append(future.result())
            report(name, results, args.out, args.budget, args.seeds)
    finally:
        pool.shutdown(cancel_futures=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
