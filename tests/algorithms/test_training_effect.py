"""Short CPU runs that must show the algorithms' real effects."""

from __future__ import annotations

import torch

from fastot import metrics as M
from fastot.config import load_config
from fastot.sampling import generate
from fastot.train.loop import train
from fastot.train.run import Run


def test_uotm_moves_1d_source_towards_target(tmp_path):
    cfg = load_config(
        "uotm-table1-1d",
        [
            "train.iterations=300",
            "train.progress=false",
            "train.threads=1",
            "eval.n_samples=4000",
            "eval.plots=false",
            "networks.map.width=48",
            "networks.potential.width=48",
            "algorithm.k_v=2",
            "optim.map.lr=1e-3",
            "optim.potential.lr=1e-3",
        ],
    )
    run = Run(cfg, tmp_path)
    ref = run.target.sample(4000, torch.Generator().manual_seed(cfg.eval.seed + 1))
    x, y0 = generate(run.map, run.source, 4000, cfg.eval.seed)
    kl_init = M.knn_kl(y0, ref)
    kl_source = M.knn_kl(x, ref)
    summary = train(cfg, tmp_path)
    kl = summary["metrics"]["kl_knn"]
    assert kl <= 0.5 * kl_init, (kl, kl_init)
    assert kl < kl_source, (kl, kl_source)  # closer to the target than the untransported source
    assert summary["metrics"]["monotonicity"] > 0.9  # and the learned 1-D map is increasing
