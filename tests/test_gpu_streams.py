"""On a GPU: every op on a side stream, and a whole forward+backward captured in a CUDA graph.

Kernels must launch on the caller's current stream (a side stream's work would otherwise race
the default stream's) and do nothing a graph cannot capture (a host sync, a fresh autotuning
run). Both tests run every fused op forward and backward and compare with a plain run.
"""

import pytest
import torch
from fastot_testing import backends

import fastot

GPU = pytest.mark.parametrize("backend", backends("cuda", "triton-compiled"), indirect=True)


def _inputs(backend, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)

    def leaf(*shape: int, positive: bool = False) -> torch.Tensor:
        t = torch.randn(*shape, generator=g)
        return backend.to(t.abs() if positive else t).requires_grad_()

    b, z = 4, 3
    # x, y, the Z samples per x, costs, potential at generated samples and at data
    return [leaf(b, 3, 8, 8), leaf(b, 3, 8, 8), leaf(b, z, 3, 8, 8), leaf(b, positive=True), leaf(b), leaf(5)]


def _step(inputs: list[torch.Tensor], backend: str) -> list[torch.Tensor]:
    """Every op forward, one scalar, and its gradient for every input: [loss, *grads]."""
    x, y, ys, cost, v_fake, v_real = inputs
    loss = (
        fastot.quadratic_cost(x, y, 0.3, backend=backend).sum()
        + fastot.psi_star(v_fake, "softplus", 0.7, backend=backend).sum()
        + fastot.semi_dual_loss(cost, v_fake, v_real, "kl", "chi2", backend=backend)
        + fastot.r1_penalty(x, 0.2, backend=backend)
        + fastot.weak_quadratic_cost(x, ys, 0.5, 0.3, backend=backend).sum()
        + fastot.energy_kernel_cost(x, ys, 0.5, 0.3, backend=backend).sum()
    )
    return [loss, *torch.autograd.grad(loss, inputs)]


def _same(got: list[torch.Tensor], want: list[torch.Tensor]) -> None:
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


@GPU
def test_a_side_stream_gives_the_default_streams_result(backend):
    inputs = _inputs(backend)
    want = _step(inputs, backend.name)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        got = _step(inputs, backend.name)
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    _same(got, want)


@GPU
def test_forward_and_backward_replay_from_a_cuda_graph(backend):
    static = _inputs(backend)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up off the capture: autotuning, allocator pools
        for _ in range(3):
            _step(static, backend.name)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = _step(static, backend.name)
    fresh = _inputs(backend, seed=1)
    with torch.no_grad():
        for s, f in zip(static, fresh, strict=True):
            s.copy_(f)
    graph.replay()
    torch.cuda.synchronize()
    _same(captured, _step(fresh, backend.name))
