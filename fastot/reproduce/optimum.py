"""The toy experiments' metrics at the exact optimum of each run's objective (:mod:`fastot.groundtruth`),
and a run's distance to that optimum."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastot import rundir

# Grid cells (1-D) or samples (2-D) of the exact solutions: the optimum's own discretisation error is
# below the runs' sampling noise at these sizes.
EXACT_POINTS = {1: 1000, 2: 1500}


def exact_metrics(name: str, run_dir: Path, cache: Path) -> tuple[dict[str, float], Any]:
    """The experiment's metrics at the exact optimum of the run's objective, and the optimum itself."""
    from omegaconf import OmegaConf

    from fastot import groundtruth, metrics

    cfg = rundir.read_config(run_dir)
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

    x, y = rundir.read_samples(run_dir)
    y_opt = toy.sample_pushforward(10000, seed=1).float()
    out = {"energy to optimum": metrics.energy_distance(torch.from_numpy(y).float(), y_opt)}
    if y.shape[1] == 1:  # the map itself is known in 1-D
        gap = y[:, 0] - toy.map(torch.from_numpy(x[:, 0])).numpy()
        out["map L2 gap"] = float(np.sqrt(np.mean(gap**2)))
    return out
