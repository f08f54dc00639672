"""The end-of-run metrics chosen by ``eval.metrics`` and FID during training (samples come from
:mod:`fastot.sampling`, which evaluation and ``fastot.sample`` draw them with too)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from fastot import metrics as M
from fastot.data.ou import OUTarget, ou_solution
from fastot.errors import ConfigError
from fastot.eval import fid
from fastot.eval.inception import WeightsError
from fastot.sampling import generate_batches

METRICS = ("kl_knn", "energy", "modes", "monotonicity", "ou_symkl")


def check_metrics(names: list[str]) -> None:
    for name in names:
        if name not in METRICS:
            raise ConfigError("eval.metrics", f"unknown metric {name!r}; choose from {list(METRICS)}")


def compute_metrics(
    names: list[str],
    x: Tensor,
    y: Tensor,
    target: Any,
    seed: int,
    ou_time: float | None = None,
    mode_radius: float | None = None,
) -> dict[str, float]:
    out: dict[str, float] = {}
    ref = target.sample(len(y), torch.Generator().manual_seed(seed + 1))
    for name in names:
        if name == "kl_knn":
            out["kl_knn"] = M.knn_kl(y, ref)
        elif name == "energy":
            out["energy"] = M.energy_distance(y, ref)
        elif name == "modes":
            if mode_radius is None:
                out.update(M.mode_stats(y, target.centers, target.std))
            else:
                out.update(M.mode_stats(y, target.centers, mode_radius, n_std=1.0))
        elif name == "monotonicity":
            out["monotonicity"] = M.monotonicity(x, y)
        elif name == "ou_symkl":
            if not isinstance(target, OUTarget) or ou_time is None:
                raise ConfigError("eval.ou_time", "ou_symkl needs an ou_target and eval.ou_time")
            mean, cov = ou_solution(target.dim, ou_time, target.seed)
            sym = M.gaussian_symmetric_kl(y, mean, cov)
            out["ou_symkl"] = sym
            out["ou_log10_symkl"] = float(torch.tensor(sym).log10())
    return out


class PeriodicFID:
    """FID of the sampling map against a fixed reference, for ``eval.fid_every`` during training.

    The Inception network and the reference statistics are loaded once, when the run starts, so a
    missing weight file or reference fails before any training."""

    def __init__(self, cfg: Any, device: torch.device) -> None:
        try:
            self.extractor = fid.inception_extractor(cfg.eval.inception_weights, device)
        except (FileNotFoundError, WeightsError) as e:
            raise ConfigError("eval.inception_weights", str(e).splitlines()[0]) from None
        self.device = device
        self.mu, self.sigma = fid.reference_statistics(cfg.eval.fid_ref, self.extractor, device=device)
        self.n, self.seed = int(cfg.eval.fid_n), int(cfg.eval.seed)

    def __call__(self, net: nn.Module, source: Any, batch: int = 100) -> float:
        batches = generate_batches(net, source, self.n, batch, self.seed)
        mu, sigma, _ = fid.compute_statistics(batches, self.extractor, self.device)
        return fid.frechet_distance(mu, sigma, self.mu, self.sigma)
