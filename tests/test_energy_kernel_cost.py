"""energy_kernel_cost on every backend against its float64 reference."""

import pytest
import torch
from fastot_testing import CPU_FUSED, DTYPES, FUSED, assert_close, backends, make, shifted
from weak_cost_tests import WeakCost, WeakCostTests

import fastot
from fastot.ops.energy_kernel_cost import reference


class TestEnergyKernelCost(WeakCostTests):
    weak = WeakCost("energy_kernel_cost", fastot.energy_kernel_cost, reference)


def test_accurate_for_nearby_samples_at_image_size():
    # Samples 1e-3 apart in d = 3*64*64: the float32 Gram expansion would lose about three
    # digits here; distances accumulated from differences in double keep the gradient to 1e-6.
    x = make((2, 3 * 64 * 64), torch.float32)
    base = make((2, 1, 3 * 64 * 64), torch.float32)
    y = (base + 1e-3 * make((2, 4, 3 * 64 * 64), torch.float32)).requires_grad_()
    out = fastot.energy_kernel_cost(x, y, 1.0, backend=CPU_FUSED)
    (gy,) = torch.autograd.grad(out.sum(), y)
    yd = y.detach().double().requires_grad_()
    exp = reference(x.double(), yd, 1.0)
    (ey,) = torch.autograd.grad(exp.sum(), yd)
    torch.testing.assert_close(out.double(), exp, rtol=1e-6, atol=0)
    rel = (gy.double() - ey).norm() / ey.norm()
    assert rel <= 1e-6, rel


def test_gradient_is_zero_at_coincident_points(backend):
    x = torch.zeros(1, 3, dtype=torch.float64, device=backend.device)
    y = torch.zeros(1, 2, 3, dtype=torch.float64, device=backend.device, requires_grad=True)
    (gy,) = torch.autograd.grad(fastot.energy_kernel_cost(x, y, 1.0, backend=backend.name).sum(), y)
    assert torch.equal(gy, torch.zeros_like(gy))


def test_zero_distances_among_others(backend):
    # Coinciding points: the gradient of a norm at 0 is 0 (never NaN), as in the reference.
    x, y = make((2, 6), torch.float64), make((2, 4, 6), torch.float64)
    y[:, 1] = y[:, 0]
    y[:, 2] = x
    x, y = backend.to(x).requires_grad_(), backend.to(y).requires_grad_()
    out = fastot.energy_kernel_cost(x, y, 0.8, 1.0, backend=backend.name)
    xd, yd = (t.detach().cpu().double().requires_grad_() for t in (x, y))
    exp = reference(xd, yd, 0.8, 1.0)
    assert_close(out.cpu(), exp, torch.float64)
    ones = torch.ones(2, dtype=torch.float64)
    got = torch.autograd.grad(out, (x, y), backend.to(ones))
    want = torch.autograd.grad(exp, (xd, yd), ones)
    for a, e in zip(got, want, strict=True):
        assert not a.isnan().any()
        assert_close(a.cpu(), e, torch.float64, scale=max(1e-3, e.abs().max().item()))


@pytest.mark.parametrize("backend", backends(*FUSED), indirect=True)
@pytest.mark.parametrize("dtype", DTYPES)
def test_saved_norms(backend, dtype):
    # ||x - y_z|| first, then ||y_i - y_j|| for i < j in row-major order, in float32 (float64 for float64).
    x, y = backend.to(make((3, 5), dtype)), backend.to(make((3, 4, 5), dtype))
    cost, norms = backend.op("energy_kernel_cost")(x, y, 0.5, 1.0)
    assert cost.dtype == dtype and norms.shape == (3, 4 + 6)
    assert norms.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    xd, yd = x.cpu().double(), y.cpu().double()
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    exp = torch.cat(
        [
            (xd[:, None] - yd).norm(dim=-1),
            torch.stack([(yd[:, i] - yd[:, j]).norm(dim=-1) for i, j in pairs], 1),
        ],
        dim=1,
    )
    assert_close(norms.cpu(), exp, dtype, scale=exp.abs().max().item())
    _, empty = backend.op("energy_kernel_cost")(x[:0], y[:0], 0.5, 1.0)
    assert empty.shape == (0, 10)


@pytest.mark.parametrize("backend", backends("cuda"), indirect=True)
def test_misaligned_input(backend):
    # Contiguous rows starting one element into a buffer: the CUDA kernels take their scalar path.
    x, ys = shifted((4, 1024), backend.device), shifted((4, 3, 1024), backend.device)
    assert x.is_contiguous() and x.data_ptr() % 16 != 0
    got = torch.ops.fastot.energy_kernel_cost(x, ys, 0.5, 1.0)[0]
    assert_close(got, reference(x.double(), ys.double(), 0.5), torch.float32, 10)


# ---------------------------------------------------------------------------- the cross-op tables
# tests/test_errors.py, tests/test_registration.py and tests/test_build.py run every op through
# these (tests/test_op_stems.py checks that each op's file defines them).


def error_call(x, y, ys):
    """The op on well-formed x [B, d], y [B, d], ys [B, Z, d]: what the bad-input checks vary."""
    return lambda b: fastot.energy_kernel_cost(x, ys, 0.5, backend=b)


def compile_call(x, y, backend):
    """A scalar or vector of the op on two [B, d] leaves, for torch.compile(fullgraph=True)."""
    return fastot.energy_kernel_cost(x, torch.stack([y, 2 * y], 1), 0.5, backend=backend)


def opcheck_cases(m, op):
    """(op, arguments) pairs for torch.library.opcheck; ``m(*shape)`` makes an input."""
    # The backward has no double backward: checked without gradients.
    g, x, y = m(3, grad=False), m(3, 5, grad=False), m(3, 4, 5, grad=False)
    _, norms = op("energy_kernel_cost")(x, y, 0.5, 0.3)
    return [
        (op("energy_kernel_cost"), (m(3, 5), m(3, 4, 5), 0.5, 0.3)),
        (op("_energy_kernel_cost_backward"), (g, x, y, norms, 0.5, 0.3)),
    ]


def triton_cuda_jobs(k):
    """(kernel, constexprs, pointers accumulating in float32 / float64) for every kernel of the op's
    Triton module ``k``: tests/test_build.py compiles each for a CUDA target."""
    return [
        (k._energy_sq_dist_kernel, {"BLOCK_D": 1024}, ("part_ptr",)),
        (k._energy_finish_kernel, {"BLOCK_K": 64, "BLOCK_N": 16}, ("part_ptr", "norms_ptr")),
        (k._energy_bwd_kernel, {"BLOCK_D": 1024}, ("norms_ptr",)),
    ]
