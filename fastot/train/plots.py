"""PNG plots of a finished run (matplotlib, Agg backend)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _density_or_scatter(ax, gen: np.ndarray, ref: np.ndarray, title: str) -> None:
    if gen.shape[1] == 1:
        lo = min(gen.min(), ref.min())
        hi = max(gen.max(), ref.max())
        bins = np.linspace(lo, hi, 120)
        ax.hist(ref[:, 0], bins=bins, density=True, alpha=0.5, label="target")
        ax.hist(gen[:, 0], bins=bins, density=True, alpha=0.5, label="generated")
        ax.set_xlabel("y")
        ax.set_ylabel("density")
    else:
        # generated first so that tight target modes stay visible on top
        ax.scatter(gen[:, 0], gen[:, 1], s=2, alpha=0.4, color="tab:orange", label="generated")
        ax.scatter(ref[:, 0], ref[:, 1], s=2, alpha=0.4, color="tab:blue", label="target")
        ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(title)
    ax.legend(loc="best", markerscale=4)


def plot_run(run_dir: Path, x: np.ndarray, y: np.ndarray, ref: np.ndarray, n_plot: int = 3000) -> list[Path]:
    """target vs generated, the transport map, loss curves and (if any) per-phase snapshots."""
    plt = _plt()
    out = run_dir / "plots"
    out.mkdir(exist_ok=True)
    x, y, ref = x.reshape(len(x), -1), y.reshape(len(y), -1), ref.reshape(len(ref), -1)
    x, y, ref = x[:n_plot], y[:n_plot], ref[:n_plot]
    written = []

    fig, ax = plt.subplots(figsize=(5, 4))
    _density_or_scatter(ax, y, ref, "target vs generated")
    written.append(out / "target_vs_generated.png")
    fig.savefig(written[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 4))
    if x.shape[1] == 1:  # the 1-D map curve x -> T(x, z)
        ax.scatter(x[:, 0], y[:, 0], s=2, alpha=0.5)
        ax.set_xlabel("x")
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
    ax.set_title("transport map")
    written.append(out / "transport_map.png")
    fig.savefig(written[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)

    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    keys = [k for k in ("loss_v", "loss_T", "reg", "cost") if any(k in r for r in rows)]
    if rows and keys:
        fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3))
        for ax, k in zip(np.atleast_1d(axes), keys, strict=True):
            pts = [(r["step"], r[k]) for r in rows if k in r]
            ax.plot(*zip(*pts, strict=True))
            ax.set_title(k)
            ax.set_xlabel("step")
        written.append(out / "losses.png")
        fig.savefig(written[-1], dpi=110, bbox_inches="tight")
        plt.close(fig)

    snaps = sorted((run_dir / "snapshots").glob("*.npz"))
    if snaps:
        n = len(snaps)
        cols = min(n, 5)
        rws = (n + cols - 1) // cols
        fig, axes = plt.subplots(rws, cols, figsize=(3 * cols, 3 * rws), squeeze=False)
        for ax in axes.ravel()[n:]:
            ax.axis("off")
        for ax, p in zip(axes.ravel(), snaps, strict=False):
            with np.load(p) as d:
                gen = d["y"].reshape(len(d["y"]), -1)
                label = str(d["label"])
            _density_or_scatter(ax, gen, ref, label)
        written.append(out / "phases.png")
        fig.savefig(written[-1], dpi=90, bbox_inches="tight")
        plt.close(fig)
    return written
