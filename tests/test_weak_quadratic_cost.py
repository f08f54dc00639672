"""weak_quadratic_cost on every backend against its float64 reference."""

import pytest
import torch
from fastot_testing import CPU_FUSED, assert_close, backends, make, shifted
from weak_cost_tests import WeakCost, WeakCostTests

import fastot
from fastot.ops.weak_quadratic_cost import reference


class TestWeakQuadraticCost(WeakCostTests):
    weak = WeakCost("weak_quadratic_cost", fastot.weak_quadratic_cost, reference)


def test_gamma_zero_is_the_mean_strong_cost():
    x, y = make((3, 5), torch.float64), make((3, 4, 5), torch.float64)
    out = fastot.weak_quadratic_cost(x, y, 0.0, backend=CPU_FUSED)
    strong = torch.stack([fastot.quadratic_cost(x, y[:, z], 0.5) for z in range(4)]).mean(0)
    torch.testing.assert_close(out, strong)


@pytest.mark.parametrize("backend", backends("cuda"), indirect=True)
def test_misaligned_input(backend):
    # Contiguous rows starting one element into a buffer: the CUDA kernels take their scalar path.
    x, ys = shifted((4, 1024), backend.device), shifted((4, 3, 1024), backend.device)
    assert x.is_contiguous() and x.data_ptr() % 16 != 0
    got = torch.ops.fastot.weak_quadratic_cost(x, ys, 0.5, 1.0)
    assert_close(got, reference(x.double(), ys.double(), 0.5), torch.float32, 1e3)


# ---------------------------------------------------------------------------- the cross-op tables
# tests/test_errors.py, tests/test_registration.py and tests/test_build.py run every op through
# these (tests/test_op_stems.py checks that each op's file defines them).


def error_call(x, y, ys):
    """The op on well-formed x [B, d], y [B, d], ys [B, Z, d]: what the bad-input checks vary."""
    return lambda b: fastot.weak_quadratic_cost(x, ys, 0.5, backend=b)


def compile_call(x, y, backend):
    """A scalar or vector of the op on two [B, d] leaves, for torch.compile(fullgraph=True)."""
    return fastot.weak_quadratic_cost(x, torch.stack([y, 2 * y], 1), 0.5, backend=backend)


def opcheck_cases(m, op):
    """(op, arguments) pairs for torch.library.opcheck; ``m(*shape)`` makes an input."""
    # The backward has no double backward: checked without gradients.
    g, x, y = m(3, grad=False), m(3, 5, grad=False), m(3, 4, 5, grad=False)
    return [
        (op("weak_quadratic_cost"), (m(3, 5), m(3, 4, 5), 0.5, 0.3)),
        (op("_weak_quadratic_cost_backward"), (g, x, y, 0.5, 0.3)),
    ]


def triton_cuda_jobs(k):
    """(kernel, constexprs, pointers accumulating in float32 / float64) for every kernel of the op's
    Triton module ``k``: tests/test_build.py compiles each for a CUDA target."""
    return [
        (k._weak_quadratic_cost_fwd_kernel, {"DIRECT": True, "BLOCK_D": 1024}, ()),
        (k._weak_quadratic_cost_bwd_kernel, {"BLOCK_D": 1024}, ()),
    ]
