"""``python -m fastot.demo``: one UOTM potential/map loss evaluation, fused vs eager.

A 30-second tour of the ops: it checks that the fused backend agrees with the eager
reference on a CelebA-HQ-sized batch and prints the time of each.
"""

from __future__ import annotations

import time

import torch

import fastot
from fastot.ops import available


def _uotm_losses(x, y_hat, v_fake, v_real, backend: str):
    cost = fastot.quadratic_cost(x, y_hat, 1e-5, backend=backend)
    potential = fastot.semi_dual_loss(cost, v_fake, v_real, "kl", "kl", backend=backend)
    transport = (cost - v_fake).mean()
    return potential, transport


def main() -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 3, 256, 256)
    y_hat = torch.randn(8, 3, 256, 256, requires_grad=True)
    v_fake, v_real = torch.randn(8, requires_grad=True), torch.randn(8)
    results = {}
    for backend in available("cpu"):
        if backend == "triton":  # the interpreter is for tests, not for timing
            continue
        start = time.perf_counter()
        for _ in range(5):
            potential, transport = _uotm_losses(x, y_hat, v_fake, v_real, backend)
            grads = torch.autograd.grad(potential + transport, (y_hat, v_fake))
        elapsed = (time.perf_counter() - start) / 5
        results[backend] = (potential.item(), transport.item(), grads[0])
        print(
            f"{backend:6s} potential loss {potential.item():.6f}  map loss {transport.item():.6f}  "
            f"forward+backward {1e3 * elapsed:.1f} ms"
        )
    if "cpp" in results:
        diff = (results["cpp"][2] - results["eager"][2]).abs().max().item()
        print(f"max |grad_cpp - grad_eager| = {diff:.2e}")


if __name__ == "__main__":
    main()
