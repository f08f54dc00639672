"""What the image experiments of ``python -m fastot.reproduce`` read from a finished run.

- digits: the metrics of :mod:`fastot.eval.digits` on the run's EMA map, FD at every kept checkpoint
  (convergence), and a figure of labelled sample grids beside the real digits and the FD curves;
- gaussian-images: the trained map against the closed form (:mod:`fastot.groundtruth_gaussian`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from fastot import groundtruth_gaussian as gg
from fastot import rundir

SAMPLE_SEED = 2024  # the generated samples every table row is scored on
GAUSSIAN_N = 5000


def _samples(run_dir: Path, n: int, checkpoint: Path | None = None) -> tuple[Tensor, Tensor]:
    from fastot.sampling import load_map

    trained = load_map(run_dir, "cpu", checkpoint)
    with torch.random.fork_rng(devices=[]):
        return trained.generate(n, SAMPLE_SEED, chunk=512)


def fd_curve(run_dir: Path) -> dict[int, float]:
    """FD (one draw of the held-out size) at every checkpoint the run kept, by iteration."""
    from fastot.eval import digits

    out = {}
    for step, path in rundir.list_checkpoints(run_dir):
        _, y = _samples(run_dir, digits.fd_sample_size(), path)
        out[step] = digits.digits_metrics(y)["fd"]
    return out


def fifth_of_run(steps: list[int]) -> int | None:
    """The kept checkpoint at a fifth of the run (the last checkpoint ends it), or None when the
    run no longer keeps one there (a long run keeps only its last few)."""
    if not steps:
        return None
    fifth = steps[-1] / 5
    nearest = min(steps, key=lambda s: abs(s - fifth))
    return nearest if abs(nearest - fifth) <= 0.05 * steps[-1] else None


def digits_extract(run_dir: Path) -> dict[str, float]:
    from fastot.eval import digits

    _, y = _samples(run_dir, 5 * digits.fd_sample_size())
    m = digits.digits_metrics(y)
    curve = fd_curve(run_dir)
    fifth = fifth_of_run(sorted(curve))
    if fifth is not None:  # convergence: FD after a fifth of the run
        m["fd at 1/5"] = curve[fifth]
    keep = ("fd", "fd at 1/5", "precision", "recall", "class_tv", "nn_ratio", "close_copies")
    return {k: m[k] for k in keep if k in m}


def outlier_extract(run_dir: Path) -> dict[str, float]:
    """Outlier-like samples (the feature network's "not a digit" class) and the FD of the rest."""
    from fastot.eval import digits

    _, y = _samples(run_dir, 10 * digits.fd_sample_size())
    _, probs = digits.embed(y)
    inlier = probs.argmax(1) != digits.OUTLIER_CLASS
    out = {"outlier-like samples": float(1 - inlier.double().mean())}
    kept = y[inlier]
    if len(kept) >= digits.fd_sample_size():
        m = digits.digits_metrics(kept)
        out |= {"fd (in-distribution)": m["fd"], "precision": m["precision"], "recall": m["recall"]}
    return out


def digits_floor(run_dir: Path) -> dict[str, float]:
    from fastot.eval import digits

    floor = digits.digits_floor()
    return floor | {
        "outlier-like samples": 0.01,
        "fd (in-distribution)": floor["fd"],
    }


# ---------------------------------------------------------------- gaussian-images
def gaussian_extract(run_dir: Path) -> dict[str, float]:
    """Map error and Bures-Wasserstein distances of the run against its closed form."""
    cfg = rundir.read_config(run_dir)
    problem = gg.problem_of(cfg)
    x, y = _samples(run_dir, GAUSSIAN_N)
    _, y2 = _samples_other_latent(run_dir, x)
    exact = problem.exact_map(x)
    y, y2 = y.flatten(1).double(), y2.flatten(1).double()
    spread = float(((exact - problem.exact_mean) ** 2).sum(1).mean())
    mean, cov = gg.moments(y)
    out = {
        "map error": float(((y - exact) ** 2).sum(1).mean()) / spread,
        "z sensitivity": float(((y - y2) ** 2).sum(1).mean()) / spread,
        "BW² to exact": gg.bures_wasserstein2(mean, cov, problem.exact_mean, problem.exact_cov),
        "BW² to ν": gg.bures_wasserstein2(mean, cov, problem.target_mean, problem.target_cov),
    }
    if problem.flow_mean is not None:
        out["BW² to OU flow"] = gg.bures_wasserstein2(mean, cov, problem.flow_mean, problem.flow_cov)
    return out


def _samples_other_latent(run_dir: Path, x: Tensor) -> tuple[Tensor, Tensor]:
    """T(x, z') for the same x and fresh latents z'."""
    from fastot.sampling import load_map

    trained = load_map(run_dir, "cpu")
    z_dim = getattr(trained.net, "z_dim", 0)
    g = torch.Generator().manual_seed(SAMPLE_SEED + 1)
    with torch.no_grad():
        ys = []
        for start in range(0, len(x), 512):
            xb = x[start : start + 512]
            z = torch.randn(len(xb), z_dim, generator=g) if z_dim else None
            ys.append(trained.net(xb, z))
    return x, torch.cat(ys)


def gaussian_floor(run_dir: Path, reps: int = 5) -> dict[str, float]:
    """The BW² of GAUSSIAN_N exact samples' moments to the truth: what a perfect map scores."""
    problem = gg.problem_of(rundir.read_config(run_dir))
    g = torch.Generator().manual_seed(0)
    vals = []
    for _ in range(reps):
        x = torch.randn(GAUSSIAN_N, problem.dim, generator=g, dtype=torch.float64)
        mean, cov = gg.moments(problem.exact_map(x))
        vals.append(gg.bures_wasserstein2(mean, cov, problem.exact_mean, problem.exact_cov))
    return {"BW² to exact": float(np.mean(vals)), "map error": 0.0, "z sensitivity": 0.0}


# ---------------------------------------------------------------- figures
def figure(results: dict[str, list[Path]], path: Path) -> None:
    """Labelled 8x8 sample grids of every row's first run, the real digits, and FD against iterations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fastot.train.images import grid_array

    labels = [label for label, dirs in results.items() if rundir.is_finished(dirs[0])]
    if not labels:
        return
    gaussian = any("gaussian" in str(results[lb][0]) for lb in labels)
    panels = len(labels) + 2
    cols = min(panels, 5)
    rows = math.ceil(panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.8 * rows), squeeze=False)
    flat = list(axes.flat)
    reference = _reference_images(results[labels[0]][0], gaussian)
    flat[0].imshow(grid_array(reference[:64], 8))
    flat[0].set_title(f"exact law of {labels[0]}" if gaussian else "real digits (held out)", fontsize=8)
    for ax, label in zip(flat[1:], labels, strict=False):
        _, y = _samples(results[label][0], 64)
        ax.imshow(grid_array(y, 8))
        ax.set_title(label, fontsize=8)
    curve_ax = flat[len(labels) + 1]
    if not gaussian:
        for label in labels:
            c = fd_curve(results[label][0])
            curve_ax.plot(list(c), list(c.values()), marker="o", ms=3, label=label)
        curve_ax.set_yscale("log")
        curve_ax.set_xlabel("iteration")
        curve_ax.set_ylabel("FD (digits features)")
        curve_ax.legend(fontsize=5)
        curve_ax.set_title("FD against iterations", fontsize=8)
    for ax in flat:
        if ax is not curve_ax or gaussian:
            ax.set_xticks([])
            ax.set_yticks([])
    for ax in flat[len(labels) + 2 :]:
        ax.axis("off")
    if gaussian:
        curve_ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _reference_images(run_dir: Path, gaussian: bool) -> Tensor:
    if gaussian:
        problem = gg.problem_of(rundir.read_config(run_dir))
        x = torch.randn(64, problem.dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        return problem.exact_map(x).float().reshape(64, 1, *problem.image_shape)
    from fastot.data.digits import digit_images

    return digit_images(16, 1, "test")[:64].float() / 127.5 - 1
