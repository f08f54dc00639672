"""The training loop. Reads top to bottom: build, (resume), iterate, checkpoint, evaluate, plot.

Every algorithm goes through the same calls: ``begin_iteration`` (schedules and phases), ``k_v``
potential updates, ``k_t`` map updates, EMA. Randomness during training comes from one
``torch.Generator`` whose state is checkpointed with everything else, so a resumed run repeats an
uninterrupted one bit for bit on CPU.

An update never waits for the device: losses stay there (logs hold detached tensors) and are read
back, with the NaN guard's verdict, only where the loop writes something: log rows, snapshots,
sample grids, FID and checkpoints. A checkpoint is written only after that check passed.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import subprocess
import sys
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from fastot.algorithms import StepContext, build_algorithm
from fastot.data import build_sampler
from fastot.data.registry import image_shape
from fastot.nn import build_map, build_potential
from fastot.train import checkpoint as ckpt
from fastot.train import runtime
from fastot.train.config import intra_op_threads, load_config, to_container
from fastot.train.ema import EMA
from fastot.train.errors import ConfigError, DivergenceError
from fastot.train.evaluate import PeriodicFID, check_metrics, compute_metrics, generate

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


OPTIMIZERS = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop, "sgd": torch.optim.SGD}


def build_optimizer(params, spec: dict[str, Any], key: str) -> torch.optim.Optimizer:
    spec = dict(spec)
    name = spec.pop("name")
    if name not in OPTIMIZERS:
        raise ConfigError(f"{key}.name", f"unknown optimizer {name!r}; choose from {sorted(OPTIMIZERS)}")
    if "betas" in spec:
        spec["betas"] = tuple(spec["betas"])
    try:
        return OPTIMIZERS[name](params, **spec)
    except TypeError as e:
        raise ConfigError(key, str(e)) from None


class Run:
    """Everything a run holds; built from a resolved config."""

    def __init__(self, cfg: DictConfig, run_dir: Path) -> None:
        self.cfg, self.run_dir = cfg, run_dir
        threads = intra_op_threads(cfg)
        if threads:
            torch.set_num_threads(threads)
        self.device = runtime.resolve_device(cfg.device)
        self.backend = fused_backend(self.device)
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
        path = ckpt.checkpoint_path(self.run_dir, self.step)
        state = self.state_dict()  # a collective call: every rank takes part
        if self.rank == 0:
            ckpt.save_atomic(state, path)
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


def fused_backend(device: torch.device) -> str:
    """The backend the fused ops resolve to on ``device``: cpp, cuda, triton or eager."""
    from fastot.ops._backend import resolve

    try:
        return resolve(device, None)
    except (RuntimeError, ValueError) as e:  # FASTOT_BACKEND names a backend that cannot run here
        raise ConfigError("FASTOT_BACKEND", str(e).removeprefix("fastot: ")) from None


def source_version() -> dict[str, Any]:
    """fastot's and torch's versions, and the git commit when fastot runs from a checkout."""
    import fastot

    out: dict[str, Any] = {"fastot_version": fastot.__version__, "torch_version": torch.__version__}
    root = Path(fastot.__file__).resolve().parent.parent
    sha = dirty = None
    if (root / ".git").exists():
        git = ["git", "-C", str(root)]
        try:
            head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
            if head.returncode == 0:
                sha = head.stdout.strip()
                changes = [*git, "status", "--porcelain", "--untracked-files=no"]
                status = subprocess.run(changes, capture_output=True, text=True, timeout=10)
                dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):  # no git executable, or it hung
            pass
    out.update(git_sha=sha, git_dirty=dirty)
    return out


def run_info(run: Run) -> dict[str, Any]:
    """What runs where; printed when a run starts and recorded in summary.json."""
    return {
        "preset": run.cfg.preset,
        "algorithm": run.cfg.algorithm.name,
        "device": str(run.device),
        "backend": run.backend,
        "threads": torch.get_num_threads(),
        **source_version(),
    }


def start_block(run: Run, resumed: bool) -> str:
    """Preset, algorithm, device, fused-op backend, threads, length and directory of a starting run."""
    cfg = run.cfg
    if cfg.train.threads:
        why = "train.threads"
    elif intra_op_threads(cfg) == 1:
        why = "the default for vector data; train.threads=N changes it"
    else:
        why = "this machine's default"
    length = f"{run.total} (batch {cfg.train.batch_size}"
    length += f"; resuming after step {run.step})" if resumed else ")"
    rows = [
        ("preset", cfg.preset or "(not recorded)"),
        ("algorithm", cfg.algorithm.name),
        ("device", f"{run.device} (fused ops: {run.backend} backend)"),
        ("threads", f"{torch.get_num_threads()} intra-op ({why})"),
        ("iterations", length),
        ("run dir", str(run.run_dir.resolve())),
    ]
    return "\n".join(f"  {k:<12s}{v}" for k, v in rows)


def _route_warnings(bar: Any) -> Callable[[], None]:
    """While ``bar`` is drawn, warnings print on a line of their own above it (tqdm.write) instead
    of being glued onto it. Returns the function that puts the previous handler back; until then
    the handler holds the bar weakly and defers to the previous one once the bar is closed."""
    previous = warnings.showwarning
    ref = weakref.ref(bar)

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        live = ref()
        if live is None or live.disable:
            previous(message, category, filename, lineno, file, line)
        else:
            live.write(f"{category.__name__}: {message}", file=sys.stderr)

    warnings.showwarning = show

    def restore() -> None:
        if warnings.showwarning is show:
            warnings.showwarning = previous

    return restore


def implied_network_args(target: Any) -> dict[str, Any]:
    """Network arguments the data determine: ``dim`` for vectors, ``channels``/``image_size`` for images."""
    if hasattr(target, "dim"):
        return {"dim": target.dim}
    shape = getattr(target, "shape", None)
    if shape is not None and len(shape) == 3:
        return {"channels": shape[0], "image_size": shape[-1]}
    return {}


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step]
    path.write_text("".join(ln + "\n" for ln in keep))


class RunFinished(Exception):
    """``--resume`` of a run that has done all its iterations and written its summary."""

    def __init__(self, run_dir: Path, step: int, total: int) -> None:
        super().__init__(
            f"{run_dir} already finished (step {step} of {total}); nothing to do. "
            f"To train longer: --resume {run_dir} train.iterations=N"
        )
        self.run_dir = run_dir


# What a resumed run cannot change: the checkpoint's weights, optimiser moments and random streams
# belong to these. Everything else (optimiser hyperparameters, schedule, iterations, logging,
# evaluation, algorithm weights) applies from the resumed step on; so does a data change that keeps
# the data's shapes (a moved dataset path).
FIXED_ON_RESUME = ("seed", "networks", "algorithm.name", "optim.map.name", "optim.potential.name")


def _differences(a: Any, b: Any, key: str) -> list[tuple[str, Any, Any]]:
    """(dotted key, a, b) of every leaf where two config containers differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(a.keys() | b.keys())
        return [d for k in keys for d in _differences(a.get(k), b.get(k), f"{key}.{k}")]
    return [] if a == b else [(key, a, b)]


def _data_shape(spec: dict[str, Any], key: str) -> Any:
    """What the networks are built for from a data spec, or None when it cannot be told."""
    shape = image_shape(spec)
    if shape is not None:  # images: from the spec, without opening the dataset
        return shape
    try:
        return implied_network_args(build_sampler(spec, key)) or None
    except (ConfigError, TypeError, ValueError, OSError):
        return None


def check_resume_config(trained: dict[str, Any], cfg: DictConfig) -> None:
    """Refuse overrides of a resumed run that its checkpoint cannot follow, naming the key."""
    now = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(now, dict)

    def get(tree: Any, dotted: str) -> Any:
        for part in dotted.split("."):
            tree = tree.get(part) if isinstance(tree, dict) else None
        return tree

    for key in FIXED_ON_RESUME:
        for dotted, was, wants in _differences(get(trained, key), get(now, key), key):
            raise ConfigError(
                dotted,
                f"cannot change when resuming (the checkpoint was trained with {was!r}, not {wants!r}); "
                "start a new run with --out instead",
            )
    for side in ("source", "target"):
        key = f"data.{side}"
        was, wants = trained.get("data", {}).get(side), now["data"][side]
        if not isinstance(was, dict) or was == wants:
            continue
        before, after = _data_shape(was, key), _data_shape(wants, key)
        if before is not None and after is not None and before != after:
            dotted = _differences(was, wants, key)[0][0]
            raise ConfigError(
                dotted,
                f"cannot change when resuming: the networks were built for data of shape {before}, "
                f"this gives {after}; start a new run with --out instead",
            )


def _trained_config(state: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """The config a checkpoint was trained with (older checkpoints: the run's config.yaml)."""
    trained = state.get("config")
    if not isinstance(trained, dict):
        trained = OmegaConf.to_container(load_config(None, [], path=run_dir / "config.yaml"), resolve=True)
    assert isinstance(trained, dict)
    return trained


def train(cfg: DictConfig, run_dir: Path, resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Train (or continue) the run in ``run_dir``; returns the summary (empty on ranks > 0).

    With several processes every rank trains; only rank 0 writes logs, samples and checkpoints, and
    it holds a lock on the directory for the run's life. A new run refuses a directory that holds
    another run unless ``overwrite`` (which deletes that run's files first). Resuming takes the
    newest readable checkpoint (warning about unreadable ones) and raises :class:`RunFinished` when
    nothing is left to do. SIGINT and SIGTERM stop training at the end of the current iteration
    with a checkpoint and raise :class:`runtime.Interrupted`.
    """
    main = runtime.launch_rank() == 0
    if main and not resume:
        ckpt.check_new_run_dir(run_dir, overwrite)  # before building anything
    created = main and not run_dir.exists()
    lock = _claim_run_dir(run_dir, resume, overwrite) if main else None
    stop = runtime.GracefulStop()
    try:
        loaded = None
        if resume:
            loaded = ckpt.load_latest(run_dir, "resume")
            check_resume_config(_trained_config(loaded.state, run_dir), cfg)
        with stop:
            return _train(cfg, run_dir, loaded, stop)
    except runtime.Interrupted as e:
        run = stop.run
        e.step = None if run is None else run.step
        e.checkpoint = None if run is None or run.last_ckpt is None else str(run.last_ckpt)
        e.during = stop.phase
        raise
    finally:
        if lock is not None:
            lock.release()
            if created:
                ckpt.remove_if_unused(run_dir)  # a run that failed to start leaves no empty directory


def _claim_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> ckpt.RunLock:
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = ckpt.RunLock(run_dir, "resume" if resume else "out")
    if not resume:
        try:  # again, under the lock: another process may have started a run here meanwhile
            ckpt.check_new_run_dir(run_dir, overwrite)
        except ConfigError:
            lock.release()
            raise
        if overwrite:
            ckpt.clear_run(run_dir)
    return lock


def _train(
    cfg: DictConfig, run_dir: Path, loaded: ckpt.Loaded | None, stop: runtime.GracefulStop
) -> dict[str, Any]:
    from tqdm.auto import tqdm

    run = Run(cfg, run_dir)
    stop.run = run
    main = run.rank == 0
    metrics_path = run_dir / "metrics.jsonl"
    if loaded is not None:
        run.load_state_dict(loaded.state)
        run.last_ckpt = loaded.path
        if main:
            ckpt.set_aside(loaded.unreadable)
        if run.step >= run.total and (run_dir / "summary.json").is_file():
            raise RunFinished(run_dir, run.step, run.total)
    if main:
        if loaded is not None:
            _truncate_log(metrics_path, run.step)
            (run_dir / "summary.json").unlink(missing_ok=True)  # it describes where the run stopped before
        else:
            metrics_path.write_text("")
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)  # on resume: with any new overrides
    writer = Writer(run, metrics_path) if main else None
    if main:
        print(f"fastot.train: starting\n{start_block(run, loaded is not None)}", file=sys.stderr, flush=True)

    t0 = time.perf_counter() - run.elapsed
    window = run.window
    bar = tqdm(
        total=run.total,
        initial=run.step,
        disable=not (cfg.train.progress and main),
        dynamic_ncols=True,
        desc=f"{cfg.algorithm.name}",
    )
    restore_warnings = _route_warnings(bar)
    stop.phase = "training"  # a signal now waits for the end of the iteration
    for it in range(run.step, run.total):
        logs = run.iteration(it)
        run.step = it + 1
        run.elapsed = time.perf_counter() - t0
        for k, v in logs.items():
            window.setdefault(k, []).append(v)
        label = run.algo.snapshot_due(it)
        eval_due = bool(cfg.eval.every) and run.step % cfg.eval.every == 0
        log_due = run.step % cfg.train.log_every == 0 or run.step == run.total or eval_due
        fid_due = bool(cfg.eval.fid_every) and run.step % cfg.eval.fid_every == 0
        grid_due = bool(cfg.train.sample_every) and run.step % cfg.train.sample_every == 0
        if label is not None or log_due or fid_due or grid_due:
            # Nothing is written from a diverged run; every rank checks at the same steps.
            run.check_finite()
        if main and label is not None:
            _snapshot(run, label)
        if log_due:
            # losses are averaged over the logging window; schedule/phase values are current
            row = {
                "step": run.step,
                **{k: float(np.mean(v)) for k, v in host_values(window).items()},
                **run.algo.log_values(),
                "wall_time": round(run.elapsed, 3),
            }
            window.clear()
            if writer is not None:
                if eval_due:
                    row.update(_evaluate(run, cfg.eval.eval_n))
                writer.write(row)
                bar.set_postfix({k: f"{row[k]:.3g}" for k in ("loss_v", "loss_T") if k in row})
        if writer is not None and writer.fid is not None and fid_due:
            writer.write({"step": run.step, "fid": writer.fid(run.sampling_map, run.source)})
        if writer is not None and grid_due:
            writer.sample_grid()
        if run.step % cfg.train.ckpt_every == 0 or run.step == run.total:
            run.save_checkpoint()
        bar.update(1)
        if stop.requested(run.device):
            if run.last_ckpt != ckpt.checkpoint_path(run_dir, run.step):
                run.save_checkpoint()
            bar.close()
            raise runtime.Interrupted(stop.signum or signal.SIGTERM)  # SIGTERM: another rank's
    bar.close()
    restore_warnings()
    if run.last_ckpt is None or (main and ckpt.latest_checkpoint(run_dir) is None):
        run.save_checkpoint()
    stop.phase = "final evaluation"
    if stop.requested(run.device):  # a signal during the last iteration: the checkpoint is complete
        raise runtime.Interrupted(stop.signum or signal.SIGTERM)
    if writer is None:
        return {}
    writer.close()
    return finish(run, run.elapsed, t0)


def _evaluate(run: Run, n: int) -> dict[str, float]:
    cfg = run.cfg
    x, y = generate(run.sampling_map, run.source, n, cfg.eval.seed)
    return compute_metrics(
        list(cfg.eval.metrics), x, y, run.target, cfg.eval.seed, cfg.eval.ou_time, cfg.eval.mode_radius
    )


class Writer:
    """Rank 0's outputs during training: metrics.jsonl, TensorBoard, image sample grids."""

    def __init__(self, run: Run, metrics_path: Path) -> None:
        self.run = run
        self.log = metrics_path.open("a")
        self.tb = None
        if run.cfg.train.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise ConfigError("train.tensorboard", f"needs the tensorboard package ({e})") from None
            self.tb = SummaryWriter(str(run.run_dir / "tensorboard"))
        self.fid = PeriodicFID(run.cfg, run.device) if run.cfg.eval.fid_every else None

    def write(self, row: dict[str, Any]) -> None:
        self.log.write(json.dumps(row) + "\n")
        self.log.flush()
        if self.tb is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)):
                    self.tb.add_scalar(k, v, row["step"])

    def sample_grid(self) -> None:
        from fastot.train.images import save_grid

        run = self.run
        # The same seeded inputs every time, so successive grids show the same samples evolving.
        _, y = generate(run.sampling_map, run.source, run.cfg.train.sample_grid, run.cfg.eval.seed)
        if y.dim() != 4:
            return  # grids are for images; toys get their plots at the end
        grid = save_grid(y, run.run_dir / "samples" / f"{run.step:08d}.png")
        if self.tb is not None:
            self.tb.add_image("samples", grid, run.step, dataformats="HWC")

    def close(self) -> None:
        self.log.close()
        if self.tb is not None:
            self.tb.close()


def _snapshot(run: Run, label: str) -> None:
    x, y = generate(run.sampling_map, run.source, run.cfg.eval.snapshot_samples, run.cfg.eval.seed)
    out = run.run_dir / "snapshots"
    out.mkdir(exist_ok=True)
    np.savez(out / f"{run.step:08d}.npz", x=x.numpy(), y=y.numpy(), label=np.array(label))


def finish(run: Run, train_time: float, t0: float) -> dict[str, Any]:
    cfg = run.cfg
    x, y = generate(run.sampling_map, run.source, cfg.eval.n_samples, cfg.eval.seed)
    np.savez(run.run_dir / "samples.npz", x=x.numpy(), y=y.numpy())
    results = compute_metrics(
        list(cfg.eval.metrics), x, y, run.target, cfg.eval.seed, cfg.eval.ou_time, cfg.eval.mode_radius
    )
    if y.dim() == 4:
        from fastot.train.images import save_grid

        save_grid(y[: cfg.train.sample_grid], run.run_dir / "samples.png")
    if cfg.eval.plots:
        from fastot.train.plots import plot_losses, plot_run

        title = f"{cfg.preset or cfg.algorithm.name}, step {run.step}"
        if y.dim() == 2:
            ref = run.target.sample(len(y), torch.Generator().manual_seed(cfg.eval.seed + 1))
            plot_run(run.run_dir, x.numpy(), y.numpy(), ref.numpy(), title=title)
        else:  # images: the samples are in samples.png; the losses get their plot
            plot_losses(run.run_dir, title)
    summary = {
        **run_info(run),
        "preset_algorithm": cfg.algorithm.name,
        "steps": run.step,
        "metrics": results,
        "train_wall_time_s": round(train_time, 3),
        "wall_time_s": round(time.perf_counter() - t0, 3),
        "checkpoint": str(run.last_ckpt) if run.last_ckpt else None,
        "ema": run.ema is not None,
    }
    (run.run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
