"""What a run tells: the start block it prints, warnings kept clear of the progress bar, and at the
end its samples, metrics, plots and summary.json."""

from __future__ import annotations

import subprocess
import sys
import time
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from fastot import rundir
from fastot.config import intra_op_threads
from fastot.sampling import generate
from fastot.train.evaluate import compute_metrics
from fastot.train.run import Run


def source_version() -> dict[str, Any]:
    """fastot's and torch's versions, and the git commit when fastot runs from a checkout."""
    import fastot

    out: dict[str, Any] = {"fastot_version": fastot.__version__, "torch_version": torch.__version__}
    root = Path(fastot.__file__).resolve().parent.parent
    sha = dirty = None
    if (root / ".git").exists():
        git = ["git", "-C", str(root)]
        try:
            head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
            if head.returncode == 0:
                sha = head.stdout.strip()
                changes = [*git, "status", "--porcelain", "--untracked-files=no"]
                status = subprocess.run(changes, capture_output=True, text=True, timeout=10)
                dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):  # no git executable, or it hung
            pass
    out.update(git_sha=sha, git_dirty=dirty)
    return out


def run_info(run: Run) -> dict[str, Any]:
    """What runs where; printed when a run starts and recorded in summary.json."""
    return {
        "preset": run.cfg.preset,
        "algorithm": run.cfg.algorithm.name,
        "device": str(run.device),
        "backend": run.backend,
        "threads": torch.get_num_threads(),
        **source_version(),
    }


def start_block(run: Run, resumed: bool) -> str:
    """Preset, algorithm, device, fused-op backend, threads, length and directory of a starting run."""
    cfg = run.cfg
    if cfg.train.threads:
        why = "train.threads"
    elif intra_op_threads(cfg) == 1:
        why = "the default for vector data; train.threads=N changes it"
    else:
        why = "this machine's default"
    length = f"{run.total} (batch {cfg.train.batch_size}"
    length += f"; resuming after step {run.step})" if resumed else ")"
    rows = [
        ("preset", cfg.preset or "(not recorded)"),
        ("algorithm", cfg.algorithm.name),
        ("device", f"{run.device} (fused ops: {run.backend} backend)"),
        ("threads", f"{torch.get_num_threads()} intra-op ({why})"),
        ("iterations", length),
        ("run dir", str(run.run_dir.resolve())),
    ]
    return "\n".join(f"  {k:<12s}{v}" for k, v in rows)


def route_warnings(bar: Any) -> Callable[[], None]:
    """While ``bar`` is drawn, warnings print on a line of their own above it (tqdm.write) instead
    of being glued onto it. Returns the function that puts the previous handler back; until then
    the handler holds the bar weakly and defers to the previous one once the bar is closed."""
    previous = warnings.showwarning
    ref = weakref.ref(bar)

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        live = ref()
        if live is None or live.disable:
            previous(message, category, filename, lineno, file, line)
        else:
            live.write(f"{category.__name__}: {message}", file=sys.stderr)

    warnings.showwarning = show

    def restore() -> None:
        if warnings.showwarning is show:
            warnings.showwarning = previous

    return restore


def finish(run: Run, train_time: float, t0: float) -> dict[str, Any]:
    """Final samples, metrics, sample grid and plots, and summary.json; returns the summary."""
    cfg = run.cfg
    x, y = generate(run.sampling_map, run.source, cfg.eval.n_samples, cfg.eval.seed)
    rundir.write_samples(run.run_dir, x.numpy(), y.numpy())
    results = compute_metrics(
        list(cfg.eval.metrics), x, y, run.target, cfg.eval.seed, cfg.eval.ou_time, cfg.eval.mode_radius
    )
    if y.dim() == 4:
        from fastot.train.images import save_grid

        save_grid(y[: cfg.train.sample_grid], rundir.samples_grid(run.run_dir))
    if cfg.eval.plots:
        from fastot.train.plots import plot_losses, plot_run

        title = f"{cfg.preset or cfg.algorithm.name}, step {run.step}"
        if y.dim() == 2:
            ref = run.target.sample(len(y), torch.Generator().manual_seed(cfg.eval.seed + 1))
            plot_run(run.run_dir, x.numpy(), y.numpy(), ref.numpy(), title=title)
        else:  # images: the samples are in samples.png; the losses get their plot
            plot_losses(run.run_dir, title)
    summary = {
        **run_info(run),
        "preset_algorithm": cfg.algorithm.name,
        "steps": run.step,
        "metrics": results,
        "train_wall_time_s": round(train_time, 3),
        "wall_time_s": round(time.perf_counter() - t0, 3),
        "checkpoint": str(run.last_ckpt) if run.last_ckpt else None,
        "ema": run.ema is not None,
    }
    rundir.write_summary(run.run_dir, summary)
    return summary
