"""PNG plots of a finished run (matplotlib, Agg backend).

Every figure carries a title naming the run (preset and step) and labels on every axis. The 1-D
target plot has a log-density panel next to the linear one, so a mode holding 1% of the mass (the
UOTM outlier toys) stays visible.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fastot import rundir

# What the logged columns are, for the loss plot's panel titles.
LOSS_NAMES = {
    "loss_v": "potential loss",
    "loss_T": "map loss",
    "reg": "regulariser",
    "cost": "transport cost",
    "fid": "FID",
}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _coordinate_labels(ax, name: str) -> None:
    ax.set_xlabel(f"{name}[0]")
    ax.set_ylabel(f"{name}[1]")


def _histograms(ax, gen: np.ndarray, ref: np.ndarray, log: bool = False) -> None:
    lo = min(gen.min(), ref.min())
    hi = max(gen.max(), ref.max())
    bins = np.linspace(lo, hi, 60 if log else 120)  # wider bins: less noise in the sparse tails
    kind = "step" if log else "bar"  # outlines keep both densities readable on a log axis
    ax.hist(ref[:, 0], bins=bins, density=True, alpha=0.5, label="target", histtype=kind)
    ax.hist(gen[:, 0], bins=bins, density=True, alpha=0.5, label="generated", histtype=kind)
    ax.set_xlabel("y")
    ax.set_ylabel("density (log scale)" if log else "density")
    if log:
        ax.set_yscale("log")


def _density_or_scatter(ax, gen: np.ndarray, ref: np.ndarray, title: str) -> None:
    if gen.shape[1] == 1:
        _histograms(ax, gen, ref)
    else:
        # generated first so that tight target modes stay visible on top
        ax.scatter(gen[:, 0], gen[:, 1], s=2, alpha=0.4, color="tab:orange", label="generated")
        ax.scatter(ref[:, 0], ref[:, 1], s=2, alpha=0.4, color="tab:blue", label="target")
        ax.set_aspect("equal", adjustable="datalim")
        _coordinate_labels(ax, "y")
    ax.set_title(title)
    ax.legend(loc="best", markerscale=4)


def target_figure(y: np.ndarray, ref: np.ndarray, title: str) -> Any:
    """Generated vs target samples: 1-D as densities (linear and log), else the first two coordinates."""
    plt = _plt()
    if y.shape[1] == 1:
        fig, (lin, log) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
        _density_or_scatter(lin, y, ref, "target vs generated")
        _histograms(log, y, ref, log=True)
        log.set_title("log scale: small modes (1% outliers) show")
        log.legend(loc="best")
    else:
        fig, ax = plt.subplots(figsize=(5, 4.5), layout="constrained")
        _density_or_scatter(ax, y, ref, "target vs generated")
    fig.suptitle(title)
    return fig


def map_figure(x: np.ndarray, y: np.ndarray, title: str) -> Any:
    """The transport map: x -> T(x, z) as a curve (1-D) or as segments (first two coordinates)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4.5), layout="constrained")
    if x.shape[1] == 1:  # the 1-D map curve x -> T(x, z)
        ax.scatter(x[:, 0], y[:, 0], s=2, alpha=0.5)
        ax.set_xlabel("x (source sample)")
        ax.set_ylabel("T(x, z)")
    elif x.shape[1] == y.shape[1]:
        k = min(300, len(x))
        segs = np.stack([x[:k, :2], y[:k, :2]], axis=1)
        for s in segs:
            ax.plot(s[:, 0], s[:, 1], color="0.6", lw=0.5)
        ax.scatter(x[:k, 0], x[:k, 1], s=4, label="x")
        ax.scatter(y[:k, 0], y[:k, 1], s=4, label="T(x, z)")
        ax.legend(loc="best")
        ax.set_aspect("equal", adjustable="datalim")
        _coordinate_labels(ax, "coordinate")
    else:  # nothing to draw between spaces of different dimensions
        ax.axis("off")
        ax.text(0.5, 0.5, f"source dim {x.shape[1]} != target dim {y.shape[1]}", ha="center")
    ax.set_title("transport map")
    fig.suptitle(title)
    return fig


def loss_figure(rows: list[dict[str, Any]], title: str) -> Any | None:
    """One panel per logged loss (and FID, when logged) against the step; None if nothing was logged."""
    keys = [k for k in LOSS_NAMES if any(k in r for r in rows)]
    if not keys:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.4), squeeze=False, layout="constrained")
    for ax, k in zip(axes[0], keys, strict=True):
        pts = [(r["step"], r[k]) for r in rows if k in r]
        ax.plot(*zip(*pts, strict=True), marker="." if len(pts) < 30 else None)
        ax.set_title(LOSS_NAMES[k])
        ax.set_xlabel("step")
        ax.set_ylabel(k)
    fig.suptitle(title)
    return fig


def phases_figure(snaps: list[Path], ref: np.ndarray, title: str) -> Any:
    """The generated samples saved at each S-JKO phase end, against the target."""
    plt = _plt()
    n = len(snaps)
    cols = min(n, 5)
    rws = (n + cols - 1) // cols
    size = (3.2 * cols, 3.2 * rws + 0.4)
    fig, axes = plt.subplots(rws, cols, figsize=size, squeeze=False, layout="constrained")
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    for ax, p in zip(axes.ravel(), snaps, strict=False):
        d = rundir.read_snapshot(p)
        gen = d["y"].reshape(len(d["y"]), -1)
        label = str(d["label"])
        _density_or_scatter(ax, gen, ref, label)
    fig.suptitle(title)
    return fig


def _save(fig: Any, path: Path, dpi: int = 110) -> Path:
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    _plt().close(fig)
    return path


def plot_losses(run_dir: Path, title: str = "") -> list[Path]:
    """``plots/losses.png`` from metrics.jsonl (image runs get only this one)."""
    fig = loss_figure(rundir.read_metrics(run_dir), title)
    if fig is None:
        return []
    out = rundir.plots(run_dir)
    out.mkdir(exist_ok=True)
    return [_save(fig, out / "losses.png")]


def plot_run(
    run_dir: Path, x: np.ndarray, y: np.ndarray, ref: np.ndarray, n_plot: int = 3000, title: str = ""
) -> list[Path]:
    """target vs generated, the transport map, loss curves and (if any) per-phase snapshots.

    ``title`` names the run (e.g. "uotm-outlier-1d, step 1500") on every figure."""
    out = rundir.plots(run_dir)
    out.mkdir(exist_ok=True)
    x, y, ref = x.reshape(len(x), -1), y.reshape(len(y), -1), ref.reshape(len(ref), -1)
    # Histograms take every sample (a 1% mode is 30 of 3000 points); scatter plots ``n_plot``.
    hist = y.shape[1] == 1
    target = target_figure(y if hist else y[:n_plot], ref if hist else ref[:n_plot], title)
    x, y, ref = x[:n_plot], y[:n_plot], ref[:n_plot]
    written = [
        _save(target, out / "target_vs_generated.png"),
        _save(map_figure(x, y, title), out / "transport_map.png"),
    ]
    written += plot_losses(run_dir, title)
    snaps = rundir.snapshot_files(run_dir)
    if snaps:
        written.append(_save(phases_figure(snaps, ref, title), out / "phases.png", dpi=90))
    return written
