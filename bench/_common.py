"""Shared machinery of the benchmark suite: cases, the ``setup(provider, case)`` factory, timing.

Every op benchmark times one callable per (provider, case):

* ``eager``: the pure-PyTorch reference through the public API (``backend="eager"``);
* ``compile``: ``torch.compile`` of the same reference, compiled and warmed up outside the timing;
* every fused backend available on the device (``cpp`` on CPU, ``cuda`` / ``triton`` on GPU).

``mode="forward"`` runs the op on inputs that require grad the way training does (so autograd
saves what backward needs); ``mode="forward+backward"`` also backpropagates a sum of the output.
Gradients are requested only where training requests them: the map loss needs d cost / d T(x),
not d cost / d x, and R1 needs the gradient with respect to the potential's input gradient.

The allocator is warmed for every provider alike (see :func:`warm_allocator`), so no provider
pays page faults that another does not.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
import functools
import gc
import importlib
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode

import fastot

DEVICE = torch.device(os.environ.get("FASTOT_BENCH_DEVICE", "cuda" if torch.cuda.is_available() else "cpu"))
MODES = ("forward", "forward+backward")
DTYPES = (torch.float32, torch.bfloat16)
THREADS = (1, 2)
IMAGE = (3, 256, 256)
SCALE = 1e-5  # tau of the quadratic costs (any non-negative value does the same work)
GAMMA = 0.5
R1_WEIGHT = 0.2
PSI_KIND = "kl"
# Seconds spent on the timed rounds of one benchmark (at least MIN_ROUNDS rounds are run).
TIME_BUDGET = float(os.environ.get("FASTOT_BENCH_BUDGET", "0.5"))
MIN_ROUNDS = 3
MAX_ROUNDS = 100
MIN_ROUND_SECONDS = 2e-3  # calls shorter than this are repeated inside one round

_MMAP_MAX, _TRIM_THRESHOLD, _ARENA_MAX = -4, -1, -8  # mallopt parameters from <malloc.h>
ALLOCATOR = "glibc malloc, warm: mmap off, no trim, one arena (freed memory is reused without page faults)"


# --- environment ------------------------------------------------------------------------


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if platform.system() != "Linux" or name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def warm_allocator() -> str:
    """Make glibc keep and reuse freed memory, so no large allocation page-faults on every call.

    By default glibc serves allocations of 32 MiB and more with a fresh ``mmap`` and unmaps them
    on free: every eager call at [64, 3, 256, 256] then page-faults its temporaries again (10-20 ms
    per 48 MiB here), while the fused CPU kernels reuse their own cached output buffers. With mmap
    off and trimming off, every provider reuses warm memory after its warm-up rounds.
    """
    libc = _libc()
    if libc is None:
        return "system allocator, default settings (not glibc)"
    ok = all(
        libc.mallopt(param, value) == 1
        for param, value in ((_ARENA_MAX, 1), (_MMAP_MAX, 0), (_TRIM_THRESHOLD, 2**31 - 1))
    )
    return ALLOCATOR if ok else "glibc malloc, default settings (mallopt refused)"


@functools.cache
def git_sha() -> str:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=9", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


@functools.cache
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def triton_version() -> str | None:
    try:
        import triton
    except ImportError:
        return None
    return str(triton.__version__)


@functools.cache
def device_name() -> str:
    if DEVICE.type == "cuda":
        return torch.cuda.get_device_name(DEVICE)
    return f"{cpu_model()} ({os.cpu_count()} logical CPUs)"


def environment() -> dict[str, Any]:
    """The extra_info fields shared by every benchmark of a run."""
    return {
        "device": DEVICE.type,
        "device_name": device_name(),
        "torch": torch.__version__,
        "triton": triton_version(),
        "fastot": fastot.__version__ if hasattr(fastot, "__version__") else None,
        "git_sha": git_sha(),
        "allocator": _allocator_state,
        "command": " ".join(["pytest", *sys.argv[1:]]),
    }


_allocator_state = "not warmed"


def init_run() -> None:
    """Called once per pytest run, before any benchmark."""
    global _allocator_state
    if DEVICE.type == "cpu":
        _allocator_state = warm_allocator()
    else:
        _allocator_state = "torch CUDA caching allocator (warm after the warm-up rounds)"


def fused_providers(device: torch.device = DEVICE) -> list[str]:
    # Triton on CPU tensors is the interpreter (TRITON_INTERPRET=1): a correctness tool, not a timing.
    interpreted = {"triton"} if device.type == "cpu" else set()
    return [b for b in fastot.available(device) if b != "eager" and b not in interpreted]


def providers(device: torch.device = DEVICE) -> list[str]:
    return ["eager", "compile", *fused_providers(device)]


@contextlib.contextmanager
def num_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def synchronize() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


# --- cases --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    """One row of the results: an op at a shape, dtype, mode and thread count."""

    op: str
    mode: str
    dtype: torch.dtype
    threads: int = 1
    batch: int = 0  # B of the image ops
    z: int = 0  # samples per input of the weak costs
    n: int = 0  # vector length of the Psi* ops

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    @property
    def shape(self) -> str:
        if self.n:
            return f"n={self.n}"
        img = "x".join(map(str, IMAGE))
        return f"B={self.batch} Z={self.z} {img}" if self.z else f"B={self.batch} {img}"

    @property
    def group(self) -> str:
        return f"{self.op} {self.shape} {self.dtype_name} {self.mode} threads={self.threads}"

    def __str__(self) -> str:
        shape = self.shape.replace("=", "").replace(" ", "-")
        return f"{shape}-{self.dtype_name}-{self.mode.replace('+', '_')}-t{self.threads}"

    @property
    def elements(self) -> int:
        """Elements of one source tensor (x, grad or t)."""
        return self.n if self.n else self.batch * math.prod(IMAGE)

    @property
    def bytes_moved(self) -> int:
        """DRAM traffic of the op as the fused kernels do it: every operand read or written once per pass.

        Forward reads the inputs; backward reads them again and writes the requested gradients.
        """
        n, s = self.elements, self.dtype.itemsize
        fwd_bwd = self.mode == "forward+backward"
        if self.op == "quadratic_cost":  # x, y -> [B]; backward writes dy
            units = 2 + (3 if fwd_bwd else 0)
        elif self.op == "r1_penalty":  # g -> scalar; backward writes dg
            units = 1 + (2 if fwd_bwd else 0)
        elif self.op in ("weak_quadratic_cost", "energy_kernel_cost"):  # x, y[Z] -> [B]; writes dy
            units = (1 + self.z) + ((1 + 2 * self.z) if fwd_bwd else 0)
        elif self.op == "psi_star":  # t -> value (+ saved derivative); backward reads 2, writes 1
            units = 2 + (3 if fwd_bwd else 0)
        elif self.op == "semi_dual_loss":  # cost, v_fake, v_real -> scalar; writes three gradients
            units = 3 + (3 if fwd_bwd else 0)
        else:
            raise ValueError(f"unknown op {self.op!r}")
        return units * n * s


def image_cases(op: str, batches: tuple[int, ...], zs: tuple[int, ...] = (0,)) -> list[Case]:
    return [
        Case(op, mode, dtype, threads, batch=b, z=z)
        for threads in THREADS
        for z in zs
        for b in batches
        for dtype in DTYPES
        for mode in MODES
    ]


def vector_cases(op: str, sizes: tuple[int, ...] = (64, 4096)) -> list[Case]:
    return [
        Case(op, mode, dtype, threads, n=n)
        for threads in THREADS
        for n in sizes
        for dtype in DTYPES
        for mode in MODES
    ]


# --- the factory --------------------------------------------------------------------------


def _inputs(case: Case) -> tuple[list[Tensor], list[Tensor]]:
    """(arguments, leaves that receive gradients) of one case, seeded."""
    g = torch.Generator().manual_seed(0)

    def randn(*shape: int, grad: bool = False) -> Tensor:
        t = torch.randn(*shape, generator=g).to(device=DEVICE, dtype=case.dtype)
        return t.requires_grad_(grad)

    if case.op in ("quadratic_cost",):
        x, y = randn(case.batch, *IMAGE), randn(case.batch, *IMAGE, grad=True)
        return [x, y], [y]
    if case.op == "r1_penalty":
        grad = randn(case.batch, *IMAGE, grad=True)
        return [grad], [grad]
    if case.op in ("weak_quadratic_cost", "energy_kernel_cost"):
        x, y = randn(case.batch, *IMAGE), randn(case.batch, case.z, *IMAGE, grad=True)
        return [x, y], [y]
    if case.op == "psi_star":
        t = randn(case.n, grad=True)
        return [t], [t]
    if case.op == "semi_dual_loss":
        args = [randn(case.n, grad=True) for _ in range(3)]
        return args, list(args)
    raise ValueError(f"unknown op {case.op!r}")


def _public(op: str, backend: str) -> Callable[..., Tensor]:
    """The public op with fixed hyper-parameters, on ``backend``."""
    if op == "quadratic_cost":
        return lambda x, y: fastot.quadratic_cost(x, y, SCALE, backend=backend)
    if op == "r1_penalty":
        return lambda g: fastot.r1_penalty(g, R1_WEIGHT, backend=backend)
    if op == "weak_quadratic_cost":
        return lambda x, y: fastot.weak_quadratic_cost(x, y, GAMMA, SCALE, backend=backend)
    if op == "energy_kernel_cost":
        return lambda x, y: fastot.energy_kernel_cost(x, y, GAMMA, SCALE, backend=backend)
    if op == "psi_star":
        return lambda t: fastot.psi_star(t, PSI_KIND, backend=backend)
    if op == "semi_dual_loss":
        return lambda c, f, r: fastot.semi_dual_loss(c, f, r, PSI_KIND, PSI_KIND, backend=backend)
    raise ValueError(f"unknown op {op!r}")


def _reference_fn(op: str) -> Callable[..., Tensor]:
    """The eager reference on the public op's (unflattened) inputs: what ``compile`` compiles."""
    ref = importlib.import_module(f"fastot.ops.{op}").reference
    if op == "quadratic_cost":
        return lambda x, y: ref(x.flatten(1), y.flatten(1), SCALE)
    if op == "r1_penalty":
        return lambda g: ref(g.flatten(1), R1_WEIGHT)
    if op == "weak_quadratic_cost":
        return lambda x, y: ref(x.flatten(1), y.flatten(2), GAMMA, SCALE)
    if op == "energy_kernel_cost":
        return lambda x, y: ref(x.flatten(1), y.flatten(2), GAMMA, SCALE)
    if op == "psi_star":
        return lambda t: ref(t, PSI_KIND)
    if op == "semi_dual_loss":
        return lambda c, f, r: ref(c, f, r, PSI_KIND, PSI_KIND)
    raise ValueError(f"unknown op {op!r}")


# One compiled function per op (and compile backend); dynamo specialises it per shape and dtype.
_compiled: dict[tuple[str, str], Callable[..., Tensor]] = {}


def compiled(op: str, compile_backend: str = "inductor") -> Callable[..., Tensor]:
    key = (op, compile_backend)
    if key not in _compiled:
        torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
        _compiled[key] = torch.compile(
            _reference_fn(op), backend=compile_backend, dynamic=False, fullgraph=True
        )
    return _compiled[key]


def setup(provider: str, case: Case, compile_backend: str = "inductor") -> Callable[[], Any]:
    """A zero-argument callable running ``case`` on ``provider``; its ``leaves`` attribute lists grad leaves.

    ``compile_backend`` selects the torch.compile backend of the ``compile`` provider (the suite
    uses ``"inductor"``; ``--benchmark-disable`` runs use ``"eager"`` to only check tracing).
    """
    args, leaves = _inputs(case)
    op_fn = compiled(case.op, compile_backend) if provider == "compile" else _public(case.op, provider)
    backward = case.mode == "forward+backward"

    def run() -> Any:
        for t in leaves:
            t.grad = None  # as optimizer.zero_grad(set_to_none=True) does before each step
        out = op_fn(*args)
        if backward:
            (out if out.dim() == 0 else out.sum()).backward()
            out = None
        synchronize()
        return out

    run.leaves = leaves  # type: ignore[attr-defined]
    return run


# --- memory -------------------------------------------------------------------------------


class _FusedOutputs(TorchDispatchMode):
    """Sums the bytes of large outputs of ``fastot::`` ops (served from fastot's output cache on CPU)."""

    def __init__(self) -> None:
        super().__init__()
        self.nbytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        out = func(*args, **(kwargs or {}))
        if func.namespace == "fastot":
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, Tensor) and t.untyped_storage().nbytes() >= (1 << 20):
                    t_bytes = t.untyped_storage().nbytes()
                    self.nbytes += t_bytes
        return out


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_memory(fn: Callable[[], Any], provider: str) -> tuple[int | None, str]:
    """Peak memory of one call of ``fn`` above what was resident before it: (bytes, method).

    CUDA: ``max_memory_allocated`` above the allocated bytes before the call. CPU: the rise of the
    resident-set high-water mark (VmHWM, reset through /proc/self/clear_refs) after returning all
    free heap pages to the OS (``malloc_trim``), so every temporary is counted as freshly touched
    memory. Large outputs of the fused C++ ops come from fastot's output cache, already resident
    from the warm-up rounds; their bytes are added, so the fused figure is an upper bound.
    """
    for t in getattr(fn, "leaves", ()):
        t.grad = None
    gc.collect()
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)
        torch.cuda.reset_peak_memory_stats(DEVICE)
        before = torch.cuda.memory_allocated(DEVICE)
        fn()
        return torch.cuda.max_memory_allocated(DEVICE) - before, "cuda max_memory_allocated"
    libc = _libc()
    try:
        if libc is not None:
            libc.malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status_kib("VmRSS")
    except (OSError, RuntimeError):
        return None, "unavailable (no /proc/self/clear_refs)"
    tracker = _FusedOutputs()
    with tracker if provider == "cpp" else contextlib.nullcontext():
        out = fn()
    peak = (_status_kib("VmHWM") - before) * 1024 + tracker.nbytes
    del out
    return max(peak, 0), "RSS high-water rise after malloc_trim (+ fused cached outputs)"


# --- running one benchmark ----------------------------------------------------------------


def _rounds(fn: Callable[[], Any]) -> tuple[int, int]:
    """(rounds, iterations) that fit TIME_BUDGET, from one timed call after the warm-up."""
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    iterations = max(1, math.ceil(MIN_ROUND_SECONDS / once))
    rounds = int(min(MAX_ROUNDS, max(MIN_ROUNDS, TIME_BUDGET // (once * iterations))))
    return rounds, iterations


def record(benchmark: Any, info: dict[str, Any], nbytes: int | None) -> None:
    """Fill ``benchmark.extra_info`` with the environment, ``info`` and the achieved bandwidth."""
    benchmark.extra_info.update(environment())
    benchmark.extra_info.update(info)
    if nbytes is not None:
        benchmark.extra_info["bytes"] = nbytes
        stats = getattr(benchmark, "stats", None)
        median = stats.stats.median if stats is not None else None
        if median:
            benchmark.extra_info["gbps"] = nbytes / median / 1e9


def time_callable(benchmark: Any, fn: Callable[[], Any], warmup_rounds: int = 0) -> None:
    """Time ``fn`` with pytest-benchmark: warm-up, then rounds sized to the time budget.

    The call that sizes the rounds is itself a warm-up round (it re-warms the allocator after
    :func:`peak_memory` trimmed it); ``warmup_rounds`` adds more.
    """
    if benchmark.disabled:
        benchmark(fn)
        return
    for _ in range(warmup_rounds):
        fn()
    rounds, iterations = _rounds(fn)
    benchmark.pedantic(fn, rounds=rounds, iterations=iterations, warmup_rounds=0)


def run_case(benchmark: Any, provider: str, case: Case) -> None:
    """Benchmark ``case`` on ``provider``: the body of every op benchmark."""
    benchmark.group = case.group
    disabled = benchmark.disabled
    with num_threads(case.threads):
        fn = setup(provider, case, compile_backend="eager" if disabled else "inductor")
        peak, method = None, None
        if not disabled:
            fn()  # compiles (compile provider) and fills caches; never timed
            peak, method = peak_memory(fn, provider)
        time_callable(benchmark, fn)
    record(
        benchmark,
        {
            "kind": "op",
            "op": case.op,
            "provider": provider,
            "shape": case.shape,
            "dtype": case.dtype_name,
            "mode": case.mode,
            "threads": case.threads,
            "peak_memory_bytes": peak,
            "peak_memory_method": method,
        },
        case.bytes_moved,
    )
