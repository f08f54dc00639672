"""How the networks run: mixed precision, memory format, torch.compile, and several processes.

The algorithms call ``ctx.map`` and ``ctx.potential`` and hand their outputs to the fused ops;
:class:`Runner` wraps a network so that it runs under autocast (bf16 or fp16), takes
channels_last images, may be compiled, and always returns float32, so the cost, Ψ* and R1 ops see
one dtype. The wrapped network itself (what is checkpointed) is unchanged.

Several processes (``torchrun``) train data-parallel: every rank draws its own batches from its own
seeded stream and gradients are averaged with ``all_reduce`` after each backward (NCCL on GPU, gloo
on CPU). Averaging explicitly, instead of wrapping the networks in DistributedDataParallel, keeps
R1's double backward (``autograd.grad(..., create_graph=True)`` on the potential) and the map's
frozen copies (S-JKO, EMA) free of DDP's reducer hooks; the arithmetic is the same.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass
from types import FrameType

import torch
import torch.distributed as dist
from torch import Tensor, nn

from fastot.sampling import parse_device
from fastot.train.errors import ConfigError

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Runner(nn.Module):
    """Runs ``net`` under ``autocast_dtype`` with channels_last images and returns float32."""

    def __init__(
        self,
        net: nn.Module,
        device: torch.device,
        autocast_dtype: torch.dtype | None,
        channels_last: bool,
        compile: bool = False,
    ) -> None:
        super().__init__()
        self.net = net
        # Kept out of the module tree so state_dict keys stay those of ``net``.
        self._fn = [torch.compile(net) if compile else net]
        self.device_type = device.type
        self.autocast_dtype = autocast_dtype
        self.channels_last = channels_last

    @property
    def z_dim(self) -> int:
        return getattr(self.net, "z_dim", 0)

    def _layout(self, t: Tensor | None) -> Tensor | None:
        if self.channels_last and t is not None and t.dim() == 4:
            return t.contiguous(memory_format=torch.channels_last)
        return t

    def forward(self, *args: Tensor | None) -> Tensor:
        args = tuple(self._layout(a) for a in args)
        fn = self._fn[0]
        if self.autocast_dtype is None:
            out = fn(*args)
        else:
            with torch.autocast(self.device_type, dtype=self.autocast_dtype):
                out = fn(*args)
        return out.float()


@dataclass
class Precision:
    """Autocast dtype and, for fp16, one GradScaler per optimiser."""

    name: str
    device: torch.device

    def __post_init__(self) -> None:
        if self.name not in AMP_DTYPES:
            raise ConfigError("train.amp", f"must be one of {list(AMP_DTYPES)}, got {self.name!r}")
        self.dtype = AMP_DTYPES[self.name]
        enabled = self.name == "fp16"
        self.scalers = {
            k: torch.amp.GradScaler(self.device.type, enabled=enabled) for k in ("map", "potential")
        }

    def loss_scale(self, which: str) -> Tensor | float:
        """The factor fp16 losses are multiplied by before backward: the scaler's current scale as a
        device tensor (``get_scale()`` would read it back to the host), or 1.0 when not scaling."""
        scaler = self.scalers[which]
        return scaler.scale(torch.ones((), device=self.device)) if scaler.is_enabled() else 1.0

    def backward(self, loss: Tensor, which: str) -> None:
        self.scalers[which].scale(loss).backward()

    def step(self, opt: torch.optim.Optimizer, which: str, net: nn.Module, clip: float | None) -> None:
        scaler = self.scalers[which]
        scaler.unscale_(opt)  # true gradients for averaging and clipping
        average_gradients(net)
        if clip:
            torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
        scaler.step(opt)  # skipped by the scaler when fp16 gradients overflowed
        scaler.update()

    def state_dict(self) -> dict[str, dict]:
        return {k: s.state_dict() for k, s in self.scalers.items()}

    def load_state_dict(self, state: dict[str, dict]) -> None:
        for k, s in self.scalers.items():
            if state.get(k):
                s.load_state_dict(state[k])


# ---------------------------------------------------------------------------- several processes
def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available; under torchrun each process takes its LOCAL_RANK GPU."""
    device = parse_device(name)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return device


def fused_backend(device: torch.device) -> str:
    """The backend the fused ops resolve to on ``device``: cpp, cuda, triton or eager."""
    from fastot.ops._backend import resolve

    try:
        return resolve(device, None)
    except (RuntimeError, ValueError) as e:  # FASTOT_BACKEND names a backend that cannot run here
        raise ConfigError("FASTOT_BACKEND", str(e).removeprefix("fastot: ")) from None


def init_distributed(device: torch.device) -> tuple[int, int]:
    """(rank, world size); starts the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def launch_rank() -> int:
    """This process's rank as the launcher (torchrun) sets it, before the process group exists."""
    return int(os.environ.get("RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def average_gradients(net: nn.Module) -> None:
    n = world_size()
    if n == 1:
        return
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= n
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_parameters(*nets: nn.Module) -> None:
    """Make every rank start from rank 0's weights."""
    if world_size() == 1:
        return
    for net in nets:
        for t in [*net.parameters(), *net.buffers()]:
            dist.broadcast(t.data, src=0)


def all_gather_objects(obj: object) -> list[object]:
    if world_size() == 1:
        return [obj]
    out: list[object] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any of them."""
    if world_size() == 1:
        return flag
    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


# ---------------------------------------------------------------------------- stopping on a signal
class Interrupted(Exception):
    """SIGINT or SIGTERM stopped the run; ``step`` and ``checkpoint`` say where it can resume from."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.step: int | None = None
        self.checkpoint: str | None = None
        self.during = "training"

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # what a shell reports for a process the signal ended: 130, 143


class GracefulStop:
    """Catch SIGINT and SIGTERM (Ctrl-C, ``timeout``, a cluster's preemption notice) in the main thread.

    In the ``"training"`` phase a signal only records itself, and the loop stops at the end of the
    iteration, after writing a checkpoint. In the other phases, or on a second signal (the user
    insists), :class:`Interrupted` is raised at once. Signals the launcher ignores stay ignored.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self.phase = "start"  # then "training", then "final evaluation"
        self.run: object = None  # the run being trained, for the report of where it stopped
        self._previous: dict[int, object] = {}
        self._pid = os.getpid()

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is not threading.main_thread():
            return self  # Python delivers signals to the main thread only
        for sig in self.SIGNALS:
            previous = signal.getsignal(sig)
            if previous is signal.SIG_IGN:
                continue
            self._previous[sig] = previous
            signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)  # type: ignore[arg-type]
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self._pid:
            return  # a forked data-loader worker: its parent shuts it down
        first = self.signum is None
        self.signum = signum
        if not (first and self.phase == "training"):
            raise Interrupted(signum)

    # With several processes, agreeing on a stop is a collective and a host sync: ranks agree
    # every POLL_EVERY steps rather than every step, so a signal stops them that much later.
    POLL_EVERY = 8

    def requested(self, device: torch.device, step: int | None = None) -> bool:
        """Whether to stop after ``step`` (None: now, whatever the step). One process reads its
        own flag; several agree, all at the same steps, and stop together."""
        if step is not None and step % self.POLL_EVERY and world_size() > 1:
            return False
        return any_rank(self.signum is not None, device)
