"""Ornstein-Uhlenbeck gradient flow with a closed-form Gaussian solution.

The Wasserstein gradient flow of F(rho) = KL(rho | nu), nu = N(b, A^-1), is the Fokker-Planck
equation of dX = -A (X - b) dt + sqrt(2) dW (the OU setting of S-JKO Sec. 5 / Tables 6-7). Started
at rho_0 = N(m0, S0), rho_t = N(m_t, S_t) with E = exp(-A t):
    m_t = b + E (m0 - b),    S_t = E S0 E + A^-1 (I - E^2)     (A symmetric, so E and A commute).
A (eigenvalues in [0.5, 2], random rotation) and b ~ N(0, I) are drawn from ``seed``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fastot.data.registry import register_sampler
from fastot.data.toy import Sampler


def ou_parameters(dim: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """The drift matrix A [d, d] (symmetric positive definite) and centre b [d], in float64."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
    eig = 0.5 + 1.5 * torch.rand(dim, generator=g, dtype=torch.float64)
    a = q @ torch.diag(eig) @ q.T
    b = torch.randn(dim, generator=g, dtype=torch.float64)
    return (a + a.T) / 2, b


def ou_solution(dim: int, t: float, seed: int = 0, m0: Tensor | None = None, s0: Tensor | None = None):
    """Mean and covariance of rho_t (float64), from rho_0 = N(0, I) unless given."""
    a, b = ou_parameters(dim, seed)
    m0 = torch.zeros(dim, dtype=torch.float64) if m0 is None else m0.double()
    s0 = torch.eye(dim, dtype=torch.float64) if s0 is None else s0.double()
    e = torch.linalg.matrix_exp(-a * t)
    mean = b + e @ (m0 - b)
    cov = e @ s0 @ e + torch.linalg.solve(a, torch.eye(dim, dtype=torch.float64) - e @ e)
    return mean, (cov + cov.T) / 2


class OUTarget(Sampler):
    """Samples of the stationary law nu = N(b, A^-1) (the potential's data)."""

    def __init__(self, dim: int = 2, seed: int = 0) -> None:
        self.dim, self.seed = dim, seed
        a, b = ou_parameters(dim, seed)
        self.mean = b
        self.chol = torch.linalg.cholesky(torch.linalg.inv(a))

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        eps = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return (self.mean + eps @ self.chol.T).float()


register_sampler("ou_target")(OUTarget)
