"""One training run: its networks, optimisers and random stream, what it checkpoints, and one
iteration of potential and map updates, with the NaN guard watching the losses on the device."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from fastot import rundir
from fastot.algorithms import StepContext, build_algorithm
from fastot.config import intra_op_threads, to_container
from fastot.config.optimizers import build_optimizer
from fastot.data import build_sampler
from fastot.errors import CheckpointWriteError, ConfigWarning
from fastot.nn import build_map, build_potential
from fastot.sampling import implied_network_args
from fastot.train import checkpoint as ckpt
from fastot.train import runtime
from fastot.train.ema import EMA
from fastot.train.errors import ConfigError, DivergenceError
from fastot.train.evaluate import check_metrics

# fp16 steps whose loss overflowed are skipped by the GradScaler (which lowers its scale); only more
# than this many in a row (per loss) count as divergence.
MAX_SKIPPED_FP16_STEPS = 20


class LossWatch:
    """The NaN guard, without a host sync per update: the losses are kept (detached, on the device)
    with the step and loss they belong to, and :meth:`first_divergence` reads them all back at once.

    ``tolerated`` non-finite losses in a row of one kind are not divergence (fp16: the GradScaler
    skips those steps). Memory stays bounded when nobody checks (``Run.iteration`` called directly):
    losses are stacked every ``STACK`` updates and scanned (one sync) every ``SCAN`` updates.
    """

    STACK = 256
    SCAN = 1 << 16

    def __init__(self, tolerated: int = 0) -> None:
        self.tolerated = tolerated
        self.in_a_row: dict[str, int] = {}
        self.found: tuple[int, str, float] | None = None
        self._meta: list[tuple[int, str]] = []
        self._chunks: list[torch.Tensor] = []
        self._recent: list[torch.Tensor] = []

    def add(self, step: int, name: str, loss: torch.Tensor) -> None:
        self._meta.append((step, name))
        self._recent.append(loss.detach().float())
        if len(self._recent) == self.STACK:  # one small tensor instead of STACK scalar allocations
            self._chunks.append(torch.stack(self._recent))
            self._recent = []
        if len(self._meta) >= self.SCAN:
            self._scan()

    def first_divergence(self) -> tuple[int, str, float] | None:
        """(step, loss name, value) of the first loss that counts as divergence, or None."""
        self._scan()
        return self.found

    def _scan(self) -> None:
        if not self._meta:
            return
        values = torch.cat([*self._chunks, *(t.reshape(1) for t in self._recent)]).tolist()  # the sync
        meta, self._meta, self._chunks, self._recent = self._meta, [], [], []
        for (step, name), value in zip(meta, values, strict=True):
            if math.isfinite(value):
                self.in_a_row[name] = 0
                continue
            self.in_a_row[name] = self.in_a_row.get(name, 0) + 1
            if self.in_a_row[name] > self.tolerated and self.found is None:
                self.found = (step, name, value)


class Run:
    """Everything a run holds; built from a resolved config.

    Every algorithm goes through the same calls: ``begin_iteration`` (schedules and phases), ``k_v``
    potential updates, ``k_t`` map updates, EMA. Randomness during training comes from one
    ``torch.Generator`` whose state is checkpointed with everything else, so a resumed run repeats an
    uninterrupted one bit for bit on CPU.
    """

    def __init__(self, cfg: DictConfig, run_dir: Path) -> None:
        self.cfg, self.run_dir = cfg, run_dir
        threads = intra_op_threads(cfg)
        if threads:
            torch.set_num_threads(threads)
        self.device = runtime.resolve_device(cfg.device)
        self.backend = runtime.fused_backend(self.device)
        self.rank, self.world = runtime.init_distributed(self.device)
        torch.manual_seed(cfg.seed)  # network initialisation, the same on every rank
        with _as_config_error("data.source"):
            self.source = build_sampler(to_container(cfg, "data.source"), "data.source")
        with _as_config_error("data.target"):
            self.target = build_sampler(to_container(cfg, "data.target"), "data.target")
        implied = implied_network_args(self.target)
        with _as_config_error("networks.map"):
            net_map = build_map(to_container(cfg, "networks.map"), **implied)
        self.map = net_map.to(self.device)
        with _as_config_error("networks.potential"):
            potential = build_potential(to_container(cfg, "networks.potential"), **implied)
        self.potential = potential.to(self.device)
        if cfg.train.channels_last:
            self.map.to(memory_format=torch.channels_last)
            self.potential.to(memory_format=torch.channels_last)
        runtime.broadcast_parameters(self.map, self.potential)
        self.precision = runtime.Precision(cfg.train.amp, self.device)
        self.watch = LossWatch(MAX_SKIPPED_FP16_STEPS if self.precision.name == "fp16" else 0)
        self.algo = build_algorithm(to_container(cfg, "algorithm"))
        self.opt_map = build_optimizer(self.map.parameters(), to_container(cfg, "optim.map"), "optim.map")
        self.opt_pot = build_optimizer(
            self.potential.parameters(), to_container(cfg, "optim.potential"), "optim.potential"
        )
        self.base_lr = (self.opt_map.param_groups[0]["lr"], self.opt_pot.param_groups[0]["lr"])
        iters = cfg.train.iterations
        self.total = iters if iters is not None else self.algo.default_iterations()
        if self.total is None:
            raise ConfigError("train.iterations", "required for this algorithm")
        unfinished = self.algo.unfinished_schedule(int(self.total))
        if unfinished is not None:  # allowed: a run may be continued later with more iterations
            warnings.warn(ConfigWarning("train.iterations", unfinished), stacklevel=2)
        self.ema = EMA(self.map, cfg.train.ema.decay) if cfg.train.ema.enabled else None
        self.generator = torch.Generator().manual_seed(self._stream_seed(0))  # the training stream
        # train.compile: true compiles the networks; "step" compiles the losses around them whole
        # (the algorithms' *_terms), with R1 and the gradient penalty left outside, on the
        # uncompiled potential, since they differentiate it twice.
        networks_only = cfg.train.compile is True
        run_net = {"autocast_dtype": self.precision.dtype, "channels_last": cfg.train.channels_last}
        self.ctx = StepContext(
            # In step mode the map is compiled as a network too, for the fakes the potential step
            # draws outside its loss; the compiled map loss traces through it like the rest.
            runtime.Runner(self.map, self.device, **run_net, compile=bool(cfg.train.compile)),
            runtime.Runner(self.potential, self.device, **run_net, compile=networks_only),
            self.source,
            self.target,
            cfg.train.batch_size,
            self.generator,
            self.device,
            penalty_potential=(
                runtime.Runner(self.potential, self.device, **run_net) if networks_only else None
            ),
        )
        step_mode = cfg.train.compile == "step"
        self.potential_terms, self.map_terms = compiled_terms(self.algo) if step_mode else (None, None)
        check_metrics(list(cfg.eval.metrics))
        self.step = 0
        self.elapsed = 0.0
        # losses since the last log row (checkpointed): device tensors, or floats from a checkpoint
        self.window: dict[str, list[torch.Tensor | float]] = {}
        self.last_ckpt: Path | None = None

    def _stream_seed(self, step: int) -> int:
        # Rank 0 of a fresh run draws exactly what a single process draws.
        if self.rank == 0 and step == 0:
            return self.cfg.seed + 1
        return self.cfg.seed + 1 + 1_000_003 * self.rank + 7919 * step

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": 1,
            "step": self.step,
            "elapsed": self.elapsed,
            "map": self.map.state_dict(),
            "potential": self.potential.state_dict(),
            "optim_map": self.opt_map.state_dict(),
            "optim_potential": self.opt_pot.state_dict(),
            "ema": None if self.ema is None else self.ema.state_dict(),
            "algorithm": self.algo.state_dict(),
            "rng": {"generator": self.generator.get_state(), "torch": torch.get_rng_state()},
            "rng_ranks": runtime.all_gather_objects(self.generator.get_state()),
            "precision": self.precision.state_dict(),
            "data": {k: s.state_dict() for k, s in self._stateful_samplers().items()},
            "log_window": host_values(self.window),
            "config": OmegaConf.to_container(self.cfg, resolve=True),  # what a resume may not change
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step, self.elapsed = int(state["step"]), float(state["elapsed"])
        for key, net in (("map", self.map), ("potential", self.potential)):
            try:
                net.load_state_dict(state[key])
            except RuntimeError as e:  # e.g. a config.yaml edited to other network sizes
                lines = str(e).strip().splitlines()
                detail = lines[1].strip() if len(lines) > 1 else lines[0]
                raise ConfigError(
                    f"networks.{key}", f"the checkpoint does not fit this network ({detail})"
                ) from None
        for opt, key in ((self.opt_map, "optim_map"), (self.opt_pot, "optim_potential")):
            # The config's hyperparameters (lr=, betas= overrides of a resumed run) win over the
            # checkpoint's; the checkpoint brings the moments.
            settings = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
            opt.load_state_dict(state[key])
            for group, values in zip(opt.param_groups, settings, strict=True):
                group.update(values)
        if self.ema is not None:
            if state["ema"] is None:  # EMA switched on when resuming: it starts from the current map
                self.ema = EMA(self.map, self.ema.decay)
            else:
                self.ema.load_state_dict(state["ema"])
        self.algo.load_state_dict(state["algorithm"], self.ctx)
        ranks = state.get("rng_ranks") or [state["rng"]["generator"]]
        if len(ranks) == self.world:  # same world size: every rank continues its own stream
            self.generator.set_state(ranks[self.rank])
        else:  # another world size: fresh per-rank streams, deterministic in (seed, step, rank)
            self.generator.manual_seed(self._stream_seed(self.step) if self.rank else 0)
            if self.rank == 0:
                self.generator.set_state(state["rng"]["generator"])
        torch.set_rng_state(state["rng"]["torch"])
        self.precision.load_state_dict(state.get("precision", {}))
        samplers = self._stateful_samplers()
        for key, sampler_state in state.get("data", {}).items():
            if key in samplers:
                samplers[key].load_state_dict(sampler_state)
        self.window = {k: list(v) for k, v in state.get("log_window", {}).items()}

    def _stateful_samplers(self) -> dict[str, Any]:
        """Data streams with a position to checkpoint (image datasets; toys draw from the generator)."""
        pairs = (("source", self.source), ("target", self.target))
        return {k: s for k, s in pairs if hasattr(s, "state_dict")}

    def check_finite(self) -> None:
        """Raise :class:`DivergenceError` if a loss went NaN or Inf since the last check (on any rank:
        they all stop at the same step). Reads the losses back: one host sync."""
        found = self.watch.first_divergence()
        if not runtime.any_rank(found is not None, self.device):
            return
        last = str(self.last_ckpt) if self.last_ckpt else None
        step, name, value = found if found is not None else (self.step, "a loss on another rank", math.nan)
        raise DivergenceError(step, name, value, last)

    def save_checkpoint(self) -> None:
        self.check_finite()  # never a checkpoint of non-finite weights
        path = rundir.checkpoint(self.run_dir, self.step)
        state = self.state_dict()  # a collective call: every rank takes part
        if self.rank == 0:
            try:
                rundir.save_checkpoint(path, state)
            except OSError as e:  # the temporary is gone and older checkpoints are untouched
                last = str(self.last_ckpt) if self.last_ckpt else None
                raise CheckpointWriteError(str(path), e.strerror or str(e), last, str(self.run_dir)) from None
            ckpt.prune(self.run_dir, self.cfg.train.keep_checkpoints)
        self.last_ckpt = path

    @property
    def sampling_map(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.map

    # ------------------------------------------------------------------ one iteration
    def _set_lr(self, it: int) -> None:
        if self.cfg.optim.schedule == "constant":
            return
        t = it / max(self.total, 1)
        for opt, base in zip((self.opt_map, self.opt_pot), self.base_lr, strict=True):
            lr = self.cfg.optim.eta_min + 0.5 * (base - self.cfg.optim.eta_min) * (1 + math.cos(math.pi * t))
            for group in opt.param_groups:
                group["lr"] = lr

    def _update(self, loss: torch.Tensor, which: str, opt: torch.optim.Optimizer, net: nn.Module) -> None:
        opt.zero_grad(set_to_none=True)
        self.precision.backward(loss, which)
        self.precision.step(opt, which, net, self.cfg.train.grad_clip)

    def iteration(self, it: int) -> dict[str, torch.Tensor]:
        """One iteration; its logs are detached device tensors. Losses are checked for NaN/Inf
        later, by :meth:`check_finite`, so the host never waits for the device here."""
        self._set_lr(it)
        algo, ctx = self.algo, self.ctx
        algo.begin_iteration(it, self.total, ctx)
        step = it + 1  # steps count from 1 as in the logs: iteration ``it`` completes step it + 1
        logs: dict[str, torch.Tensor] = {}
        self.potential.requires_grad_(True)
        for _ in range(algo.k_v):
            ctx.loss_scale = self.precision.loss_scale("potential")  # R1's gradient under fp16
            loss, logs_v = algo.potential_loss(ctx, self.potential_terms)
            self.watch.add(step, "potential loss", loss)
            self._update(loss, "potential", self.opt_pot, self.potential)
            algo.after_potential_step(ctx)
        logs.update(logs_v)
        self.potential.requires_grad_(False)  # the map step needs no potential weight gradients
        for _ in range(algo.k_t):
            loss, logs_t = algo.map_loss(ctx, self.map_terms)
            self.watch.add(step, "map loss", loss)
            self._update(loss, "map", self.opt_map, self.map)
        self.potential.requires_grad_(True)
        logs.update(logs_t)
        if self.ema is not None:
            self.ema.update(self.map)
        return logs


def compiled_terms(algo: Any) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``algo.potential_terms`` and ``algo.map_terms`` compiled whole (``train.compile=step``).

    ``dynamic=False``: the batch shapes never change, and the fused ops' float arguments (tau,
    alpha, gamma, S-JKO's 1/(2dh)) stay compile-time constants; a value that changes (S-JKO's
    first phase with ``init_h``) costs one more graph. Hyperparameters scheduled per iteration
    would cost a graph per iteration, so they are refused.
    """
    scheduled = algo.per_iteration_scalars()
    if scheduled:
        raise ConfigError(
            "train.compile",
            f"'step' cannot compile a loss whose hyperparameters change every iteration "
            f"({', '.join(scheduled)}): the fused ops take them as Python floats, which a compiled "
            "graph holds as constants; use train.compile=true (the networks only)",
        )
    return (
        torch.compile(algo.potential_terms, fullgraph=True, dynamic=False),
        torch.compile(algo.map_terms, fullgraph=True, dynamic=False),
    )


def host_values(window: dict[str, list[torch.Tensor | float]]) -> dict[str, list[float]]:
    """The logging window as Python floats, read back from the device in one copy."""
    tensors = [v.reshape(1) for values in window.values() for v in values if isinstance(v, torch.Tensor)]
    host = iter(torch.cat(tensors).tolist() if tensors else [])
    return {k: [next(host) if isinstance(v, torch.Tensor) else v for v in vs] for k, vs in window.items()}


@contextlib.contextmanager
def _as_config_error(key: str) -> Iterator[None]:
    """A constructor's error on a bad value (TypeError, ValueError, or torch's RuntimeError such as a
    negative width) becomes a one-line error naming ``key``."""
    try:
        yield
    except ConfigError:
        raise
    except (TypeError, ValueError, RuntimeError) as e:
        lines = str(e).strip().splitlines()
        raise ConfigError(key, lines[0] if lines else type(e).__name__) from None
