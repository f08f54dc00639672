"""S-JKO phases: T_old freezing, the O(K) cost per iteration, phase state in checkpoints."""

from __future__ import annotations

from collections import Counter

import torch
from algo_helpers import make_ctx

from fastot.algorithms import build_algorithm
from fastot.algorithms.sjko import SJKO

SPEC = {"name": "sjko", "h": 0.5, "num_phases": 5, "init_iterations": 3, "phase_iterations": 2}


def _train_iteration(algo, ctx, it, total, opt_t, opt_v):
    algo.begin_iteration(it, total, ctx)
    loss, _ = algo.potential_loss(ctx)
    opt_v.zero_grad()
    loss.backward()
    opt_v.step()
    loss, _ = algo.map_loss(ctx)
    opt_t.zero_grad()
    loss.backward()
    opt_t.step()


def test_phase_schedule():
    algo = build_algorithm(SPEC)
    assert algo.default_iterations() == 3 + 4 * 2
    assert [algo.phase_of(i) for i in range(12)] == [0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 4]
    ends = [i for i in range(11) if algo.snapshot_due(i)]
    assert ends == [2, 4, 6, 8, 10]


def test_a_run_shorter_than_the_phases_names_where_it_stops():
    algo = build_algorithm(SPEC)  # 3 + 4 * 2 = 11 iterations
    assert algo.unfinished_schedule(11) is None and algo.unfinished_schedule(20) is None
    why = algo.unfinished_schedule(4)
    assert why is not None and "phase 1 of 5" in why and "11" in why


def test_phase_switch_freezes_a_copy_of_the_map():
    ctx = make_ctx(z_dim=1)
    algo = build_algorithm(SPEC)
    opt_t = torch.optim.Adam(ctx.map.parameters(), lr=1e-2)
    opt_v = torch.optim.Adam(ctx.potential.parameters(), lr=1e-2)
    for it in range(3):
        _train_iteration(algo, ctx, it, 11, opt_t, opt_v)
        assert algo.phase == 0 and algo.t_old is None  # T_old = identity in phase 0
    before = {k: v.clone() for k, v in ctx.map.state_dict().items()}
    _train_iteration(algo, ctx, 3, 11, opt_t, opt_v)
    old = algo.t_old
    assert algo.phase == 1 and old is not None and old is not ctx.map
    assert not old.training and not any(p.requires_grad for p in old.parameters())
    for k, v in old.state_dict().items():  # a copy of the map at the phase start ...
        torch.testing.assert_close(v, before[k])
    changed = any(not torch.equal(v, before[k]) for k, v in ctx.map.state_dict().items())
    assert changed  # ... while T keeps training from those weights
    _train_iteration(algo, ctx, 4, 11, opt_t, opt_v)
    assert algo.t_old is old  # same phase: no new copy, T_old untouched
    for k, v in old.state_dict().items():
        torch.testing.assert_close(v, before[k])
    snapshot = {k: v.clone() for k, v in ctx.map.state_dict().items()}
    _train_iteration(algo, ctx, 5, 11, opt_t, opt_v)
    assert algo.phase == 2 and algo.t_old is not old
    for k, v in algo.t_old.state_dict().items():
        torch.testing.assert_close(v, snapshot[k])


def test_map_cost_uses_t_old_with_independent_latent():
    ctx = make_ctx(z_dim=1)
    algo = build_algorithm(SPEC)
    algo.begin_iteration(0, 11, ctx)
    algo.begin_iteration(3, 11, ctx)  # phase 1: T_old = copy of the current map
    with torch.no_grad():
        for p in ctx.map.parameters():
            p.add_(0.05)  # make T differ from T_old
    ctx.generator.manual_seed(9)
    loss, _ = algo.map_loss(ctx)
    ctx.generator.manual_seed(9)
    x = ctx.source_batch()
    z = ctx.latent(x.shape[0])
    y = ctx.map(x, z)
    z_old = ctx.latent(x.shape[0])
    y_old = algo.t_old(x, z_old)
    assert not torch.equal(z, z_old)
    c = (y_old - y).square().sum(1) / (2 * 2 * 0.5)  # 1 / (2 d h), d = 2
    torch.testing.assert_close(loss, (c - ctx.potential(y)).mean())


def test_network_evaluations_per_iteration_do_not_grow_with_phase():
    """O(K) training: each iteration evaluates T twice, T_old at most once and v twice (once on
    fakes and data together, once in the map step), whatever the phase (no replay of the earlier
    JKO steps)."""
    ctx = make_ctx(z_dim=1)
    algo = build_algorithm({**SPEC, "num_phases": 6})
    map_cls, pot_cls = type(ctx.map), type(ctx.potential)
    counts: Counter = Counter()

    def hook(module, inp, out):
        if isinstance(module, map_cls):
            counts["T" if module is ctx.map else "T_old"] += 1
        elif isinstance(module, pot_cls):
            counts["v"] += 1

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        opt_t = torch.optim.Adam(ctx.map.parameters(), lr=1e-3)
        opt_v = torch.optim.Adam(ctx.potential.parameters(), lr=1e-3)
        per_phase: dict[int, set] = {}
        for it in range(algo.default_iterations()):
            counts.clear()
            _train_iteration(algo, ctx, it, algo.default_iterations(), opt_t, opt_v)
            per_phase.setdefault(algo.phase, set()).add((counts["T"], counts["T_old"], counts["v"]))
    finally:
        handle.remove()
    assert sorted(per_phase) == [0, 1, 2, 3, 4, 5]
    assert per_phase[0] == {(2, 0, 2)}  # T_old = identity: no network
    for phase in range(1, 6):
        assert per_phase[phase] == {(2, 1, 2)}, phase


def test_t_old_evaluated_once_per_map_step():
    ctx = make_ctx(z_dim=1)
    algo = build_algorithm(SPEC)
    algo.begin_iteration(0, 11, ctx)
    algo.begin_iteration(7, 11, ctx)  # phase 3
    calls = []
    algo.t_old.register_forward_hook(lambda m, i, o: calls.append(1))
    algo.map_loss(ctx)
    algo.potential_loss(ctx)
    assert len(calls) == 1


def test_phase_and_frozen_map_round_trip_through_state_dict():
    ctx = make_ctx(z_dim=1)
    algo = build_algorithm(SPEC)
    algo.begin_iteration(0, 11, ctx)
    algo.begin_iteration(5, 11, ctx)
    state = algo.state_dict()
    assert state["phase"] == 2 and isinstance(state["t_old"], dict)
    other: SJKO = build_algorithm(SPEC)  # type: ignore[assignment]
    with torch.no_grad():
        for p in ctx.map.parameters():
            p.add_(1.0)  # the live map moved on; the restored T_old must not follow it
    other.load_state_dict(state, ctx)
    assert other.phase == 2
    for k, v in other.t_old.state_dict().items():
        torch.testing.assert_close(v, state["t_old"][k])
    assert not any(p.requires_grad for p in other.t_old.parameters())


def test_jsd_losses():
    ctx = make_ctx(z_dim=1)
    algo = build_algorithm({**SPEC, "functional": "jsd"})
    algo.begin_iteration(0, 11, ctx)
    ctx.generator.manual_seed(4)
    loss, _ = algo.potential_loss(ctx)
    ctx.generator.manual_seed(4)
    x = ctx.source_batch()
    z = ctx.latent(x.shape[0])
    y = ctx.target_batch()
    w = ctx.potential
    sp = torch.nn.functional.softplus
    with torch.no_grad():
        y_fake = ctx.map(x, z)
    torch.testing.assert_close(loss, sp(w(y_fake)).mean() + sp(-w(y)).mean())
    ctx.generator.manual_seed(6)
    loss_t, _ = algo.map_loss(ctx)
    ctx.generator.manual_seed(6)
    x = ctx.source_batch()
    y = ctx.map(x, ctx.latent(x.shape[0]))
    c = (x - y).square().sum(1) / (2 * 2 * 0.5)
    torch.testing.assert_close(loss_t, (c + sp(-w(y))).mean())  # non-saturating map loss
