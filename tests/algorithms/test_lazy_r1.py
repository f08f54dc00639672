"""``algorithm.r1_every``: lazy R1, the penalty on every k-th potential step, weighted by k.

The due steps follow the potential-step count derived from the iteration (so a resumed run puts the
penalty on the same steps), a due step's penalty is k times the eager one on the same batch, and the
other steps are plain semi-dual steps.
"""

from __future__ import annotations

import pytest
import torch
from algo_helpers import make_ctx

from fastot.algorithms import build_algorithm
from fastot.errors import ConfigError

SPEC = {"name": "uotm", "tau": 0.1, "regularizer": "r1", "reg_weight": 0.5, "k_v": 3}


def _reg_logs(r1_every: int, iterations: range) -> list[float | None]:
    ctx = make_ctx()
    algo = build_algorithm({**SPEC, "r1_every": r1_every})
    out = []
    for it in iterations:
        algo.begin_iteration(it, 10, ctx)
        for _ in range(algo.k_v):
            _, logs = algo.potential_loss(ctx)
            out.append(float(logs["reg"]) if "reg" in logs else None)
    return out


def test_the_penalty_falls_on_every_kth_step_with_k_times_the_weight() -> None:
    eager, lazy = _reg_logs(1, range(3)), _reg_logs(4, range(3))
    assert [r is not None for r in lazy] == [s % 4 == 0 for s in range(9)]  # steps 0, 4, 8
    for step in (0, 4, 8):  # the same draws, so the same batch: k times the eager penalty
        assert lazy[step] == pytest.approx(4 * eager[step], rel=1e-5)


def test_a_resumed_run_puts_the_penalty_on_the_same_steps() -> None:
    # Iterations 2.. alone (as after a resume at iteration 2) see the penalty where the whole run does.
    whole = [r is not None for r in _reg_logs(4, range(4))]
    resumed = [r is not None for r in _reg_logs(4, range(2, 4))]
    assert resumed == whole[6:]


def test_eager_r1_is_the_default() -> None:
    assert build_algorithm(dict(SPEC)).r1_every == 1
    assert all(r is not None for r in _reg_logs(1, range(2)))


@pytest.mark.parametrize("bad", [0, -2, 1.5, "4"])
def test_r1_every_must_be_a_positive_integer(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"algorithm\.r1_every"):
        build_algorithm({**SPEC, "r1_every": bad})


def test_skipped_steps_train_like_no_penalty() -> None:
    # A step without the penalty is the unregularised step: the same loss on the same batch.
    torch.manual_seed(0)
    ctx_a, ctx_b = make_ctx(), make_ctx()
    lazy = build_algorithm({**SPEC, "r1_every": 2})
    plain = build_algorithm({**SPEC, "regularizer": "none"})
    for algo, ctx in ((lazy, ctx_a), (plain, ctx_b)):
        algo.begin_iteration(0, 1, ctx)
    losses = []
    for algo, ctx in ((lazy, ctx_a), (plain, ctx_b)):
        algo.potential_loss(ctx)  # step 0: lazy pays the penalty here
        losses.append(algo.potential_loss(ctx)[1]["loss_v"])  # step 1: it does not
    torch.testing.assert_close(losses[0], losses[1])
