"""weak_quadratic_cost and energy_kernel_cost: the two stochastic-map costs share shapes and checks."""

import pytest
import torch
from fastot_testing import CPU_FUSED, DTYPES, assert_close, make

import fastot
from fastot.ops import _reference

OPS = {
    "weak_quadratic_cost": (fastot.weak_quadratic_cost, _reference.weak_quadratic_cost),
    "energy_kernel_cost": (fastot.energy_kernel_cost, _reference.energy_kernel_cost),
}
# Z <= 8 takes the CPU column kernels (compiled per Z), Z = 9 the tiled loops.
SHAPES = [(1, 2, 1), (3, 2, 7), (2, 4, 3, 5), (2, 8, 1000), (3, 5, 33), (2, 9, 300)]


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("contiguous", [True, False])
def test_forward_backward_match_reference(name, shape, dtype, contiguous):
    op, ref = OPS[name]
    b, z, *feat = shape
    x = make((b, *feat), dtype, contiguous, requires_grad=True)
    y = make((b, z, *feat), dtype, contiguous, requires_grad=True)
    out = op(x, y, 0.6, 0.3, backend=CPU_FUSED)
    assert out.shape == (b,) and out.dtype == dtype
    xd, yd = x.detach().double().requires_grad_(), y.detach().double().requires_grad_()
    exp = ref(xd.flatten(1), yd.flatten(2), 0.6, 0.3)
    assert_close(out, exp, dtype, scale=max(1.0, exp.abs().max().item()))
    g = torch.randn(b, dtype=torch.float64)
    gx, gy = torch.autograd.grad(out, (x, y), g.to(dtype))
    ex, ey = torch.autograd.grad(exp, (xd, yd), g)
    assert gx.shape == x.shape and gy.shape == y.shape
    assert_close(gx, ex, dtype, scale=max(1e-3, ex.abs().max().item()))
    assert_close(gy, ey, dtype, scale=max(1e-3, ey.abs().max().item()))


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("z", range(2, 11))
def test_every_sample_count(name, z):
    # Z <= 8 runs the CPU column kernels compiled per Z, larger Z the tiled loops.
    op, ref = OPS[name]
    x = make((3, 37), torch.float64, True, requires_grad=True)
    y = make((3, z, 37), torch.float64, True, requires_grad=True)
    g = torch.randn(3, dtype=torch.float64)
    out, exp = op(x, y, 0.7, 1.3, backend=CPU_FUSED), ref(x, y, 0.7, 1.3)
    torch.testing.assert_close(out, exp, rtol=1e-10, atol=1e-12)
    got, want = torch.autograd.grad(out, (x, y), g), torch.autograd.grad(exp, (x, y), g)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", OPS)
def test_gradcheck_and_double_backward_error(name):
    op, _ = OPS[name]
    x = make((2, 3), torch.float64, requires_grad=True)
    y = make((2, 3, 3), torch.float64, requires_grad=True)

    def f(a, b):
        return op(a, b, 0.5, 0.7, backend=CPU_FUSED)

    assert torch.autograd.gradcheck(f, (x, y))
    (gy,) = torch.autograd.grad(f(x, y).sum(), y, create_graph=True)
    with pytest.raises(RuntimeError, match=f"double backward of fastot::_{name}_backward is not supported"):
        gy.sum().backward()


def test_weak_quadratic_gamma_zero_is_the_mean_strong_cost():
    x, y = make((3, 5), torch.float64), make((3, 4, 5), torch.float64)
    out = fastot.weak_quadratic_cost(x, y, 0.0, backend=CPU_FUSED)
    strong = torch.stack([fastot.quadratic_cost(x, y[:, z], 0.5) for z in range(4)]).mean(0)
    torch.testing.assert_close(out, strong)


def test_energy_cost_accurate_for_nearby_samples_at_image_size():
    # Samples 1e-3 apart in d = 3*64*64: the float32 Gram expansion would lose about three
    # digits here; distances accumulated from differences in double keep the gradient to 1e-6.
    x = make((2, 3 * 64 * 64), torch.float32)
    base = make((2, 1, 3 * 64 * 64), torch.float32)
    y = (base + 1e-3 * make((2, 4, 3 * 64 * 64), torch.float32)).requires_grad_()
    out = fastot.energy_kernel_cost(x, y, 1.0, backend=CPU_FUSED)
    (gy,) = torch.autograd.grad(out.sum(), y)
    yd = y.detach().double().requires_grad_()
    exp = _reference.energy_kernel_cost(x.double(), yd, 1.0)
    (ey,) = torch.autograd.grad(exp.sum(), yd)
    torch.testing.assert_close(out.double(), exp, rtol=1e-6, atol=0)
    rel = (gy.double() - ey).norm() / ey.norm()
    assert rel <= 1e-6, rel


def test_energy_gradient_is_zero_at_coincident_points():
    x = torch.zeros(1, 3, dtype=torch.float64)
    y = torch.zeros(1, 2, 3, dtype=torch.float64, requires_grad=True)
    (gy,) = torch.autograd.grad(fastot.energy_kernel_cost(x, y, 1.0, backend=CPU_FUSED).sum(), y)
    assert torch.equal(gy, torch.zeros_like(gy))


@pytest.mark.parametrize("name", OPS)
def test_z_below_two_rejected(name):
    op, _ = OPS[name]
    with pytest.raises(ValueError, match="Z >= 2"):
        op(torch.zeros(3, 4), torch.zeros(3, 1, 4), 0.5)


@pytest.mark.parametrize("name", OPS)
def test_mismatched_feature_shapes_rejected(name):
    op, _ = OPS[name]
    with pytest.raises(ValueError, match=r"x \[3, 4\] and y \[3, 2, 5\]"):
        op(torch.zeros(3, 4), torch.zeros(3, 2, 5), 0.5)


@pytest.mark.parametrize("name", OPS)
def test_empty_batch_returns_empty(name):
    op, _ = OPS[name]
    out = op(torch.zeros(0, 4), torch.zeros(0, 3, 4), 0.5, backend=CPU_FUSED)
    assert out.shape == (0,)


@pytest.mark.parametrize("name", OPS)
def test_celeba_sized_row(name):
    op, ref = OPS[name]
    x = make((1, 3, 256, 256), torch.float32)
    y = make((1, 2, 3, 256, 256), torch.float32, requires_grad=True)
    out = op(x, y, 0.5, 1e-3, backend=CPU_FUSED)
    (gy,) = torch.autograd.grad(out.sum(), y)
    yd = y.detach().double().requires_grad_()
    exp = ref(x.double().flatten(1), yd.flatten(2), 0.5, 1e-3)
    (ey,) = torch.autograd.grad(exp.sum(), yd)
    torch.testing.assert_close(out.double(), exp, rtol=1e-5, atol=0)
    torch.testing.assert_close(gy.double(), ey, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("gamma", [-0.5, -1e-12, float("nan"), float("-inf")])
def test_negative_or_nonfinite_gamma_rejected_identically_on_every_backend(name, gamma):
    op, _ = OPS[name]
    x, y = torch.zeros(3, 4), torch.zeros(3, 2, 4)
    messages = set()
    for backend in ["auto", *fastot.available("cpu")]:
        with pytest.raises(ValueError, match=f"{name}: gamma must be") as err:
            op(x, y, gamma, backend=backend)
        messages.add(str(err.value))
    assert len(messages) == 1, messages
    assert "cpp" in fastot.available("cpu")


@pytest.mark.parametrize("name", OPS)
def test_gamma_zero_is_accepted(name):
    op, ref = OPS[name]
    x, y = make((3, 4), torch.float64), make((3, 2, 4), torch.float64)
    torch.testing.assert_close(op(x, y, 0.0, backend=CPU_FUSED), ref(x, y, 0.0, 1.0))
