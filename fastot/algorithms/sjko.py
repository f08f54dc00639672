"""S-JKO: the JKO scheme of a Wasserstein gradient flow as a sequence of source-fixed UOT problems.

Phase 0 runs ``init_iterations`` against T_old = identity (it is source-fixed UOTM); every later
phase runs ``phase_iterations``. At a phase start T_old becomes a frozen copy of the current map
(eval mode, no grad) while T keeps training from its weights and the potential, optimisers and EMA
carry over. The map loss compares T(x, z) with T_old(x, z') for an independent z', with
c = ||a - b||^2 / (2 d h) (d = features per sample; ``cost_mean=False`` gives 1/(2h)). Each
iteration evaluates T_old once, so the cost per iteration does not grow with the phase index.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from fastot.algorithms import _checks
from fastot.algorithms.base import StepContext, UnifiedOT
from fastot.errors import ConfigError
from fastot.ops import psi_star, quadratic_cost


def frozen_copy(net: nn.Module) -> nn.Module:
    old = copy.deepcopy(net)
    old._forward_hooks.clear()  # instrumentation on T must not follow it into T_old
    old.eval()
    old.requires_grad_(False)
    return old


@dataclass
class SJKO(UnifiedOT):
    """S-JKO with functional "kl" (Algorithm 2) or "jsd" (Algorithm 3, softplus losses).

    ``real_noise`` adds N(0, (real_noise / (k + 1))^2) noise to the data in the potential step of phase k
    (the image recipe uses 1/32; 0 for toys).
    """

    name: ClassVar[str] = "sjko"
    functional: str = "kl"
    h: float = 1.0
    init_h: float | None = None
    num_phases: int = 10
    init_iterations: int = 5000
    phase_iterations: int = 5000
    cost_mean: bool = True
    real_noise: float = 0.0

    def __post_init__(self) -> None:
        _checks.choice("functional", self.functional, ("kl", "jsd"))
        if self.tau != 0:
            raise ConfigError("algorithm.tau", "S-JKO sets its cost weight from h; use algorithm.h")
        _checks.number("h", self.h, positive=True)
        if self.init_h is not None:
            _checks.number("init_h", self.init_h, positive=True)
        _checks.number("real_noise", self.real_noise)
        for key in ("num_phases", "init_iterations", "phase_iterations"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 1:
                raise ConfigError(f"algorithm.{key}", f"must be an integer >= 1, got {getattr(self, key)!r}")
        # The source marginal is fixed (g1 = identity) and the cost is left out of L_v (it does not
        # depend on v); JSD uses softplus on both potential terms.
        self.psi_source = "identity" if self.functional == "kl" else "softplus_unscaled"
        if self.functional == "jsd":
            self.psi_target = "softplus_unscaled"
        self.cost_in_potential = False
        super().__post_init__()
        self.phase = 0
        self.t_old: nn.Module | None = None
        self.current_h = self.step_size()  # read by the (compilable) cost instead of the phase

    implies_iterations: ClassVar[bool] = True

    @classmethod
    def smoke_overrides(cls, spec: dict[str, Any], iterations: int) -> dict[str, Any]:
        # Phases of 2 iterations fill the smoke run.
        return super().smoke_overrides(spec, iterations) | {
            "num_phases": max(2, min(int(spec["num_phases"]), iterations // 2)),
            "init_iterations": min(int(spec["init_iterations"]), 2),
            "phase_iterations": min(int(spec["phase_iterations"]), 2),
        }

    def optimum_generates_target(self) -> str | None:
        return "the JKO flow of KL(.|nu) ends at nu"

    def default_iterations(self) -> int:
        return self.init_iterations + (self.num_phases - 1) * self.phase_iterations

    def unfinished_schedule(self, iterations: int) -> str | None:
        full = self.default_iterations()
        if iterations >= full:
            return None
        return (
            f"{iterations} iterations end in JKO phase {self.phase_of(max(iterations - 1, 0))} of "
            f"{self.num_phases}, whose schedule takes {full} (init_iterations + (num_phases - 1) * "
            "phase_iterations); leave train.iterations unset to train every phase"
        )

    def phase_of(self, it: int) -> int:
        if it < self.init_iterations:
            return 0
        return min(1 + (it - self.init_iterations) // self.phase_iterations, self.num_phases - 1)

    def begin_iteration(self, iteration: int, total: int, ctx: StepContext) -> None:
        super().begin_iteration(iteration, total, ctx)
        phase = self.phase_of(iteration)
        if phase != self.phase:
            self.phase = phase
            self.t_old = frozen_copy(ctx.map)
        self.current_h = self.step_size()

    def snapshot_due(self, iteration: int) -> str | None:
        nxt = iteration + 1
        if nxt == self.init_iterations or (
            nxt > self.init_iterations and (nxt - self.init_iterations) % self.phase_iterations == 0
        ):
            return f"phase {self.phase_of(iteration)}"
        return None

    def log_values(self) -> dict[str, float]:
        return {**super().log_values(), "phase": self.phase}

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["phase"] = self.phase
        state["t_old"] = None if self.t_old is None else self.t_old.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any], ctx: StepContext) -> None:
        super().load_state_dict(state, ctx)
        self.phase = int(state["phase"])
        self.t_old = None
        if state.get("t_old") is not None:
            self.t_old = frozen_copy(ctx.map)
            self.t_old.load_state_dict(state["t_old"])
        self.current_h = self.step_size()

    # ----------------------------------------------------------------- pieces
    def step_size(self) -> float:
        return self.init_h if (self.phase == 0 and self.init_h is not None) else self.h

    def cost(self, x: Tensor, y: Tensor, ctx: StepContext) -> Tensor:
        d = y[0].numel() if self.cost_mean else 1
        return quadratic_cost(x, y, 1.0 / (2.0 * d * self.current_h))

    def reference_latent(self, x: Tensor, ctx: StepContext) -> Tensor | None:
        return None if self.t_old is None else ctx.latent(x.shape[0], self.t_old)  # independent z'

    def reference(self, x: Tensor, z_ref: Tensor | None) -> Tensor:
        if self.t_old is None:
            return x
        with torch.no_grad():
            return self.t_old(x, z_ref)

    def draws_besides_batches(self) -> bool:
        noise = self.real_noise != 0
        return super().draws_besides_batches() or noise or (self.cost_in_potential and self.t_old is not None)

    def perturb_real(self, y: Tensor, ctx: StepContext) -> Tensor:
        if self.real_noise == 0:
            return y
        return y + (self.real_noise / (self.phase + 1)) * ctx.randn_like(y)

    def map_objective(self, cost: Tensor, v_fake: Tensor) -> Tensor:
        if self.functional == "jsd":  # non-saturating generator loss, eq. (33)
            return (cost + psi_star(-v_fake, "softplus_unscaled")).mean()
        return super().map_objective(cost, v_fake)
