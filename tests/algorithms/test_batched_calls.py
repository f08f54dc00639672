"""``algorithm.batched_calls``: one network call where several compute the same numbers.

The stacked map forward of the k_v potential steps and the joint potential call on fakes and data
must train exactly what the separate calls train: the same draws, and the same weights up to the
rounding of a larger matrix product.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from algo_helpers import make_ctx
from torch import nn

from fastot.algorithms import build_algorithm
from fastot.algorithms.base import per_sample
from fastot.config import load_config
from fastot.errors import ConfigError
from fastot.train.run import Run


def _trained(preset: str, batched: bool, tmp: Path, extra: list[str]) -> Run:
    overrides = ["device=cpu", "train.iterations=4", f"algorithm.batched_calls={str(batched).lower()}"]
    cfg = load_config(preset=preset, overrides=[*overrides, *extra])
    run = Run(cfg, tmp / str(batched))
    for it in range(4):
        run.iteration(it)
    return run


@pytest.mark.parametrize(
    ("preset", "extra"),
    [
        ("uotm-outlier-1d", []),  # k_v = 5, no regulariser: both calls batched
        ("uotm-outlier-1d", ["algorithm.regularizer=r1", "algorithm.reg_weight=0.5"]),  # stacked map only
        ("sjko-ou", ["algorithm.k_v=3"]),  # S-JKO with its reference map
    ],
)
def test_batched_calls_train_what_separate_calls_train(tmp_path: Path, preset: str, extra: list[str]) -> None:
    runs = [_trained(preset, batched, tmp_path, extra) for batched in (True, False)]
    assert torch.equal(runs[0].generator.get_state(), runs[1].generator.get_state())  # the same draws
    for name in ("map", "potential"):
        a, b = (dict(getattr(r, name).named_parameters()) for r in runs)
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6, msg=f"{name}.{key}")


def test_stacked_batches_are_the_separate_draws() -> None:
    out = []
    for batched in (True, False):
        ctx = make_ctx()
        algo = build_algorithm({"name": "uotm", "tau": 0.1, "regularizer": "none", "k_v": 3})
        algo.batched_calls = batched
        algo.begin_iteration(0, 1, ctx)
        out.append([algo.potential_batch(ctx) for _ in range(3)])
    for stacked, separate in zip(*out, strict=True):
        assert torch.equal(stacked[0], separate[0]) and torch.equal(stacked[2], separate[2])
        torch.testing.assert_close(stacked[1], separate[1], rtol=1e-5, atol=1e-6)
    assert not torch.equal(out[0][0][0], out[0][1][0])  # still a fresh batch per step


def test_networks_with_batch_statistics_are_called_separately() -> None:
    net = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4))
    assert not per_sample(net)
    assert per_sample(net.eval())  # running statistics: per sample again
    assert not per_sample(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1)))
    assert per_sample(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.0)))


def test_the_gradient_penalty_keeps_one_batch_per_step() -> None:
    # Its interpolation weights are drawn between the steps' batches: drawing ahead would reorder them.
    ctx = make_ctx()
    algo = build_algorithm({"name": "wgan-gp", "k_v": 3})
    algo.begin_iteration(0, 1, ctx)
    algo.potential_batch(ctx)
    assert algo._drawn_ahead == []


def test_batched_calls_must_be_a_bool() -> None:
    with pytest.raises(ConfigError, match=r"algorithm\.batched_calls"):
        build_algorithm({"name": "uotm", "batched_calls": "yes"})
