"""Tiny networks and a step context shared by the algorithm tests."""

from __future__ import annotations

import torch

from fastot.algorithms import StepContext
from fastot.data import build_sampler
from fastot.nn import MLPPotential, UOTMToyMap


def make_ctx(dim: int = 2, batch: int = 16, seed: int = 0, z_dim: int = 1, width: int = 16) -> StepContext:
    torch.manual_seed(seed)
    t = UOTMToyMap(dim, z_dim=z_dim, width=width, blocks=1)
    v = MLPPotential(dim, width=width)
    src = build_sampler({"name": "gaussian", "dim": dim}, "data.source")
    tgt = build_sampler({"name": "gaussian", "dim": dim, "mean": 2.0, "std": 0.5}, "data.target")
    return StepContext(t, v, src, tgt, batch, torch.Generator().manual_seed(seed + 1))


def replay(ctx: StepContext, seed: int) -> StepContext:
    """The same context with its generator reset, to redraw exactly the batches a loss used."""
    ctx.generator.manual_seed(seed)
    return ctx
