"""An experiment's report from its finished runs: the markdown table (ours, the paper's value, the exact
optimum or floor) and the figure, written to ``OUT/<budget>/<experiment>.md`` and ``.png``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fastot import rundir
from fastot.reproduce.experiments import EXPERIMENTS
from fastot.reproduce.optimum import distance_to_optimum, exact_metrics


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
        good = [d for d in dirs if not rundir.is_diverged(d)]
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
        n_div = sum(rundir.is_diverged(d) for d in dirs)
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

    labels = [label for label, dirs in results.items() if rundir.has_samples(dirs[0])]
    if not labels:
        return
    fig, axes = plt.subplots(1, len(labels), figsize=(3.2 * len(labels), 3.2), squeeze=False)
    for ax, label in zip(axes[0], labels, strict=True):
        _, y = rundir.read_samples(results[label][0])
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
