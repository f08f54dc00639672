"""Tests every weak cost (a cost of x [B, ...] and Z samples y [B, Z, ...]) passes.

``test_weak_quadratic_cost.py`` and ``test_energy_kernel_cost.py`` subclass :class:`WeakCostTests`
with their op as ``weak``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from fastot_testing import CPU_FUSED, DTYPES, FUSED, backends, check, make, skip_gpu_sized

import fastot


@dataclass(frozen=True)
class WeakCost:
    name: str
    op: Callable[..., torch.Tensor]
    reference: Callable[..., torch.Tensor]


# (B, Z, feature dims...): odd d, d = 1; Z <= 8 takes the CPU column kernels (compiled per Z),
# Z = 9 the tiled loops; Z = 12 gives K = 78 energy norms per row, more than one Triton block
# of them; Z = 2 at d = 12288 leaves few programs, so d is split; and 16 images of 3 x 256 x 256.
SHAPES = [
    (1, 2, 1),
    (3, 2, 7),
    (3, 4, 7),
    (2, 3, 33),
    (3, 3, 33),
    (3, 5, 33),
    (2, 4, 3, 5),
    (2, 12, 5),
    (2, 9, 300),
    (2, 5, 1000),
    (2, 8, 1000),
    (2, 5, 1001),
    (3, 3, 4096),
    (1, 2, 3, 64, 64),
    (16, 2, 3 * 256 * 256),
]
# What the Triton interpreter runs (it takes seconds per case): each kernel path once, views
# non-contiguous wherever a feature dim can be strided.
INTERPRETED = [(1, 2, 1), (3, 4, 7), (2, 3, 33), (2, 12, 5), (2, 5, 1000), (1, 2, 3, 64, 64)]


def _small(backend):
    x = backend.to(make((2, 3), torch.float64)).requires_grad_()
    return x, backend.to(make((2, 3, 3), torch.float64)).requires_grad_()


class WeakCostTests:
    """The tests; a subclass named ``Test...`` sets ``weak``, the op under test."""

    weak: WeakCost

    @pytest.mark.parametrize("shape", SHAPES)
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("contiguous", [True, False])
    def test_forward_backward_match_reference(self, backend, shape, dtype, contiguous):
        b, z, *feat = shape
        d = math.prod(feat)
        if dtype == torch.float16 and d > 10**5:
            pytest.skip("a cost of this many features overflows float16")
        skip_gpu_sized(backend, b * z * d)
        interpreted = backend.device == "cpu" and backend.name == "triton"
        if interpreted and (shape not in INTERPRETED or contiguous != (d == 1)):
            pytest.skip("outside the Triton interpreter's grid")
        x = backend.leaf((b, *feat), dtype, contiguous)
        y = backend.leaf((b, z, *feat), dtype, contiguous)
        out = self.weak.op(x, y, 0.6, 0.3, backend=backend.name)
        xd, yd = (t.detach().cpu().double().requires_grad_() for t in (x, y))
        exp = self.weak.reference(xd.flatten(1), yd.flatten(2), 0.6, 0.3)
        check(out, exp, dtype, floor=1.0)
        g = torch.randn(b, dtype=torch.float64)
        gx, gy = torch.autograd.grad(out, (x, y), backend.to(g.to(dtype)))
        ex, ey = torch.autograd.grad(exp, (xd, yd), g)
        # A sample's gradient is the difference of its transport and spread terms (each ~1e-1 here).
        check(gx, ex, dtype, floor=1e-2)
        check(gy, ey, dtype, floor=1e-2)

    @pytest.mark.parametrize("z", range(2, 11))
    def test_every_sample_count(self, z):
        # Z <= 8 runs the CPU column kernels compiled per Z, larger Z the tiled loops.
        x = make((3, 37), torch.float64, True, requires_grad=True)
        y = make((3, z, 37), torch.float64, True, requires_grad=True)
        g = torch.randn(3, dtype=torch.float64)
        out, exp = self.weak.op(x, y, 0.7, 1.3, backend=CPU_FUSED), self.weak.reference(x, y, 0.7, 1.3)
        torch.testing.assert_close(out, exp, rtol=1e-10, atol=1e-12)
        got, want = torch.autograd.grad(out, (x, y), g), torch.autograd.grad(exp, (x, y), g)
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)

    @pytest.mark.parametrize("backend", backends("eager", "cpp", "cuda", "triton-compiled"), indirect=True)
    def test_gradcheck(self, backend):
        def f(a, b):
            return self.weak.op(a, b, 0.5, 0.7, backend=backend.name)

        assert torch.autograd.gradcheck(f, _small(backend))

    @pytest.mark.parametrize("backend", backends(*FUSED), indirect=True)
    def test_double_backward_raises(self, backend):
        x, y = _small(backend)
        out = self.weak.op(x, y, 0.5, 0.7, backend=backend.name)
        (gy,) = torch.autograd.grad(out.sum(), y, create_graph=True)
        message = f"double backward of fastot::_{self.weak.name}_backward is not supported"
        with pytest.raises(RuntimeError, match=message):
            gy.sum().backward()

    def test_z_below_two_rejected(self):
        with pytest.raises(ValueError, match="Z >= 2"):
            self.weak.op(torch.zeros(3, 4), torch.zeros(3, 1, 4), 0.5)

    def test_mismatched_feature_shapes_rejected(self):
        with pytest.raises(ValueError, match=r"x \[3, 4\] and y \[3, 2, 5\]"):
            self.weak.op(torch.zeros(3, 4), torch.zeros(3, 2, 5), 0.5)

    def test_empty_batch(self, backend):
        x = backend.leaf((0, 5), torch.float32)
        y = backend.leaf((0, 3, 5), torch.float32)
        out = self.weak.op(x, y, 0.5, backend=backend.name)
        assert out.shape == (0,)
        grads = torch.autograd.grad(out, (x, y), torch.empty(0, device=backend.device))
        assert [g.shape for g in grads] == [x.shape, y.shape]

    @pytest.mark.parametrize("backend", backends(CPU_FUSED), indirect=True)
    def test_celeba_sized_row(self, backend):
        x = make((1, 3, 256, 256), torch.float32)
        y = make((1, 2, 3, 256, 256), torch.float32, requires_grad=True)
        out = self.weak.op(x, y, 0.5, 1e-3, backend=backend.name)
        (gy,) = torch.autograd.grad(out.sum(), y)
        yd = y.detach().double().requires_grad_()
        exp = self.weak.reference(x.double().flatten(1), yd.flatten(2), 0.5, 1e-3)
        (ey,) = torch.autograd.grad(exp.sum(), yd)
        torch.testing.assert_close(out.double(), exp, rtol=1e-5, atol=0)
        torch.testing.assert_close(gy.double(), ey, rtol=1e-5, atol=1e-9)

    @pytest.mark.parametrize("gamma", [-0.5, -1e-12, float("nan"), float("-inf")])
    def test_negative_or_nonfinite_gamma_rejected_identically_on_every_backend(self, gamma):
        x, y = torch.zeros(3, 4), torch.zeros(3, 2, 4)
        messages = set()
        for backend in ["auto", *fastot.available("cpu")]:
            with pytest.raises(ValueError, match=f"{self.weak.name}: gamma must be") as err:
                self.weak.op(x, y, gamma, backend=backend)
            messages.add(str(err.value))
        assert len(messages) == 1, messages
        assert "cpp" in fastot.available("cpu")

    def test_gamma_zero_is_accepted(self, backend):
        x, y = make((3, 4), torch.float64), make((3, 2, 4), torch.float64)
        out = self.weak.op(backend.to(x), backend.to(y), 0.0, backend=backend.name)
        torch.testing.assert_close(out.cpu(), self.weak.reference(x, y, 0.0, 1.0))
