"""The papers' low-dimensional experiments: their rows, what a finished run scores, and the papers' claims.

Every row is a shipped preset plus overrides; the metrics come from the run's summary, samples, log and
snapshots, and :mod:`fastot.reproduce.optimum` adds the same metrics at the exact optimum.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from fastot import rundir
from fastot.reproduce.spec import Experiment, Row, iters, sjko_phases


def _uotm_grid_row(label: str, preset: str) -> Row:
    # UOTM's step on the 2-D grids costs half of S-JKO's, which also runs the frozen previous map.
    return Row(label, preset, ["eval.every=0"], cpu=iters(5000), ms_per_iteration=22.0)


# ---------------------------------------------------------------- metrics read from a run
def _metrics(run_dir: Path) -> dict[str, float]:
    return rundir.read_summary(run_dir)["metrics"]


def _table1(run_dir: Path) -> dict[str, float]:
    return {"KL(T#μ‖ν)": _metrics(run_dir)["kl_knn"]}


def _outlier(run_dir: Path) -> dict[str, float]:
    _, y = rundir.read_samples(run_dir)
    m = _metrics(run_dir)
    return {"P(T(x) < 0)": float((y < 0).mean()), "KL(T#μ‖ν)": m["kl_knn"], "monotonicity": m["monotonicity"]}


def _grid(run_dir: Path) -> dict[str, float]:
    m = _metrics(run_dir)
    keep = {
        "modes_covered": "modes",
        "hq_fraction": "hq fraction",
        "energy": "energy to ν",
        "kl_knn": "KL(T#μ‖ν)",
    }
    return {name: m[k] for k, name in keep.items() if k in m}


def _weak(run_dir: Path) -> dict[str, float]:
    energy = [r["energy"] for r in rundir.read_metrics(run_dir) if "energy" in r][-5:]
    return {"energy (last 5 evals)": float(np.mean(energy)), "fluctuation (std)": float(np.std(energy))}


def ou_floor(run_dir: Path, reps: int = 200) -> dict[str, float]:
    """log10 E symKL of a Gaussian fitted to exact samples of rho_t, at the snapshot's sample size:
    what a perfect flow would score, so values near it cannot be told apart."""
    from fastot import metrics
    from fastot.data.ou import ou_solution

    target = rundir.read_config(run_dir).data.target
    n = len(rundir.read_snapshot(rundir.snapshot_files(run_dir)[0])["y"])
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
    from fastot import metrics
    from fastot.data.ou import ou_solution

    target = rundir.read_config(run_dir).data.target
    snaps = rundir.snapshot_files(run_dir)
    out = {}
    for t, idx in ((0.5, 4), (0.9, 8)):  # snapshot k closes JKO step k + 1: t = (k + 1) h
        y = torch.from_numpy(rundir.read_snapshot(snaps[idx])["y"])
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
TOYS: dict[str, Experiment] = {
    "table1": Experiment(
        "UOTM Table 1: KL(T#μ‖ν) on the 1-D mixture pair",
        "UOTM paper, Table 1 (Sec. 5.2)",
        [
            Row(
                f"{name} τ={tau}",
                preset,
                [f"algorithm.tau={tau / 2}"],
                cpu=iters(1000),
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
                cpu=iters(1000),
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
                cpu=iters(1500),
                paper=iters(6250),
                paper_value=claim if suffix == "" else "—",
            )
            for suffix, std in (("", "std 0.5 (paper text)"), ("-reference", "std 0.1 (reference code)"))
            for name, preset, claim in (
                ("OTM", "otm-outlier-1d", OTM_FIG2),
                ("UOTM", "uotm-outlier-1d", UOTM_FIG2),
            )
        ]
        # Lazy R1 (opt-in) beside the eager penalty: OTM is the row that carries R1 here.
        + [
            Row(
                f"OTM, {std}, lazy R1 every 4",
                f"otm-outlier-1d{suffix}",
                ["algorithm.r1_every=4"],
                cpu=iters(1500),
            )
            for suffix, std in (("", "std 0.5"), ("-reference", "std 0.1"))
        ],
        _outlier,
        ms_per_iteration=100.0,
    ),
    "unified": Experiment(
        "Unified framework: N(0, I₂) → 8 Gaussians",
        "Unified-framework paper, Fig. 1 (Sec. 3.2)",
        [
            Row(name, preset, ["eval.every=0"], cpu=iters(2000), paper_value=FIG1[name])
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
            Row("S-JKO 25 Gaussians", "sjko-25gaussians", ["eval.every=0"], cpu=sjko_phases(10, 500, 500)),
            _uotm_grid_row("UOTM 25 Gaussians", "uotm-25gaussians"),
            _uotm_grid_row("UOTM fixed source 25 Gaussians", "uotm-fixed-source-25gaussians"),
            Row(
                "S-JKO two circles",
                "sjko-two-circles",
                ["eval.every=0", "eval.metrics=[kl_knn,energy]"],
                cpu=sjko_phases(10, 500, 500),
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
                cpu=iters(2000),
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
                cpu=sjko_phases(9, 400, 200),
                paper_value=paper,
            )
            for d, paper in ((2, "−2.3 / −2.4"), (4, "−0.9 / −1.2"), (6, "−1.8 / −0.8"), (10, "−0.1 / −0.1"))
        ],
        _ou,
        ms_per_iteration=50.0,
        exact=False,
        floor=ou_floor,
    ),
}
