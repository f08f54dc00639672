"""Image networks: parameter counts of the papers' configs, shapes, z dependence, gradients, layers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fastot.nn import MAPS, POTENTIALS, build_map, build_potential
from fastot.nn.dcgan import upsample_source
from fastot.nn.layers import (
    AdaptiveGroupNorm,
    FIRConvDownsample,
    FIRDownsample,
    FIRUpsample,
    MinibatchStd,
    fir_kernel_2d,
    largest_divisor_at_most,
)
from fastot.train.errors import ConfigError


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# name, kind, kwargs, stated size, source of the number (UOTM App. B, S-JKO App. C, NOT App. C configs).
PARAM_CASES = [
    ("ncsnpp32", "map", {}, 45.0e6, "NCSN++ CIFAR-10 without the time embedding"),
    ("ncsnpp256", "map", {}, 38.0e6, "NCSN++ CelebA-HQ 256 without the time embedding"),
    ("disc32", "potential", {}, 12.2e6, "UOTM CIFAR-10 potential"),
    ("disc256", "potential", {}, 26.9e6, "UOTM CelebA-HQ 256 potential"),
    ("dcgan_resnet32", "map", {}, 0.4e6, "S-JKO App. C: small map ~0.4M"),
    ("dcgan_resnet32", "potential", {}, 0.26e6, "OTM* ResNet discriminator"),
    ("unet", "map", {"image_size": 64}, 9.72e6, "NOT UNet(3+1, 3, 48)"),
    ("resnet_d", "potential", {"image_size": 32}, 13.5e6, "NOT ResNet_D at 32"),
    ("resnet_d", "potential", {"image_size": 64}, 22.9e6, "NOT ResNet_D at 64"),
]


@pytest.mark.parametrize(("name", "kind", "kwargs", "stated", "source"), PARAM_CASES)
def test_param_counts(name: str, kind: str, kwargs: dict, stated: float, source: str) -> None:
    build = build_map if kind == "map" else build_potential
    with torch.device("meta"):  # shapes only: no allocation, no initialisation cost
        net = build({"name": name, **kwargs})
    n = n_params(net)
    assert abs(n - stated) / stated < 0.10, f"{name} ({source}): {n:,} parameters vs ~{stated:,.0f}"


def test_exact_reference_counts() -> None:
    # The configs reproduce the reference layouts layer for layer (computed counts in the reference notes,
    # NCSN++ minus its 3,283,200 / 1,661,248 unused time-projection weights).
    with torch.device("meta"):
        counts = {
            "ncsnpp32": n_params(MAPS["ncsnpp32"]()),
            "ncsnpp256": n_params(MAPS["ncsnpp256"]()),
            "disc32": n_params(POTENTIALS["disc32"]()),
            "disc256": n_params(POTENTIALS["disc256"]()),
            "disc256@64": n_params(POTENTIALS["disc256"](image_size=64)),
            "resnet_d@32": n_params(POTENTIALS["resnet_d"](image_size=32)),
        }
    assert counts == {
        "ncsnpp32": 48_103_811 - 3_283_200,
        "ncsnpp256": 39_644_547 - 1_661_248,
        "disc32": 12_247_809,
        "disc256": 26_881_537,
        "disc256@64": 16_918_017,
        "resnet_d@32": 13_494_209,
    }


def test_registry_kwargs() -> None:
    with torch.device("meta"):
        net = build_map({"name": "ncsnpp32", "nf": 32, "ch_mult": [1, 2]}, channels=1, image_size=16)
        assert net.z_dim == 100 and net.channels == 1
        pot = build_potential({"name": "dcgan_resnet32"}, channels=3, image_size=32)  # image_size is implied
        assert isinstance(pot, nn.Module)
    with pytest.raises(ConfigError):
        build_map({"name": "ncsnpp32", "bogus": 1})


# ---------------------------------------------------------------------------------------------------
# maps
# ---------------------------------------------------------------------------------------------------


def _check_map(
    net: nn.Module, x: torch.Tensor, z_shape: tuple[int, ...] | None, bounded: bool = True
) -> None:
    """Same x, different z -> different outputs; shape/dtype/range; d out / d x exists."""
    x = x.clone().requires_grad_(True)
    z = torch.randn(z_shape) if z_shape is not None else None
    y = net(x, z)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert torch.isfinite(y).all()
    if bounded:
        assert y.abs().max() <= 1.0
    if z is not None:
        assert not torch.allclose(y[0], y[1], atol=1e-5), "the map ignores z"
    (g,) = torch.autograd.grad(y.square().sum(), x)
    assert g.abs().sum() > 0


def _check_channels_last(net: nn.Module, x: torch.Tensor, z: torch.Tensor | None) -> None:
    ref = net(x, z) if z is not None or getattr(net, "z_dim", 0) == 0 else None
    out = net(x.contiguous(memory_format=torch.channels_last), z)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)


def test_ncsnpp32_full_width() -> None:
    net = MAPS["ncsnpp32"](init_scale=1.0)  # non-zero closing convs, so the output depends on everything
    x = torch.randn(1, 3, 32, 32).expand(2, -1, -1, -1)  # one x, two z
    _check_map(net, x, (2, 100))


def test_ncsnpp_default_init_starts_near_zero() -> None:
    net = MAPS["ncsnpp32"](nf=16, ch_mult=(1, 2))
    y = net(torch.randn(2, 3, 32, 32), torch.randn(2, 100))
    assert y.abs().max() < 1e-3  # versus O(1) with init_scale=1


@pytest.mark.parametrize(
    ("name", "size", "kwargs"), [("ncsnpp32", 32, {"nf": 32}), ("ncsnpp256", 256, {"nf": 8})]
)
def test_ncsnpp_reduced_width(name: str, size: int, kwargs: dict) -> None:
    # The full layout (all levels, attention at 16, input pyramid) at reduced width.
    net = MAPS[name](init_scale=1.0, **kwargs)
    b = 2 if size == 32 else 1
    x = torch.randn(1, 3, size, size).expand(2, -1, -1, -1)
    if b == 2:
        _check_map(net, x, (2, 100))
        _check_channels_last(net, x, torch.randn(2, 100))
    else:  # one sample at 256: shape, range, gradient; z dependence through two single-sample calls
        x1 = x[:1].clone().requires_grad_(True)
        y = net(x1, torch.randn(1, 100))
        assert y.shape == (1, 3, size, size) and y.abs().max() <= 1
        assert not torch.allclose(y, net(x1, torch.randn(1, 100)))
        (g,) = torch.autograd.grad(y.sum(), x1)
        assert g.abs().sum() > 0


def test_dcgan_map() -> None:
    net = MAPS["dcgan_resnet32"]()
    assert net.z_dim == 0
    e = torch.randn(2, 3, 8, 8)
    x = upsample_source(e)
    assert x.shape == (2, 3, 32, 32)
    torch.testing.assert_close(net.latent_of(x), e.flatten(1), atol=1e-5, rtol=0)
    _check_map(net, x, None)
    torch.testing.assert_close(net(x), net(e), atol=1e-5, rtol=1e-4)  # raw 8x8 noise is accepted too
    _check_channels_last(net, x, None)
    stoch = MAPS["dcgan_resnet32"](z_dim=4)
    _check_map(stoch, x[:1].expand(2, -1, -1, -1), (2, 4))


def test_unet_map() -> None:
    net = MAPS["unet"](image_size=32)
    assert net.z_dim == 32 * 32 and net.z_channels == 1
    x = torch.rand(1, 3, 32, 32).expand(2, -1, -1, -1) * 2 - 1
    _check_map(net, x, (2, net.z_dim), bounded=False)  # flat latent from the trainer
    z_img = torch.randn(2, 1, 32, 32)
    torch.testing.assert_close(net(x, z_img), net(x, z_img.flatten(1)))
    assert net(x, None).shape == x.shape  # noise drawn internally
    _check_channels_last(net, x, z_img)
    det = MAPS["unet"](image_size=32, z_channels=0)
    assert det.z_dim == 0
    _check_map(det, x, None, bounded=False)


# ---------------------------------------------------------------------------------------------------
# potentials
# ---------------------------------------------------------------------------------------------------


def _check_potential(net: nn.Module, y: torch.Tensor, double: bool = False) -> None:
    """Output [B] float32; R1's d v / d y exists (and, with ``double``, can be differentiated again)."""
    y = y.clone().requires_grad_(True)
    v = net(y)
    assert v.shape == (y.shape[0],) and v.dtype == torch.float32
    (g,) = torch.autograd.grad(v.sum(), y, create_graph=double)
    assert g.shape == y.shape and g.abs().sum() > 0
    if double:
        g.square().sum().backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    out = net(y.detach().contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, v.detach(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    ("name", "size", "kwargs", "batch"),
    [
        ("disc32", 32, {"final_init_scale": 1.0}, 4),
        ("disc256", 256, {"ngf": 8}, 1),  # the full 256 layout at reduced width
        ("dcgan_resnet32", 32, {}, 2),
        ("resnet_d", 32, {"image_size": 32}, 2),
    ],
)
def test_potentials(name: str, size: int, kwargs: dict, batch: int) -> None:
    _check_potential(POTENTIALS[name](**kwargs), torch.randn(batch, 3, size, size))


def test_potential_r1_double_backward_odd_batch() -> None:
    # B = 6 is not divisible by the stddev group 4 (groups of 3 are used); R1 differentiates d v / d y again.
    _check_potential(
        POTENTIALS["disc32"](ngf=16, final_init_scale=1.0), torch.randn(6, 3, 32, 32), double=True
    )


def test_disc256_smaller_images() -> None:
    net = POTENTIALS["disc256"](image_size=64, ngf=8)
    assert net(torch.randn(2, 3, 64, 64)).shape == (2,)
    with pytest.raises(ValueError):
        POTENTIALS["disc256"](image_size=48)


# ---------------------------------------------------------------------------------------------------
# layers
# ---------------------------------------------------------------------------------------------------


def _upfirdn(x: torch.Tensor, k: torch.Tensor, up: int, down: int, pad: tuple[int, int]) -> torch.Tensor:
    """Direct upfirdn2d: zero-stuff by ``up``, pad, FIR-filter, keep every ``down``-th pixel."""
    b, c, h, w = x.shape
    if up > 1:
        s = x.new_zeros(b, c, h * up, w * up)
        s[..., ::up, ::up] = x
        x = s
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    x = F.conv2d(x, k.flip(0, 1).expand(c, 1, *k.shape), groups=c)
    return x[..., ::down, ::down]


def test_fir_resampling_matches_upfirdn() -> None:
    x = torch.randn(2, 3, 8, 8)
    k = fir_kernel_2d((1, 3, 3, 1))
    torch.testing.assert_close(FIRDownsample()(x), _upfirdn(x, k, 1, 2, (1, 1)))
    torch.testing.assert_close(FIRUpsample()(x), _upfirdn(x, 4 * k, 2, 1, (2, 1)))
    layer = FIRConvDownsample(3, 5)
    torch.testing.assert_close(layer(x), layer.conv(_upfirdn(x, k, 1, 1, (2, 2))))
    assert FIRUpsample()(torch.ones(1, 1, 4, 4))[..., 1:-1, 1:-1].allclose(torch.ones(1))  # unit DC gain
    assert FIRDownsample()(x.contiguous(memory_format=torch.channels_last)).allclose(FIRDownsample()(x))


def test_adaptive_group_norm() -> None:
    norm = AdaptiveGroupNorm(8, emb_dim=5)
    h = torch.randn(3, 8, 4, 4)
    torch.testing.assert_close(norm(h, torch.zeros(3, 5)), F.group_norm(h, 2, eps=1e-6))
    e = torch.randn(3, 5)
    gamma, beta = norm.style(e).chunk(2, dim=1)
    want = gamma[:, :, None, None] * F.group_norm(h, 2, eps=1e-6) + beta[:, :, None, None]
    torch.testing.assert_close(norm(h, e), want)


@pytest.mark.parametrize(("batch", "group"), [(8, 4), (6, 3), (5, 1), (3, 3), (2, 2)])
def test_minibatch_std(batch: int, group: int) -> None:
    assert largest_divisor_at_most(batch, 4) == group
    x = torch.randn(batch, 6, 3, 3)
    out = MinibatchStd(group_size=4)(x)
    assert out.shape == (batch, 7, 3, 3)
    torch.testing.assert_close(out[:, :6], x)
    n = batch // group
    for i in range(batch):  # sample i belongs with samples i mod n, i mod n + n, ...
        members = x[i % n :: n]
        want = (members.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        torch.testing.assert_close(out[i, 6], want.expand(3, 3))
