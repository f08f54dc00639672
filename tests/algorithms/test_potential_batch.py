"""The reference toy script's option: one batch for all k_v potential steps of an iteration."""

from __future__ import annotations

import torch
from algo_helpers import make_ctx

from fastot.algorithms import build_algorithm


def _batches(reuse: bool) -> list[tuple[torch.Tensor, ...]]:
    ctx = make_ctx()
    algo = build_algorithm(
        {"name": "uotm", "tau": 0.1, "regularizer": "none", "reuse_potential_batch": reuse}
    )
    out = []
    for it in range(2):
        algo.begin_iteration(it, 2, ctx)
        out += [algo.potential_batch(ctx), algo.potential_batch(ctx)]
    return out


def test_reused_batch_is_the_same_within_an_iteration_and_fresh_across() -> None:
    b = _batches(reuse=True)
    assert all(torch.equal(p, q) for p, q in zip(b[0], b[1], strict=True))
    assert not torch.equal(b[0][0], b[2][0])  # the next iteration draws again
    assert all(torch.equal(p, q) for p, q in zip(b[2], b[3], strict=True))


def test_default_draws_a_fresh_batch_per_potential_step() -> None:
    b = _batches(reuse=False)
    for field in range(3):  # x, T(x, z) and y all change between steps
        assert not torch.equal(b[0][field], b[1][field])


def test_reused_batch_still_trains_with_r1() -> None:
    ctx = make_ctx()
    algo = build_algorithm({"name": "uotm", "tau": 0.1, "reg_weight": 0.5, "reuse_potential_batch": True})
    algo.begin_iteration(0, 1, ctx)
    for _ in range(2):  # the second step reuses y, which already requires grad
        loss, logs = algo.potential_loss(ctx)
        loss.backward()
        assert "reg" in logs and torch.isfinite(loss)
