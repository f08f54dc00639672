"""Exact optima of the toy objectives fastot trains, to check a run against the truth.

For measures mu (source) and nu (target) the semi-dual UOTM objective

    min_v  sum_i a_i Psi1*(-v^c(x_i)) + sum_j b_j Psi2*(-v(y_j)),   v^c(x) = min_j c(x, y_j) - v(y_j)

(identity Psi* gives balanced OT) is concave in -v, so its optimum can be computed to any accuracy on
discrete measures: a fine quadrature grid in 1-D, a large sample in 2-D. ``solve_semi_dual`` smooths the
c-transform with a log-sum-exp at temperature eps (annealed towards 0) and minimises with L-BFGS in
float64, using fastot's own Psi* reference, so every kind and alpha the trainer accepts is covered.
The optimal map is the barycentric projection of the plan, and the generated distribution is T#mu:
the SOURCE pushed through T, which for unbalanced OT differs from the plan's target marginal pi_1.

S-JKO's phases approximate the exact JKO iterates of KL(.|nu), each a source-fixed UOT problem:
``jko_steps``.

The balanced 1-D optimum has a closed form (the monotone rearrangement F_nu^-1 o F_mu):
``quantile_map``. POT (``pip install "fastot[exact]"``) is an independent check of the KL case
(unbalanced Sinkhorn): ``sinkhorn_unbalanced_map``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fastot.ops import psi_star

__all__ = [
    "Measure",
    "Solution",
    "Toy",
    "discretize",
    "jko_steps",
    "quantile_map",
    "sinkhorn_unbalanced_map",
    "solve_semi_dual",
    "toy_objective",
]


@dataclass
class Measure:
    """Weighted points: ``points`` [n, d] and ``weights`` [n] summing to 1 (float64)."""

    points: Tensor
    weights: Tensor
    cell: float | None = None  # grid spacing when the points are a 1-D quadrature grid

    def __post_init__(self) -> None:
        self.points = torch.as_tensor(self.points, dtype=torch.float64)
        if self.points.dim() == 1:
            self.points = self.points[:, None]
        self.weights = torch.as_tensor(self.weights, dtype=torch.float64)
        if self.weights.shape != self.points.shape[:1]:
            raise ValueError(f"weights must have shape [{len(self.points)}], got {tuple(self.weights.shape)}")
        if (self.weights < 0).any():
            raise ValueError("weights must be non-negative")
        self.weights = self.weights / self.weights.sum()

    def sample(self, n: int, seed: int = 0) -> Tensor:
        """n draws; a grid's draws are spread uniformly over their cells, so that estimators built on
        nearest-neighbour distances see a continuous law rather than repeated points."""
        g = torch.Generator().manual_seed(seed)
        pts = self.points[torch.multinomial(self.weights, n, replacement=True, generator=g)]
        if self.cell is not None:
            pts = pts + self.cell * (torch.rand(pts.shape, generator=g, dtype=pts.dtype) - 0.5)
        return pts


def discretize(sampler: Any, n: int = 2000, seed: int = 0, span: float = 6.0) -> Measure:
    """A 1-D Gaussian or Gaussian mixture as a midpoint quadrature grid of ``n`` cells covering
    ``span`` standard deviations around every component; any other sampler as ``n`` samples."""
    centers = getattr(sampler, "centers", None)
    if sampler.dim == 1 and (centers is not None or hasattr(sampler, "mean")):
        if centers is not None:
            mus = centers.double().ravel()
            stds, ws = sampler.stds.double(), sampler.weights.double()
        else:
            mus, stds, ws = (
                torch.tensor([float(v)], dtype=torch.float64) for v in (sampler.mean, sampler.std, 1.0)
            )
        lo, hi = float((mus - span * stds).min()), float((mus + span * stds).max())
        edges = torch.linspace(lo, hi, n + 1, dtype=torch.float64)
        mid = 0.5 * (edges[1:] + edges[:-1])
        # Exact cell masses (CDF differences), not density * width: the tails keep their mass.
        cdf = (ws * 0.5 * (1 + torch.erf((edges[:, None] - mus) / (stds * math.sqrt(2))))).sum(1)
        return Measure(mid, (cdf[1:] - cdf[:-1]).clamp_min(0), cell=float(edges[1] - edges[0]))
    g = torch.Generator().manual_seed(seed)
    pts = sampler.sample(n, g).double()
    return Measure(pts, torch.full((n,), 1.0 / n, dtype=torch.float64))


@dataclass
class Solution:
    """The optimum of one semi-dual problem on discrete measures.

    ``transported`` [n, d] is T(x_i) (barycentric projection of the plan) for the source points;
    ``source_density`` = dpi_0/dmu at x_i and ``target_density`` = dpi_1/dnu at y_j; ``mismatch`` is the
    total-variation gap between the plan's target marginal computed from the source side and from the
    target side (0 at the exact optimum; a convergence diagnostic).
    """

    source: Measure
    target: Measure
    potential: Tensor
    transported: Tensor
    source_density: Tensor
    target_density: Tensor
    objective: float
    mismatch: float
    eps: float

    def pushforward(self) -> Measure:
        """T#mu: the source's own weights carried to T(x_i)."""
        return Measure(self.transported, self.source.weights)

    def target_marginal(self) -> Measure:
        """pi_1 normalised: what the plan delivers, re-weighted nu (on nu's points and grid cells)."""
        return Measure(self.target.points, self.target.weights * self.target_density, self.target.cell)

    def map(self, x: Tensor) -> Tensor:
        """T at new 1-D points by linear interpolation of the solved grid (1-D only)."""
        if self.source.points.shape[1] != 1:
            raise ValueError("Solution.map interpolates 1-D solutions only")
        xs, ts = self.source.points[:, 0].numpy(), self.transported[:, 0].numpy()
        return torch.from_numpy(np.interp(np.asarray(x, dtype=np.float64).ravel(), xs, ts))


def _sq_dist(x: Tensor, y: Tensor) -> Tensor:
    return (x.square().sum(1)[:, None] + y.square().sum(1)[None, :] - 2 * x @ y.T).clamp_min(0)


def solve_semi_dual(
    mu: Measure,
    nu: Measure,
    tau: float,
    psi_source: str = "kl",
    psi_target: str = "kl",
    alpha: float = 1.0,
    eps: float | None = None,
    tol: float = 1e-9,
    max_newton: int = 100,
) -> Solution:
    """The optimum of the semi-dual (U)OT objective between ``mu`` and ``nu`` with c = tau |x - y|^2.

    The c-transform is smoothed at temperature eps (annealed by factors of 10 down to ``eps``; default
    1e-3 of the median cost), which makes the objective smooth and convex in v; each stage runs damped
    Newton steps with the exact Hessian until the plan's two target marginals (from the source side
    and from the target side) agree to ``tol`` in total variation. The map is the barycentric
    projection, accurate to O(eps) even where the plan's blur sqrt(eps / tau) is not.
    """
    if tau <= 0:
        raise ValueError(f"tau must be positive (with no cost the optimal map is not unique), got {tau}")
    if eps is not None and eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")
    cost = tau * _sq_dist(mu.points, nu.points)
    a, b = mu.weights, nu.weights
    log_b = b.clamp_min(1e-300).log()
    final_eps = float(eps) if eps is not None else 1e-3 * float(cost.median().clamp_min(1e-12))

    def parts(v: Tensor, e: float) -> tuple[Tensor, Tensor, Tensor]:
        logits = (v[None, :] - cost) / e + log_b[None, :]
        vc = -e * torch.logsumexp(logits, dim=1)  # smoothed c-transform
        value = (a * _psi(-vc, psi_source, alpha, 0)).sum() + (b * _psi(-v, psi_target, alpha, 0)).sum()
        return value, vc, torch.softmax(logits, dim=1)

    v = torch.zeros(len(b), dtype=torch.float64)
    e = max(final_eps, float(cost.max()) / 10)
    while True:
        for _ in range(max_newton):
            value, vc, plan = parts(v, e)
            g1, g2 = _psi(-vc, psi_source, alpha, 1), _psi(-v, psi_target, alpha, 1)
            delivered = (a * g1) @ plan
            grad = delivered - b * g2
            if float(grad.abs().sum()) < tol:
                break
            h1, h2 = _psi(-vc, psi_source, alpha, 2), _psi(-v, psi_target, alpha, 2)
            weighted = plan * (a * g1)[:, None]
            hess = (plan * (a * h1)[:, None]).T @ plan + (torch.diag(delivered) - weighted.T @ plan) / e
            hess += torch.diag(b * h2 + 1e-9 * float(hess.diagonal().abs().max()) + 1e-300)
            step = torch.linalg.solve(hess, grad)
            t = 1.0
            while t > 1e-8:  # backtracking: the objective is convex, so a descent step exists
                if float(parts(v - t * step, e)[0]) <= float(value) - 1e-4 * t * float(grad @ step):
                    break
                t /= 2
            v = v - t * step
        if e <= final_eps:
            break
        e = max(final_eps, e / 10)

    value, vc, plan = parts(v, e)
    src_density = _psi(-vc, psi_source, alpha, 1)  # dpi_0/dmu
    tgt_density = _psi(-v, psi_target, alpha, 1)  # dpi_1/dnu
    mismatch = float(((a * src_density) @ plan - b * tgt_density).abs().sum())
    return Solution(mu, nu, v, plan @ nu.points, src_density, tgt_density, float(value), mismatch, e)


def jko_steps(source: Measure, target: Measure, tau: float, steps: int) -> list[Measure]:
    """The exact JKO iterates of KL(.|nu) that S-JKO's phases approximate: step k solves
    min_rho KL(rho | nu) + tau W_2^2(rho_{k-1}, rho), a source-fixed UOT problem (identity / KL), and
    rho_k is its plan's target marginal (re-weighted nu), the minimiser over measures on nu's points.
    S-JKO uses tau = 1 / (2 d h)."""
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    iterates, rho = [], source
    for _ in range(steps):
        rho = solve_semi_dual(rho, target, tau, "identity", "kl").target_marginal()
        iterates.append(rho)
    return iterates


def _psi(t: Tensor, kind: str, alpha: float, order: int) -> Tensor:
    """alpha Psi*(t / alpha) (order 0) or its first or second derivative, from fastot's reference."""
    t = t.detach().requires_grad_(True)
    with torch.enable_grad():
        out = psi_star(t, kind, alpha, backend="eager")
        for _ in range(order):
            if not out.requires_grad:  # a linear Psi* (identity) has a constant derivative
                return torch.zeros_like(t).detach()
            (out,) = torch.autograd.grad(out.sum(), t, create_graph=True)
    return out.detach()


def quantile_map(mu: Measure, nu: Measure, x: Tensor) -> Tensor:
    """The balanced 1-D OT map F_nu^-1(F_mu(x)) (exact for any cost convex in x - y)."""
    if mu.points.shape[1] != 1 or nu.points.shape[1] != 1:
        raise ValueError("quantile_map is for 1-D measures")
    xs, xw = _sorted(mu)
    ys, yw = _sorted(nu)
    # Mid-point CDFs so that a quadrature grid maps cell centres to cell centres.
    fx = np.cumsum(xw) - 0.5 * xw
    fy = np.cumsum(yw) - 0.5 * yw
    u = np.interp(np.asarray(x, dtype=np.float64).ravel(), xs, fx)
    return torch.from_numpy(np.interp(u, fy, ys))


def _sorted(m: Measure) -> tuple[np.ndarray, np.ndarray]:
    p = m.points[:, 0].numpy()
    order = np.argsort(p)
    return p[order], m.weights.numpy()[order]


def sinkhorn_unbalanced_map(
    mu: Measure, nu: Measure, tau: float, reg_m: float | tuple[float, float] = 1.0, eps: float = 1e-3
) -> Tensor:
    """T(x_i) from POT's unbalanced Sinkhorn (KL marginals weighted ``reg_m``): an independent check."""
    try:
        import ot
    except ImportError as e:  # pragma: no cover - exercised only without POT
        raise ImportError('POT is needed here: pip install "fastot[exact]"') from e
    cost = (tau * _sq_dist(mu.points, nu.points)).numpy()
    a, b = mu.weights.numpy(), nu.weights.numpy()
    plan = ot.unbalanced.sinkhorn_unbalanced(
        a, b, cost, eps, reg_m, method="sinkhorn_translation_invariant", numItermax=100000, stopThr=1e-12
    )
    plan = torch.from_numpy(plan)
    return (plan @ nu.points) / plan.sum(1, keepdim=True).clamp_min(1e-300)


# ------------------------------------------------------------------------- presets
@dataclass
class Toy:
    """What the exact optimum of a toy preset's objective is, in the terms the run reports."""

    source: Measure
    target: Measure
    solution: Solution | None  # None: the optimum generates nu itself (balanced, or no cost)
    note: str
    target_sampler: Any = None  # fresh draws of nu when the optimum is nu itself

    def pushforward(self) -> Measure:
        return self.target if self.solution is None else self.solution.pushforward()

    def sample_pushforward(self, n: int, seed: int = 0) -> Tensor:
        """Draws of T#mu: in 1-D, continuous source draws through the interpolated map; otherwise the
        transported sample points themselves (without repeats while n allows)."""
        if self.solution is None:
            if self.target_sampler is not None:  # continuous draws, not repeats of a finite sample
                return self.target_sampler.sample(n, torch.Generator().manual_seed(seed)).double()
            return self.target.sample(n, seed)
        if self.source.points.shape[1] == 1:
            return self.map(self.source.sample(n, seed))[:, None]
        pf = self.solution.pushforward()
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(pf.weights), generator=g)[:n]
        return pf.points[idx]

    def map(self, x: Tensor) -> Tensor:
        """The exact 1-D map at ``x``."""
        if self.solution is not None:
            return self.solution.map(x)
        return quantile_map(self.source, self.target, x)


def toy_objective(cfg: Any, n: int = 2000, seed: int = 0) -> Toy:
    """The exact optimum of the objective a toy preset trains (``cfg`` as ``fastot.train`` resolves it).

    Balanced OT (OTM, NOT/KNOT at the end, WGAN), no-cost objectives and S-JKO (whose flow ends at nu)
    generate nu itself; UOTM and its variants get the semi-dual solved on the preset's measures.
    UOTM-SD is solved at its final alpha.
    """
    from fastot.algorithms import build_algorithm
    from fastot.data.registry import build_sampler

    source = discretize(build_sampler(dict(cfg.data.source), "data.source"), n, seed)
    target_sampler = build_sampler(dict(cfg.data.target), "data.target")
    target = discretize(target_sampler, n, seed + 1)
    algo = build_algorithm(dict(cfg.algorithm))
    note = algo.optimum_generates_target()
    if note is not None:
        return Toy(source, target, None, note, target_sampler)
    alpha = algo.alpha_max if algo.alpha_schedule != "constant" else algo.alpha
    sol = solve_semi_dual(source, target, algo.tau, algo.psi_source, algo.psi_target, alpha)
    note = f"semi-dual optimum ({algo.psi_source}/{algo.psi_target}, tau {algo.tau:g}, alpha {alpha:g})"
    return Toy(source, target, sol, note)
