"""Closed forms between N(0, I) and a Gaussian target N(b, Sigma) at any dimension.

- Balanced OT (OTM): the map T*(x) = b + Sigma^(1/2) x.
- JKO of KL(. | N(b, Sigma)) with step h (S-JKO): I commutes with Sigma, so every iterate is a
  Gaussian diagonal in Sigma's eigenbasis (eigenvalues lam, a = 1 / lam). Per eigen-direction the
  step minimises (a/2) (mu - b)^2 + (mu - mu_k)^2 / (2h) and (a/2) s^2 - log s + (s - s_k)^2 / (2h):
      mu_{k+1} = (mu_k + h a b) / (1 + h a),
      s_{k+1}  = (s_k / h + sqrt(s_k^2 / h^2 + 4 (a + 1/h))) / (2 (a + 1/h)).
  The maps between these commuting Gaussians compose, so K steps are the map x -> mu_K + s_K x (in
  the eigenbasis). The continuous OU flow at t = K h (the limit h -> 0) is mu_t = b (1 - e^{-a t}),
  s_t^2 = lam + e^{-2 a t} (1 - lam).
- Bures-Wasserstein: W2^2 between N(m1, S1) and N(m2, S2) is
  |m1 - m2|^2 + tr(S1 + S2 - 2 (S2^(1/2) S1 S2^(1/2))^(1/2)).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def sqrtm_psd(a: Tensor) -> Tensor:
    """The symmetric square root of a symmetric positive semi-definite matrix."""
    w, q = torch.linalg.eigh((a + a.T) / 2)
    return (q * w.clamp_min(0).sqrt()) @ q.T


def bures_wasserstein2(m1: Tensor, s1: Tensor, m2: Tensor, s2: Tensor) -> float:
    """W2^2 between N(m1, s1) and N(m2, s2) (float64)."""
    m1, s1, m2, s2 = (t.double() for t in (m1, s1, m2, s2))
    r2 = sqrtm_psd(s2)
    cross = sqrtm_psd(r2 @ s1 @ r2)
    return float(((m1 - m2) ** 2).sum() + torch.trace(s1 + s2 - 2 * cross))


def moments(x: Tensor) -> tuple[Tensor, Tensor]:
    """Mean [d] and covariance [d, d] of samples [n, d] (float64)."""
    x = x.double()
    return x.mean(0), torch.cov(x.T)


def jko_gaussian(b: Tensor, cov: Tensor, h: float, steps: int) -> tuple[Tensor, Tensor, Tensor]:
    """After ``steps`` JKO steps of KL(. | N(b, cov)) from N(0, I): the iterate's mean, covariance,
    and the map's matrix M (the iterate is the law of mean + M x, x ~ N(0, I))."""
    if h <= 0 or steps < 0:
        raise ValueError(f"h must be > 0 and steps >= 0, got h={h}, steps={steps}")
    lam, q = torch.linalg.eigh(cov.double())
    a = 1.0 / lam
    bb = q.T @ b.double()
    mu = torch.zeros_like(bb)
    s = torch.ones_like(bb)
    for _ in range(steps):
        mu = (mu + h * a * bb) / (1 + h * a)
        s = (s / h + torch.sqrt(s**2 / h**2 + 4 * (a + 1 / h))) / (2 * (a + 1 / h))
    m = (q * s) @ q.T
    return q @ mu, m @ m.T, m


def ou_flow(b: Tensor, cov: Tensor, t: float) -> tuple[Tensor, Tensor]:
    """The continuous gradient flow of KL(. | N(b, cov)) from N(0, I) at time t."""
    lam, q = torch.linalg.eigh(cov.double())
    e = torch.exp(-t / lam)
    mu = (q.T @ b.double()) * (1 - e)
    var = lam + e**2 * (1 - lam)
    return q @ mu, (q * var) @ q.T


@dataclass
class GaussianProblem:
    """A run's closed form: the target, the exact law and map the run should reach, and the OU flow."""

    image_shape: tuple[int, int]
    target_mean: Tensor
    target_cov: Tensor
    exact_mean: Tensor
    exact_cov: Tensor
    exact_matrix: Tensor  # the exact map is x -> exact_mean + exact_matrix @ x
    flow_mean: Tensor | None = None
    flow_cov: Tensor | None = None

    @property
    def dim(self) -> int:
        return int(self.target_mean.numel())

    def exact_map(self, x: Tensor) -> Tensor:
        """The exact map of source samples ``x`` (any shape [n, ...]) as float64 [n, d]."""
        return self.exact_mean + x.reshape(len(x), -1).double() @ self.exact_matrix.T


def problem_of(cfg) -> GaussianProblem:
    """The closed form of a run config whose target is ``gaussian_digits`` (OTM: the OT map; S-JKO:
    the JKO iterate after its phases, plus the OU flow at t = K h). Other algorithms have none here."""
    from fastot.algorithms import SJKO, WeakNOT, build_algorithm
    from fastot.data.registry import build_sampler

    target = build_sampler(dict(cfg.data.target), "data.target")
    b, cov = target.mean, target.cov
    shape = tuple(target.shape[1:])
    algo = build_algorithm(dict(cfg.algorithm))
    if isinstance(algo, SJKO):
        if algo.cost_mean:
            raise ValueError(
                "algorithm.cost_mean: the closed form needs h to be the JKO step (cost_mean: false)"
            )
        k, h = int(algo.num_phases), float(algo.h)
        mean, jcov, m = jko_gaussian(b, cov, h, k)
        fmean, fcov = ou_flow(b, cov, k * h)
        return GaussianProblem(shape, b, cov, mean, jcov, m, fmean, fcov)
    balanced = (algo.psi_source, algo.psi_target) == ("identity", "identity")
    if isinstance(algo, WeakNOT) or not balanced or algo.tau <= 0:
        raise ValueError(
            f"algorithm: the Gaussian closed form covers balanced OT with a cost (OTM) and S-JKO, "
            f"not {cfg.algorithm.name!r} with psi {algo.psi_source}/{algo.psi_target} and tau {algo.tau}"
        )
    return GaussianProblem(shape, b, cov, b, cov, sqrtm_psd(cov))
