"""The unified OT-GAN step (Algorithm 1 of "Analyzing and Improving OT-based Adversarial Networks").

One training iteration = ``k_v`` potential updates, then ``k_t`` map updates:

    potential loss  L_v = mean_x g1(-c(x, y_hat) + v(y_hat)) + mean_y g2(-v(y)) + R
    map loss        L_T = mean_x g3(c(x, T(x, z)) - v(T(x, z)))

with c, g1/g2 (Psi* kinds with an optional alpha) and R supplied by the fused ops. An algorithm
object only picks those pieces and their schedules; the training loop calls the same hooks for
every algorithm and never looks at its name.

Losses and their logs stay on the device (logs are detached tensors): nothing here reads a value
back to the host, so a training update never waits for the device.

Each loss comes in two parts: ``potential_loss`` / ``map_loss`` draw everything random (batches,
latents, noise) and run what differentiates the potential twice (R1, the gradient penalty);
``potential_terms`` / ``map_terms`` compute the rest from those tensors with no randomness and no
data-dependent Python, so ``train.compile=step`` compiles them whole (``fullgraph=True``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from fastot.algorithms import _checks
from fastot.errors import ConfigError
from fastot.ops import psi_star, quadratic_cost, r1_penalty, semi_dual_loss

REGULARIZERS = ("none", "r1", "gp", "clip")
ALPHA_SCHEDULES = ("constant", "linear", "cosine")

# UnifiedOT.potential_terms and map_terms (bound), or the trainer's compiled versions of them.
PotentialTerms = Callable[..., tuple[Tensor, dict[str, Tensor]]]
MapTerms = Callable[..., tuple[Tensor, dict[str, Tensor]]]


@dataclass
class StepContext:
    """What a loss needs: the two networks, the samplers and the run's random generator."""

    map: nn.Module
    potential: nn.Module
    source: Any
    target: Any
    batch_size: int
    generator: torch.Generator
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    # fp16 training multiplies losses by this before backward; R1's inner gradient uses it too.
    loss_scale: Tensor | float = 1.0
    # The potential as gradient penalties call it: they differentiate it twice, which a
    # torch.compile'd network cannot do, so the trainer passes the uncompiled one here.
    penalty_potential: nn.Module | None = None

    def twice_differentiable_potential(self) -> nn.Module:
        return self.penalty_potential if self.penalty_potential is not None else self.potential

    def to_device(self, t: Tensor, device: torch.device | None = None) -> Tensor:
        """A host batch on the run's device without waiting for the device: a blocking host-to-device
        copy synchronises the stream (the host would wait for every queued kernel at each draw)."""
        device = self.device if device is None else device
        if t.device == device:
            return t
        if device.type == "cuda" and t.device.type == "cpu":
            t = t.pin_memory()  # an asynchronous copy needs page-locked memory; no-op if pinned
        return t.to(device, non_blocking=True)

    def source_batch(self, n: int | None = None) -> Tensor:
        return self.to_device(self.source.sample(n or self.batch_size, self.generator))

    def target_batch(self, n: int | None = None) -> Tensor:
        return self.to_device(self.target.sample(n or self.batch_size, self.generator))

    def latent(self, n: int, net: nn.Module | None = None) -> Tensor | None:
        z_dim = getattr(net if net is not None else self.map, "z_dim", 0)
        if not z_dim:
            return None
        return self.to_device(torch.randn(n, z_dim, generator=self.generator))

    def randn_like(self, t: Tensor) -> Tensor:
        return self.to_device(torch.randn(t.shape, generator=self.generator, dtype=t.dtype), t.device)

    def rand(self, *shape: int) -> Tensor:
        return self.to_device(torch.rand(shape, generator=self.generator))


def per_sample(net: nn.Module) -> bool:
    """Whether ``net`` maps each sample on its own, so that one call on stacked batches computes
    what separate calls do: no batch statistics and no random masks in training mode."""
    batch_dependent = (nn.modules.batchnorm._BatchNorm, nn.Dropout)
    return not any(
        m.training and isinstance(m, batch_dependent) and getattr(m, "p", 1) > 0 for m in net.modules()
    )


@dataclass
class UnifiedOT:
    """The semi-dual family: WGAN, WGAN-GP, OTM, UOTM and its variants, UOTM-SD.

    Args:
        tau: cost weight, c(x, y) = tau * sum over features of (x - y)^2 (0 removes the cost).
        psi_source, psi_target, psi_map: the Psi* kinds g1, g2, g3.
        regularizer: "none", "r1" (R1 on real data), "gp" (gradient penalty on interpolates) or
            "clip" (clip every potential weight to [-clip, clip] after each potential step).
        reg_weight: lambda of R1 (applied as lambda/2 * E||grad||^2) or of the gradient penalty.
        r1_every: lazy R1: the penalty on every ``r1_every``-th potential step only, weighted by
            ``r1_every`` so that its mean over steps is unchanged (opt-in; 1 is every step).
        reuse_potential_batch: draw one batch per iteration and reuse it for all ``k_v`` potential
            steps, as the UOTM toy script does (the paper's setting draws a fresh batch per step).
        batched_calls: call the networks once where several calls compute the same numbers: the
            frozen map on the ``k_v`` potential steps' batches stacked (drawn ahead, in the order
            the steps would draw them), and the potential on fakes and data together. Only where
            exact: per-sample networks (no batch statistics), and no other draws between batches.
        alpha_schedule: "constant" (alpha = alpha) or "linear" / "cosine" from alpha_min to alpha_max
            over the first ``schedule_fraction`` of the iterations (after ``warmup`` iterations), then held.
    """

    name: ClassVar[str] = "unified"
    tau: float = 0.0
    psi_source: str = "identity"
    psi_target: str = "identity"
    psi_map: str = "identity"
    regularizer: str = "none"
    reg_weight: float = 0.0
    r1_every: int = 1
    clip: float = 0.01
    k_v: int = 1
    k_t: int = 1
    alpha: float = 1.0
    alpha_schedule: str = "constant"
    alpha_min: float = 0.2
    alpha_max: float = 5.0
    schedule_fraction: float = 0.75
    warmup: int = 0
    cost_in_potential: bool = True
    reuse_potential_batch: bool = False
    batched_calls: bool = True

    def __post_init__(self) -> None:
        _checks.number("tau", self.tau)
        for key in ("psi_source", "psi_target", "psi_map"):
            _checks.kind(key, getattr(self, key))
        _checks.choice("regularizer", self.regularizer, REGULARIZERS)
        _checks.choice("alpha_schedule", self.alpha_schedule, ALPHA_SCHEDULES)
        _checks.number("reg_weight", self.reg_weight)
        _checks.number("clip", self.clip, positive=True)
        for key in ("alpha", "alpha_min", "alpha_max"):
            _checks.number(key, getattr(self, key), positive=True)
        for key in ("reuse_potential_batch", "batched_calls", "cost_in_potential"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"algorithm.{key}", f"must be true or false, got {getattr(self, key)!r}")
        for key in ("k_v", "k_t", "r1_every"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 1:
                raise ConfigError(f"algorithm.{key}", f"must be an integer >= 1, got {getattr(self, key)!r}")
        if not 0 < self.schedule_fraction <= 1:
            raise ConfigError("algorithm.schedule_fraction", f"not in (0, 1]: {self.schedule_fraction}")
        self.iteration, self.total_iterations = 0, 1
        self.current_alpha = float(self.alpha)
        self._potential_batch: tuple[Tensor, Tensor, Tensor] | None = None
        self._drawn_ahead: list[tuple[Tensor, Tensor, Tensor]] = []  # the iteration's stacked batches
        self._joint_potential = False  # potential_terms calls v once on fakes and data
        self._potential_step, self._r1_now = 0, False  # lazy R1: this step's penalty is due

    # ----------------------------------------------------------------- what the algorithm knows
    implies_iterations: ClassVar[bool] = False  # its own schedule sets the run's length (S-JKO)

    @classmethod
    def smoke_overrides(cls, spec: dict[str, Any], iterations: int) -> dict[str, Any]:
        """What a smoke run of ``iterations`` changes in the algorithm config ``spec`` (defaults
        filled in): at most two updates of each kind per iteration, schedules inside the run."""
        out: dict[str, Any] = {key: 2 for key in ("k_v", "k_t") if int(spec.get(key, 1)) > 2}
        if int(spec.get("warmup") or 0) > 0:
            out["warmup"] = min(int(spec["warmup"]), iterations // 2)
        return out

    def optimum_generates_target(self) -> str | None:
        """Why the exact optimum of this objective generates the target itself (with the reason
        as a note), or None: UOTM and its variants, whose semi-dual must be solved."""
        if self.tau == 0:
            return "no cost: the optimum generates nu"
        if (self.psi_source, self.psi_target) == ("identity", "identity"):
            return "balanced OT: T#mu = nu"
        return None

    def map_samples_per_input(self) -> int:
        """Map outputs drawn per source sample in a map update (the weak costs draw several)."""
        return 1

    # ----------------------------------------------------------------- schedules / state
    def default_iterations(self) -> int | None:
        """Iterations the algorithm itself implies (S-JKO phases), else None."""
        return None

    def unfinished_schedule(self, iterations: int) -> str | None:
        """What ``iterations`` leaves untrained of the algorithm's own schedule, else None."""
        return None

    def begin_iteration(self, iteration: int, total: int, ctx: StepContext) -> None:
        self.iteration, self.total_iterations = iteration, max(int(total), 1)
        self.current_alpha = self._alpha_at(iteration)
        self._potential_step = iteration * self.k_v  # from the iteration, so a resumed run agrees
        self._potential_batch = None
        self._drawn_ahead = []

    def _alpha_at(self, it: int) -> float:
        if self.alpha_schedule == "constant":
            return float(self.alpha)
        span = max(self.schedule_fraction * self.total_iterations - self.warmup, 1.0)
        t = min(max(it - self.warmup, 0) / span, 1.0)
        if self.alpha_schedule == "cosine":
            t = 0.5 * (1.0 - math.cos(math.pi * t))
        return (1.0 - t) * self.alpha_min + t * self.alpha_max

    def log_values(self) -> dict[str, float]:
        return {"alpha": self.current_alpha} if self.alpha_schedule != "constant" else {}

    def per_iteration_scalars(self) -> list[str]:
        """Config keys of the hyperparameters that change every iteration (schedules). The fused ops
        take them as Python floats, which a compiled loss specialises on: one graph per value."""
        return ["algorithm.alpha_schedule"] if self.alpha_schedule != "constant" else []

    def snapshot_due(self, iteration: int) -> str | None:
        """A label when the state after ``iteration`` deserves a saved sample snapshot."""
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"iteration": self.iteration, "alpha": self.current_alpha}

    def load_state_dict(self, state: dict[str, Any], ctx: StepContext) -> None:
        self.iteration = int(state["iteration"])
        self.current_alpha = float(state["alpha"])

    # ----------------------------------------------------------------- pieces
    def cost(self, x: Tensor, y: Tensor, ctx: StepContext) -> Tensor:
        """c(x, y) per sample."""
        if self.tau == 0:
            return torch.zeros(y.shape[0], dtype=y.dtype, device=y.device)
        return quadratic_cost(x, y, self.tau)

    def reference_latent(self, x: Tensor, ctx: StepContext) -> Tensor | None:
        """The latent :meth:`reference` needs, drawn with the other random inputs (none here)."""
        return None

    def reference(self, x: Tensor, z_ref: Tensor | None) -> Tensor:
        """The point the cost compares T(x, z) with: x itself here (S-JKO uses T_old(x, z_ref))."""
        return x

    def perturb_real(self, y: Tensor, ctx: StepContext) -> Tensor:
        return y

    def map_objective(self, cost: Tensor, v_fake: Tensor) -> Tensor:
        """mean g3(c - v(T(x, z)))."""
        t = cost - v_fake
        return t.mean() if self.psi_map == "identity" else psi_star(t, self.psi_map).mean()

    # ----------------------------------------------------------------- regularizers
    def real_scores(self, ctx: StepContext, y: Tensor) -> Tensor:
        """v(y) as R1 needs them: R1 differentiates these very scores with respect to y (no second
        forward pass), so y requires grad and the scores come from the twice-differentiable
        potential, outside :meth:`potential_terms` (a compiled graph cannot be differentiated twice).
        """
        y.requires_grad_(True)
        return ctx.twice_differentiable_potential()(self.perturb_real(y, ctx))

    def regularization(
        self, ctx: StepContext, y: Tensor, v_real: Tensor | None, y_fake: Tensor
    ) -> Tensor | None:
        """The regulariser R; under R1 ``v_real`` are :meth:`real_scores` of ``y``."""
        if self._r1_now:
            assert v_real is not None
            # Under fp16 the half-precision backward of an unscaled sum underflows: scale it like
            # the loss, then divide back in float32 before squaring.
            s = ctx.loss_scale
            (grad,) = torch.autograd.grad(v_real.sum() * s, y, create_graph=True)
            if isinstance(s, Tensor) or s != 1.0:
                grad = grad.float() / s
            return r1_penalty(grad, self.reg_weight * self.r1_every)
        if self.regularizer == "gp" and self.reg_weight > 0:
            # Gulrajani et al.: lambda * E(||grad v(x_hat)|| - 1)^2 on random interpolates.
            eps = ctx.rand(y.shape[0], *([1] * (y.dim() - 1)))
            inter = (eps * y.detach() + (1 - eps) * y_fake.detach()).requires_grad_(True)
            v_inter = ctx.twice_differentiable_potential()(inter)
            (grad,) = torch.autograd.grad(v_inter.sum(), inter, create_graph=True)
            return self.reg_weight * (grad.flatten(1).norm(dim=1) - 1).square().mean()
        return None

    # ----------------------------------------------------------------- the two losses
    def draws_besides_batches(self) -> bool:
        """Whether a potential step draws random numbers besides its batch (x, z, y): then its
        batches cannot be drawn ahead without changing the stream. Here: the penalty's weights."""
        return self.regularizer == "gp"

    def potential_batch(self, ctx: StepContext) -> tuple[Tensor, Tensor, Tensor]:
        """(x, T(x, z), y) for one potential step: fresh, or the iteration's first batch again."""
        if self._potential_batch is not None:
            return self._potential_batch
        if self._drawn_ahead:
            return self._drawn_ahead.pop(0)
        stack = (
            self.batched_calls
            and self.k_v > 1
            and not self.reuse_potential_batch
            and not self.draws_besides_batches()
            and per_sample(ctx.map)
        )
        draws = []
        for _ in range(self.k_v if stack else 1):  # in the order k_v separate steps draw them
            x = ctx.source_batch()
            draws.append((x, ctx.latent(x.shape[0]), ctx.target_batch()))
        xs, zs, ys = zip(*draws, strict=True)
        with torch.no_grad():  # the map is held fixed in the potential steps
            if len(draws) == 1:
                fakes: tuple[Tensor, ...] = (ctx.map(xs[0], zs[0]),)
            else:
                z = None if zs[0] is None else torch.cat(zs)
                fakes = ctx.map(torch.cat(xs), z).split([x.shape[0] for x in xs])
        batches = list(zip(xs, fakes, ys, strict=True))
        self._drawn_ahead = batches[1:]
        if self.reuse_potential_batch:
            self._potential_batch = batches[0]
        return batches[0]

    def potential_loss(
        self, ctx: StepContext, terms: PotentialTerms | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """L_v and its logs; ``terms`` stands in for :meth:`potential_terms` (the trainer passes a
        compiled one)."""
        x, y_fake, y = self.potential_batch(ctx)
        r1 = self.regularizer == "r1" and self.reg_weight > 0
        self._r1_now = r1 and self._potential_step % self.r1_every == 0
        self._potential_step += 1
        # R1 differentiates v(y) alone: a joint call would double its double backward.
        self._joint_potential = self.batched_calls and not self._r1_now and per_sample(ctx.potential)
        if self._r1_now:
            real, v_real = None, self.real_scores(ctx, y)
        else:
            real, v_real = self.perturb_real(y, ctx), None
        z_ref = self.reference_latent(x, ctx) if self.cost_in_potential else None
        loss, logs = (terms or self.potential_terms)(ctx, x, y_fake, real, v_real, z_ref)
        reg = self.regularization(ctx, y, v_real, y_fake)
        if reg is not None:
            logs["reg"] = reg.detach()
            loss = loss + reg
        return loss, logs

    def potential_terms(
        self,
        ctx: StepContext,
        x: Tensor,
        y_fake: Tensor,
        real: Tensor | None,
        v_real: Tensor | None,
        z_ref: Tensor | None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The semi-dual loss without R: v at the data ``real`` (or the given scores ``v_real``) and
        at the generated ``y_fake``, and the cost of ``y_fake``."""
        if v_real is None and self._joint_potential:
            assert real is not None
            v_fake, v_real = ctx.potential(torch.cat([y_fake, real])).split([y_fake.shape[0], real.shape[0]])
        else:
            if v_real is None:
                assert real is not None
                v_real = ctx.potential(real)
            v_fake = ctx.potential(y_fake)
        if self.cost_in_potential:
            with torch.no_grad():
                cost = self.cost(self.reference(x, z_ref), y_fake, ctx)
        else:  # the cost does not depend on the potential; S-JKO drops it (Algorithms 2-3)
            cost = torch.zeros_like(v_fake)
        loss = semi_dual_loss(cost, v_fake, v_real, self.psi_source, self.psi_target, self.current_alpha)
        return loss, {"loss_v": loss.detach()}

    def after_potential_step(self, ctx: StepContext) -> None:
        if self.regularizer == "clip":  # WGAN's Lipschitz constraint by weight clipping
            with torch.no_grad():
                for p in ctx.potential.parameters():
                    p.clamp_(-self.clip, self.clip)

    def map_loss(self, ctx: StepContext, terms: MapTerms | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """L_T and its logs; ``terms`` stands in for :meth:`map_terms` (the trainer passes a compiled one)."""
        x = ctx.source_batch()
        z = ctx.latent(x.shape[0])
        return (terms or self.map_terms)(ctx, x, z, self.reference_latent(x, ctx))

    def map_terms(
        self, ctx: StepContext, x: Tensor, z: Tensor | None, z_ref: Tensor | None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        y = ctx.map(x, z)
        cost = self.cost(self.reference(x, z_ref), y, ctx)
        loss = self.map_objective(cost, ctx.potential(y))
        return loss, {"loss_T": loss.detach(), "cost": cost.detach().mean()}

    def params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
