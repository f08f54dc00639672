"""Reproductions of the papers' low-dimensional results: runs presets over seeds, tabulates metrics.

    python bench/reproduce.py table1 outlier unified grids weak ou --seeds 0 1 2 --out runs/repro

Each experiment is a list of rows (label, preset, overrides); every row runs once per seed through
``python -m fastot.train`` (one thread per run, ``--jobs`` runs at a time) and the table shows the
mean ± std over seeds of the metrics the papers report. ``--scale`` multiplies the CPU iteration
budgets below (the presets themselves carry the papers' full schedules). Finished runs are reused,
so an interrupted sweep continues where it stopped. Writes ``OUT/<experiment>.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Row:
    label: str
    preset: str
    overrides: list[str] = field(default_factory=list)
    iterations: int | None = None  # None: S-JKO phases given in overrides


def _sjko(phases: int, init: int, per_phase: int) -> list[str]:
    return [
        f"algorithm.num_phases={phases}",
        f"algorithm.init_iterations={init}",
        f"algorithm.phase_iterations={per_phase}",
    ]


# Paper tau 0.1 / 0.02 on c = tau/2 |x - y|^2 is our tau 0.05 / 0.01 on c = tau |x - y|^2.
TABLE1 = [
    Row(f"{name} τ={paper_tau}", preset, [f"algorithm.tau={paper_tau / 2}"], 1000)
    for name, preset in (
        ("OTM", "otm-table1-1d"),
        ("UOTM fixed source", "uotm-fixed-source-table1-1d"),
        ("UOTM", "uotm-table1-1d"),
    )
    for paper_tau in (0.1, 0.02)
]
OUTLIER = [Row("OTM", "otm-outlier-1d", [], 1000), Row("UOTM", "uotm-outlier-1d", [], 1000)]
UNIFIED = [
    Row(name, f"unified-{name}-8g", ["eval.every=0"], 1500)
    for name in ("wgan", "wgan-gp", "otm", "uotm-nocost", "uotm")
]
GRIDS = [
    Row("S-JKO 25 Gaussians", "sjko-25gaussians", [*_sjko(10, 200, 200), "eval.every=0"]),
    Row("UOTM 25 Gaussians", "uotm-25gaussians", ["eval.every=0"], 2000),
    Row("UOTM fixed source 25 Gaussians", "uotm-fixed-source-25gaussians", ["eval.every=0"], 2000),
    Row(
        "S-JKO two circles",
        "sjko-two-circles",
        [*_sjko(10, 200, 200), "eval.every=0", "eval.metrics=[kl_knn,energy]"],
    ),
    Row(
        "UOTM two circles",
        "uotm-25gaussians",
        ["data.target.name=two_circles", "eval.every=0", "eval.metrics=[kl_knn,energy]"],
        2000,
    ),
    Row(
        "UOTM fixed source two circles",
        "uotm-fixed-source-25gaussians",
        ["data.target.name=two_circles", "eval.every=0", "eval.metrics=[kl_knn,energy]"],
        2000,
    ),
]
WEAK = [
    Row(
        f"{name.upper()} γ={gamma}",
        f"{name}-moons-uniform",
        [f"algorithm.gamma={gamma}", "eval.every=200"],
        2000,
    )
    for name in ("not", "knot")
    for gamma in (0.0, 0.5, 1.0)
]
# t = K h with h = 0.1: the snapshot after phase 4 is t = 0.5, after phase 8 t = 0.9.
OU = [
    Row(f"S-JKO OU d={d}", "sjko-ou", [f"data.source.dim={d}", f"data.target.dim={d}", *_sjko(9, 400, 200)])
    for d in (2, 4, 6, 10)
]
EXPERIMENTS: dict[str, list[Row]] = {
    "table1": TABLE1,
    "outlier": OUTLIER,
    "unified": UNIFIED,
    "grids": GRIDS,
    "weak": WEAK,
    "ou": OU,
}


def run_one(row: Row, seed: int, out: Path, scale: float) -> Path:
    run_dir = out / f"{row.preset}-{_slug(row.label)}-s{seed}"
    if (run_dir / "summary.json").exists() or (run_dir / "diverged.txt").exists():
        return run_dir
    overrides = [
        *row.overrides,
        f"seed={seed}",
        "train.threads=1",
        "train.progress=false",
        "eval.plots=false",
    ]
    if row.iterations is not None:
        overrides.append(f"train.iterations={max(1, round(row.iterations * scale))}")
    else:  # S-JKO: scale the phase lengths
        overrides = [_scale_phase(o, scale) for o in overrides]
    cmd = [sys.executable, "-m", "fastot.train", "--preset", row.preset, "--out", str(run_dir), *overrides]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode == 1 and "diverged" in proc.stderr.lower():
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "diverged.txt").write_text(proc.stderr)
    elif proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return run_dir


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-")


def _scale_phase(override: str, scale: float) -> str:
    key, _, value = override.partition("=")
    if key in ("algorithm.init_iterations", "algorithm.phase_iterations"):
        return f"{key}={max(1, round(int(value) * scale))}"
    return override


# ---------------------------------------------------------------- metrics per experiment
def _summary(run_dir: Path) -> dict[str, float]:
    return json.loads((run_dir / "summary.json").read_text())["metrics"]


def _outlier(run_dir: Path) -> dict[str, float]:
    y = np.load(run_dir / "samples.npz")["y"].ravel()
    m = _summary(run_dir)
    # The target puts 1% on N(-1, .5^2): P(y < 0) = .99 Phi(-2) + .01 Phi(2) = 0.032.
    return {"P(T(x) < 0)": float((y < 0).mean()), "monotonicity": m["monotonicity"], "kl_knn": m["kl_knn"]}


def _weak(run_dir: Path) -> dict[str, float]:
    rows = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    energy = [r["energy"] for r in rows if "energy" in r][-5:]
    return {
        "energy (last 5 evals)": float(np.mean(energy)),
        "energy fluctuation (std)": float(np.std(energy)),
    }


def _ou(run_dir: Path) -> dict[str, float]:
    import torch
    from omegaconf import OmegaConf

    from fastot import metrics
    from fastot.data.ou import ou_solution

    target = OmegaConf.load(run_dir / "config.yaml").data.target
    dim, ou_seed = int(target.dim), int(target.seed)
    snaps = sorted((run_dir / "snapshots").glob("*.npz"))
    out = {}
    for t, idx in ((0.5, 4), (0.9, 8)):  # snapshot k closes JKO step k + 1: t = (k + 1) h
        y = torch.from_numpy(np.load(snaps[idx])["y"])
        mean, cov = ou_solution(dim, t, seed=ou_seed)
        out[f"log10 symKL t={t}"] = math.log10(metrics.gaussian_symmetric_kl(y, mean, cov))
    return out


def _grid(run_dir: Path) -> dict[str, float]:
    m = _summary(run_dir)
    keep = ("modes_covered", "hq_fraction", "kl_knn", "energy")
    return {k: m[k] for k in keep if k in m}


EXTRACT: dict[str, Callable[[Path], dict[str, float]]] = {
    "table1": lambda d: {"kl_knn": _summary(d)["kl_knn"]},
    "outlier": _outlier,
    "unified": _grid,
    "grids": _grid,
    "weak": _weak,
    "ou": _ou,
}


def table(name: str, results: dict[str, list[Path]]) -> str:
    cells: dict[str, dict[str, list[float]]] = {}
    diverged: dict[str, int] = {}
    for label, dirs in results.items():
        cells[label] = {}
        diverged[label] = sum((d / "diverged.txt").exists() for d in dirs)
        for d in dirs:
            if (d / "diverged.txt").exists():
                continue
            for k, v in EXTRACT[name](d).items():
                cells[label].setdefault(k, []).append(v)
    cols = sorted({k for c in cells.values() for k in c}, key=lambda k: k)
    lines = ["| run | seeds | " + " | ".join(cols) + " |", "| --- | --- |" + " --- |" * len(cols)]
    for label, c in cells.items():
        n = len(results[label])
        seeds = f"{n - diverged[label]}/{n}" + (f" ({diverged[label]} diverged)" if diverged[label] else "")
        vals = [f"{np.mean(c[k]):.3g} ± {np.std(c[k]):.2g}" if k in c else "—" for k in cols]
        lines.append(f"| {label} | {seeds} | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("experiments", nargs="+", choices=sorted(EXPERIMENTS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", type=Path, default=Path("runs/repro"))
    p.add_argument("--scale", type=float, default=1.0, help="multiply the iteration budgets")
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args(argv)
    for name in args.experiments:
        rows = EXPERIMENTS[name]
        jobs = [(row, s) for row in rows for s in args.seeds]
        with ThreadPoolExecutor(args.jobs) as pool:
            dirs = list(pool.map(lambda rs: run_one(rs[0], rs[1], args.out, args.scale), jobs))
        results: dict[str, list[Path]] = {}
        for (row, _), d in zip(jobs, dirs, strict=True):
            results.setdefault(row.label, []).append(d)
        md = table(name, results)
        (args.out / f"{name}.md").write_text(md)
        print(f"## {name}\n\n{md}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
