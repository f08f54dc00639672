"""r1_penalty and r1_regularizer on every backend against their float64 reference."""

import math

import pytest
import torch
from fastot_testing import DTYPES, GPU, assert_close, backends, check, make, shifted, skip_gpu_sized

import fastot
from fastot.ops.r1_penalty import reference

# Feature dims of any rank; d = 1 and B = 1; rows long enough to be split across Triton programs
# and CUDA blocks (16 images of 3 x 256 x 256).
SHAPES = [
    (1, 1),
    (6, 1),
    (1, 9),
    (3, 7),
    (2, 33),
    (5, 33),
    (4, 3, 5, 7),
    (4, 1000),
    (4, 1001),
    (3, 4096),
    (1, 3 * 64 * 64),
    (2, 3, 64, 64),
    (1, 3, 256, 256),
    (16, 3 * 256 * 256),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("contiguous", [True, False])
def test_forward_backward_match_reference(backend, shape, dtype, contiguous):
    skip_gpu_sized(backend, math.prod(shape))
    g = backend.leaf(shape, dtype, contiguous)
    out = fastot.r1_penalty(g, 0.2, backend=backend.name)
    gd = g.detach().cpu().double().requires_grad_()
    exp = reference(gd.flatten(1), 0.2)
    check(out, exp, dtype)
    w = torch.randn((), dtype=torch.float64)
    (got,) = torch.autograd.grad(out, g, backend.to(w.to(dtype)))
    (want,) = torch.autograd.grad(exp, gd, w)
    check(got, want, dtype, floor=1e-3)


def test_gradcheck_and_gradgradcheck(backend):
    g = backend.to(make((3, 2, 2), torch.float64)).requires_grad_()

    def f(a):
        return fastot.r1_penalty(a, 0.5, backend=backend.name)

    assert torch.autograd.gradcheck(f, (g,))
    assert torch.autograd.gradgradcheck(f, (g,))


def _mlp(activation: type[torch.nn.Module] = torch.nn.SiLU) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(3, 8), activation(), torch.nn.Linear(8, 1)).double()


@pytest.mark.parametrize("activation", [torch.nn.SiLU, torch.nn.Tanh])
def test_r1_regularizer_trains_the_potential_through_double_backward(backend, activation):
    # The parameter gradient of R1 needs d/dtheta of grad_x v: it must equal eager's.
    torch.manual_seed(1)
    net = _mlp(activation).to(backend.device)
    real = backend.to(make((5, 3), torch.float64))
    names, params = zip(*net.named_parameters(), strict=True)
    fused = fastot.r1_regularizer(net, real, 0.3, backend=backend.name)
    g_fused = torch.autograd.grad(fused, params, allow_unused=True)
    eager = fastot.r1_regularizer(net, real, 0.3, backend="eager")
    g_eager = torch.autograd.grad(eager, params, allow_unused=True)
    torch.testing.assert_close(fused, eager)
    # The output bias does not change grad_x v: it gets no R1 gradient on either backend.
    assert names[-1] == "2.bias" and g_fused[-1] is None and g_eager[-1] is None
    for a, b in zip(g_fused[:-1], g_eager[:-1], strict=True):
        torch.testing.assert_close(a, b)
        assert a.abs().sum() > 0


def test_gradgradcheck_through_an_mlp_potential(backend):
    torch.manual_seed(2)
    net = _mlp().to(backend.device)
    real = backend.to(make((4, 3), torch.float64)).requires_grad_()

    def f(x):
        (grad,) = torch.autograd.grad(net(x).sum(), x, create_graph=True)
        return fastot.r1_penalty(grad, 0.7, backend=backend.name)

    assert torch.autograd.gradcheck(f, (real,))
    assert torch.autograd.gradgradcheck(f, (real,))


@pytest.mark.parametrize("backend", backends("cpp"), indirect=True)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("first_grad_out", [1.0, 2.5])
def test_one_pass_cpu_path_gives_the_two_pass_numbers(backend, dtype, first_grad_out):
    # A CPU forward on a gradient that requires grad also writes the gradient for grad_out = 1, and
    # the backward hands it over (rewritten for another grad_out; a second backward through the
    # retained graph recomputes it): every result must be the separate ops' numbers, bit for bit.
    g = make((5, 3, 33, 7), dtype).requires_grad_()
    ops = torch.ops.fastot
    value = fastot.r1_penalty(g, 0.3, backend="cpp")
    assert type(value.grad_fn).__name__ == "_ValueAndGradBackward"
    assert torch.equal(value, ops.r1_penalty(g.detach().flatten(1), 0.3))
    for go in (first_grad_out, 3.0 - first_grad_out, 1.0):
        (got,) = torch.autograd.grad(value, g, torch.tensor(go, dtype=dtype), retain_graph=True)
        want = ops._r1_penalty_backward(torch.tensor(go), g.detach().flatten(1), 0.3)
        assert torch.equal(got, want.view_as(g)), go


def test_one_pass_cpu_helpers_reject_a_mismatched_gradient_buffer():
    grad = torch.ones(3, 4)
    with pytest.raises(ValueError, match="d_grad must be a contiguous tensor shaped and typed like grad"):
        torch.ops.fastot._r1_penalty_grad_for_(torch.ones(3, 5), torch.tensor(2.0), grad, 0.1)


def test_negative_weight_rejected():
    with pytest.raises(ValueError, match="weight must be >= 0"):
        fastot.r1_penalty(torch.ones(2, 3), -1.0)


@pytest.mark.parametrize("backend", backends(*GPU, "triton-interpreted", "cpp"), indirect=True)
def test_backward_op_of_an_empty_batch(backend):
    x = torch.empty(0, 5, device=backend.device)
    assert backend.op("_r1_penalty_backward")(torch.ones((), device=backend.device), x, 1.0).shape == (0, 5)


@pytest.mark.parametrize("backend", backends("cuda"), indirect=True)
def test_misaligned_input(backend):
    # Starting one element into a buffer: the CUDA kernel takes its scalar path.
    x = shifted((4, 1024), backend.device)
    assert x.is_contiguous() and x.data_ptr() % 16 != 0
    assert_close(torch.ops.fastot.r1_penalty(x, 0.5), reference(x.double(), 0.5), torch.float32, 1e3)


@pytest.mark.parametrize("backend", backends("cuda"), indirect=True)
def test_backward_reads_a_host_grad_out_on_the_host(backend):
    # A host scalar grad_out is read on the host; a device one by the kernel: same result.
    grad = backend.leaf((5, 300), torch.float32).detach()
    on_host = torch.ops.fastot._r1_penalty_backward(torch.tensor(1.5), grad, 0.4)
    on_device = torch.ops.fastot._r1_penalty_backward(torch.tensor(1.5, device=backend.device), grad, 0.4)
    torch.testing.assert_close(on_host, on_device)
    torch.testing.assert_close(on_host, 0.4 / 5 * 1.5 * grad)


# ---------------------------------------------------------------------------- the cross-op tables
# tests/test_errors.py, tests/test_registration.py and tests/test_build.py run every op through
# these (tests/test_op_stems.py checks that each op's file defines them).


def error_call(x, y, ys):
    """The op on well-formed x [B, d], y [B, d], ys [B, Z, d]: what the bad-input checks vary."""
    return lambda b: fastot.r1_penalty(x, 1.0, backend=b)


def compile_call(x, y, backend):
    """A scalar or vector of the op on two [B, d] leaves, for torch.compile(fullgraph=True)."""
    return fastot.r1_penalty(x - y, 0.2, backend=backend)


def opcheck_cases(m, op):
    """(op, arguments) pairs for torch.library.opcheck; ``m(*shape)`` makes an input."""
    return [(op("r1_penalty"), (m(4, 6), 0.2)), (op("_r1_penalty_backward"), (m(), m(4, 6), 0.2))]


def triton_cuda_jobs(k):
    """(kernel, constexprs, pointers accumulating in float32 / float64) for every kernel of the op's
    Triton module ``k``: tests/test_build.py compiles each for a CUDA target."""
    return [
        (k._r1_penalty_fwd_kernel, {"DIRECT": False, "BLOCK_D": 1024}, ("out_ptr",)),
        (k._r1_penalty_bwd_kernel, {"BLOCK_D": 1024}, ()),
    ]
