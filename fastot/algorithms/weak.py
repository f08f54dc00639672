"""NOT / KNOT: neural OT with a stochastic map T(x, z) and a gamma-weak cost.

The map sees ``n_z`` latents per x and the cost is estimated from those samples: NOT's
gamma-weak quadratic cost 1/(2Z) sum_z ||x - y_z||^2 - gamma/2 Var_hat, or KNOT's energy-kernel
cost 1/2 mean_z ||x - y_z|| - gamma/4 mean_{z != z'} ||y_z - y_z'||. The potential step is
f(T(x, z)) - f(y) (identity g1, g2, one z per x). ``k_t`` map steps run per potential step, and
gamma may ramp linearly from ``gamma_start`` over ``gamma_iterations``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor

from fastot.algorithms import _checks
from fastot.algorithms.base import MapTerms, StepContext, UnifiedOT
from fastot.errors import ConfigError
from fastot.ops import energy_kernel_cost, weak_quadratic_cost


@dataclass
class WeakNOT(UnifiedOT):
    name: ClassVar[str] = "weak"
    weak_cost: str = "weak_quadratic"
    gamma: float = 1.0
    gamma_start: float | None = None
    gamma_iterations: int = 0
    n_z: int = 4
    cost_scale: float = 1.0

    def __post_init__(self) -> None:
        _checks.choice("weak_cost", self.weak_cost, ("weak_quadratic", "energy"))
        _checks.number("gamma", self.gamma)
        _checks.number("cost_scale", self.cost_scale, positive=True)
        if not isinstance(self.n_z, int) or self.n_z < 2:
            raise ConfigError("algorithm.n_z", f"needs at least 2 latents per x, got {self.n_z!r}")
        self.cost_in_potential = False
        super().__post_init__()
        self.current_gamma = float(self.gamma)

    def begin_iteration(self, iteration: int, total: int, ctx: StepContext) -> None:
        super().begin_iteration(iteration, total, ctx)
        if self.gamma_start is None or self.gamma_iterations <= 0:
            self.current_gamma = float(self.gamma)
        else:
            t = min(iteration / self.gamma_iterations, 1.0)
            self.current_gamma = self.gamma_start + t * (self.gamma - self.gamma_start)

    @classmethod
    def smoke_overrides(cls, spec: dict[str, Any], iterations: int) -> dict[str, Any]:
        out = super().smoke_overrides(spec, iterations)
        if int(spec.get("gamma_iterations") or 0) > 0:  # the gamma ramp runs inside the smoke run
            out["gamma_iterations"] = min(int(spec["gamma_iterations"]), iterations // 2)
        return out

    def map_samples_per_input(self) -> int:
        return self.n_z

    def optimum_generates_target(self) -> str | None:
        return "balanced weak OT: T#mu = nu"

    def log_values(self) -> dict[str, float]:
        return {**super().log_values(), "gamma": self.current_gamma}

    def per_iteration_scalars(self) -> list[str]:
        ramp = self.gamma_start is not None and self.gamma_iterations > 0
        return super().per_iteration_scalars() + (["algorithm.gamma_start"] if ramp else [])

    def weak_cost_of(self, x: Tensor, y: Tensor) -> Tensor:
        """x [B, ...], y [B, Z, ...] -> [B]."""
        fn = weak_quadratic_cost if self.weak_cost == "weak_quadratic" else energy_kernel_cost
        return fn(x, y, self.current_gamma, self.cost_scale)

    def map_loss(self, ctx: StepContext, terms: MapTerms | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        x = ctx.source_batch()
        z = ctx.latent(x.shape[0] * self.n_z)
        return (terms or self.map_terms)(ctx, x, z, None)

    def map_terms(
        self, ctx: StepContext, x: Tensor, z: Tensor | None, z_ref: Tensor | None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """``n_z`` outputs T(x, z) per x (``z`` holds B * n_z latents) and their weak cost."""
        b, n = x.shape[0], self.n_z
        xr = x.unsqueeze(1).expand(b, n, *x.shape[1:]).reshape(b * n, *x.shape[1:])
        y = ctx.map(xr, z)
        cost = self.weak_cost_of(x, y.view(b, n, *y.shape[1:]))
        loss = cost.mean() - ctx.potential(y).mean()
        return loss, {"loss_T": loss.detach(), "cost": cost.detach().mean()}
