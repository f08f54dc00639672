"""The unified step reduces to each named algorithm's own losses."""

from __future__ import annotations

import math

import pytest
import torch
from algo_helpers import make_ctx

from fastot.algorithms import ALGORITHMS, build_algorithm
from fastot.train.errors import ConfigError


def _draw_potential_batch(ctx, n_latent: bool = True):
    """Redraw the batches potential_loss draws, in its order: x, z, y."""
    x = ctx.source_batch()
    z = ctx.latent(x.shape[0])
    y = ctx.target_batch()
    return x, z, y


def _potential(algo, ctx, seed=7):
    algo.begin_iteration(0, 100, ctx)
    ctx.generator.manual_seed(seed)
    loss, _ = algo.potential_loss(ctx)
    ctx.generator.manual_seed(seed)
    x, z, y = _draw_potential_batch(ctx)
    with torch.no_grad():
        y_fake = ctx.map(x, z)
    return loss, x, y_fake, y


def _map(algo, ctx, seed=11):
    algo.begin_iteration(0, 100, ctx)
    ctx.generator.manual_seed(seed)
    loss, _ = algo.map_loss(ctx)
    ctx.generator.manual_seed(seed)
    x = ctx.source_batch()
    y = ctx.map(x, ctx.latent(x.shape[0]))
    return loss, x, y


def test_wgan_losses_and_clipping():
    ctx = make_ctx()
    algo = build_algorithm({"name": "wgan"})
    loss, _, y_fake, y = _potential(algo, ctx)
    v = ctx.potential
    torch.testing.assert_close(loss, v(y_fake).mean() - v(y).mean())
    loss_t, _, y_t = _map(algo, ctx)
    torch.testing.assert_close(loss_t, -v(y_t).mean())
    with torch.no_grad():
        for p in v.parameters():
            p.mul_(100.0)
    algo.after_potential_step(ctx)
    assert all(p.abs().max() <= algo.clip for p in v.parameters())
    assert max(float(p.detach().abs().max()) for p in v.parameters()) == pytest.approx(algo.clip)


def test_otm_losses_with_r1():
    ctx = make_ctx()
    algo = build_algorithm({"name": "otm", "tau": 0.3, "reg_weight": 0.5})
    loss, x, y_fake, y = _potential(algo, ctx)
    v = ctx.potential
    c = 0.3 * (x - y_fake).square().sum(1)
    yy = y.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(v(yy).sum(), yy)
    expect = (v(y_fake) - c).mean() - v(y).mean() + 0.25 * g.square().sum(1).mean()
    torch.testing.assert_close(loss, expect)
    # R1 trains the potential through the double backward
    grads = torch.autograd.grad(loss, list(v.parameters()))
    assert all(torch.isfinite(gr).all() for gr in grads)
    loss_t, x_t, y_t = _map(algo, ctx)
    torch.testing.assert_close(loss_t, (0.3 * (x_t - y_t).square().sum(1) - v(y_t)).mean())


@pytest.mark.parametrize("kind", ["kl", "chi2", "softplus", "softplus_unscaled"])
def test_uotm_psi_kinds(kind):
    ctx = make_ctx()
    algo = build_algorithm(
        {"name": "uotm", "tau": 0.1, "psi_source": kind, "psi_target": kind, "regularizer": "none"}
    )
    loss, x, y_fake, y = _potential(algo, ctx)
    v = ctx.potential

    def psi(s):
        return {
            "kl": torch.expm1(s),
            "chi2": s.clamp(min=-2) ** 2 / 4 + s.clamp(min=-2),
            "softplus": 2 * torch.nn.functional.softplus(s) - 2 * math.log(2),
            "softplus_unscaled": torch.nn.functional.softplus(s),
        }[kind]

    c = 0.1 * (x - y_fake).square().sum(1)
    torch.testing.assert_close(loss, psi(v(y_fake) - c).mean() + psi(-v(y)).mean())
    loss_t, x_t, y_t = _map(algo, ctx)  # g3 = identity: no Psi on the map loss
    torch.testing.assert_close(loss_t, (0.1 * (x_t - y_t).square().sum(1) - v(y_t)).mean())


def test_nocost_and_fixed_source():
    ctx = make_ctx()
    nocost = build_algorithm({"name": "uotm-nocost", "regularizer": "none"})
    assert nocost.tau == 0
    loss_t, _, y_t = _map(nocost, ctx)
    torch.testing.assert_close(loss_t, -ctx.potential(y_t).mean())
    fixed = build_algorithm({"name": "uotm-fixed-source", "tau": 0.2, "regularizer": "none"})
    loss, x, y_fake, y = _potential(fixed, ctx)
    v = ctx.potential
    c = 0.2 * (x - y_fake).square().sum(1)
    torch.testing.assert_close(loss, (v(y_fake) - c).mean() + torch.expm1(-v(y)).mean())


def test_wgan_gp_penalty_on_interpolates():
    ctx = make_ctx()
    algo = build_algorithm({"name": "wgan-gp", "reg_weight": 10.0})
    algo.begin_iteration(0, 10, ctx)
    ctx.generator.manual_seed(3)
    loss, logs = algo.potential_loss(ctx)
    ctx.generator.manual_seed(3)
    x, z, y = _draw_potential_batch(ctx)
    eps = ctx.rand(y.shape[0], 1)
    with torch.no_grad():
        y_fake = ctx.map(x, z)
    v = ctx.potential
    inter = (eps * y + (1 - eps) * y_fake).requires_grad_(True)
    (g,) = torch.autograd.grad(v(inter).sum(), inter)
    gp = 10.0 * (g.norm(dim=1) - 1).square().mean()
    torch.testing.assert_close(loss, v(y_fake).mean() - v(y).mean() + gp)
    assert logs["reg"] == pytest.approx(float(gp), rel=1e-5)


def test_uotm_sd_alpha_schedule_and_scaling():
    ctx = make_ctx()
    algo = build_algorithm({"name": "uotm-sd", "tau": 0.1, "regularizer": "none"})
    total = 1000
    alphas = []
    for it in (0, 375, 750, 900, 999):
        algo.begin_iteration(it, total, ctx)
        alphas.append(algo.current_alpha)
    assert alphas == pytest.approx([0.2, 2.6, 5.0, 5.0, 5.0])  # linear over the first 75%, then held
    algo.begin_iteration(300, total, ctx)
    a = algo.current_alpha
    ctx.generator.manual_seed(5)
    loss, _ = algo.potential_loss(ctx)
    ctx.generator.manual_seed(5)
    x, z, y = _draw_potential_batch(ctx)
    with torch.no_grad():
        y_fake = ctx.map(x, z)
    v = ctx.potential

    def sp(s):
        return a * (2 * torch.nn.functional.softplus(s / a) - 2 * math.log(2))

    c = 0.1 * (x - y_fake).square().sum(1)
    torch.testing.assert_close(loss, sp(v(y_fake) - c).mean() + sp(-v(y)).mean())
    state = algo.state_dict()
    other = build_algorithm({"name": "uotm-sd", "tau": 0.1, "regularizer": "none"})
    other.load_state_dict(state, ctx)
    assert other.current_alpha == a and other.iteration == 300


@pytest.mark.parametrize("name", ["not", "knot"])
def test_weak_costs(name):
    ctx = make_ctx(z_dim=2)
    algo = build_algorithm({"name": name, "gamma": 0.5, "n_z": 3})
    # potential step: f(T(x, z)) - f(y), the cost does not enter
    loss, _, y_fake, y = _potential(algo, ctx)
    v = ctx.potential
    torch.testing.assert_close(loss, v(y_fake).mean() - v(y).mean())
    algo.begin_iteration(0, 10, ctx)
    ctx.generator.manual_seed(2)
    loss_t, _ = algo.map_loss(ctx)
    ctx.generator.manual_seed(2)
    x = ctx.source_batch()
    b = x.shape[0]
    ys = ctx.map(x.repeat_interleave(3, 0), ctx.latent(3 * b)).view(b, 3, -1)
    if name == "not":
        cost = (x[:, None] - ys).square().sum(-1).mean(1) / 2 - 0.25 * ys.var(1, unbiased=True).sum(-1)
    else:
        pair = torch.cdist(ys, ys).sum((1, 2)) / 6
        cost = 0.5 * (x[:, None] - ys).norm(dim=-1).mean(1) - 0.125 * pair
    torch.testing.assert_close(loss_t, cost.mean() - v(ys.flatten(0, 1)).mean())
    assert algo.k_t == 10 and algo.k_v == 1


def test_gamma_ramp():
    ctx = make_ctx(z_dim=2)
    algo = build_algorithm({"name": "not", "gamma": 0.66, "gamma_start": 0.0, "gamma_iterations": 100})
    got = []
    for it in (0, 50, 100, 500):
        algo.begin_iteration(it, 1000, ctx)
        got.append(algo.current_gamma)
    assert got == pytest.approx([0.0, 0.33, 0.66, 0.66])


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ({"name": "nope"}, "algorithm.name"),
        ({"name": "uotm", "psi_source": "hellinger"}, "algorithm.psi_source"),
        ({"name": "uotm", "tau": -1.0}, "algorithm.tau"),
        ({"name": "otm", "bogus": 1}, "algorithm.bogus"),
        ({"name": "sjko", "functional": "w2"}, "algorithm.functional"),
        ({"name": "not", "n_z": 1}, "algorithm.n_z"),
    ],
)
def test_bad_algorithm_specs_name_the_key(spec, key):
    with pytest.raises(ConfigError) as e:
        build_algorithm(spec)
    assert e.value.key == key


def test_every_algorithm_builds_and_steps():
    for name in ALGORITHMS:
        ctx = make_ctx(z_dim=2)
        algo = build_algorithm({"name": name})
        algo.begin_iteration(0, 10, ctx)
        lv, _ = algo.potential_loss(ctx)
        lt, _ = algo.map_loss(ctx)
        assert torch.isfinite(lv) and torch.isfinite(lt), name


class _ImageSampler:
    def __init__(self, shift: float) -> None:
        self.shift = shift

    def sample(self, n, generator=None):
        return self.shift + torch.randn(n, 1, 4, 4, generator=generator)


class _ConvMap(torch.nn.Module):
    z_dim = 3

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)
        self.z = torch.nn.Linear(3, 16)

    def forward(self, x, z):
        return self.conv(x) + self.z(z).view(-1, 1, 4, 4)


class _ConvPotential(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3, padding=1)

    def forward(self, y):
        return self.conv(y).square().mean(dim=(1, 2, 3))


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_every_algorithm_runs_on_image_shaped_data(name):
    """No algorithm assumes vector data: [B, C, H, W] batches and conv networks work as well."""
    from fastot.algorithms import StepContext

    torch.manual_seed(0)
    ctx = StepContext(
        _ConvMap(),
        _ConvPotential(),
        _ImageSampler(0.0),
        _ImageSampler(1.0),
        6,
        torch.Generator().manual_seed(0),
    )
    spec = {"name": name}
    if name == "sjko":
        spec.update(init_iterations=1, phase_iterations=1, num_phases=3)
    algo = build_algorithm(spec)
    for it in range(3):  # crosses S-JKO phase switches
        algo.begin_iteration(it, 3, ctx)
        lv, _ = algo.potential_loss(ctx)
        lv.backward()
        lt, _ = algo.map_loss(ctx)
        lt.backward()
        assert torch.isfinite(lv) and torch.isfinite(lt)
    assert all(p.grad is not None for p in ctx.map.parameters())
