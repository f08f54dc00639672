"""Op benchmarks: each ``bench_<op>.py`` declares its op as an :class:`OpBench`; this runs its cases.

Every op benchmark times one callable per (provider, case):

* ``eager``: the pure-PyTorch reference through the public API (``backend="eager"``);
* ``compile``: ``torch.compile`` of the op's reference, compiled and warmed up outside the timing;
* every fused backend available on the device (``cpp`` on CPU, ``cuda`` / ``triton`` on GPU).

``mode="forward"`` runs the op on inputs that require grad the way training does (so autograd
saves what backward needs); ``mode="forward+backward"`` also backpropagates a sum of the output.
Gradients are requested only where training requests them (each op's ``inputs`` says which).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import torch
from _env import DEVICE, THREADS, num_threads, synchronize
from _memory import peak_memory
from _timing import record, time_callable
from torch import Tensor

MODES = ("forward", "forward+backward")
DTYPES = (torch.float32, torch.bfloat16)
IMAGE = (3, 256, 256)


@dataclasses.dataclass(frozen=True)
class Case:
    """One row of the results: a shape, dtype, mode and thread count."""

    mode: str
    dtype: torch.dtype
    threads: int = 1
    batch: int = 0  # B of the image ops
    z: int = 0  # samples per input of the weak costs
    n: int = 0  # vector length of the Psi* ops

    @property
    def backward(self) -> bool:
        return self.mode == "forward+backward"

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    @property
    def shape(self) -> str:
        if self.n:
            return f"n={self.n}"
        img = "x".join(map(str, IMAGE))
        return f"B={self.batch} Z={self.z} {img}" if self.z else f"B={self.batch} {img}"

    def __str__(self) -> str:
        shape = self.shape.replace("=", "").replace(" ", "-")
        return f"{shape}-{self.dtype_name}-{self.mode.replace('+', '_')}-t{self.threads}"

    @property
    def tensor_bytes(self) -> int:
        """Bytes of one source tensor (x, grad or t): the unit of an op's ``bytes_moved``."""
        return (self.n if self.n else self.batch * math.prod(IMAGE)) * self.dtype.itemsize


def image_cases(batches: tuple[int, ...], zs: tuple[int, ...] = (0,)) -> list[Case]:
    return [
        Case(mode, dtype, threads, batch=b, z=z)
        for threads in THREADS
        for z in zs
        for b in batches
        for dtype in DTYPES
        for mode in MODES
    ]


def vector_cases(sizes: tuple[int, ...] = (64, 4096)) -> list[Case]:
    return [
        Case(mode, dtype, threads, n=n)
        for threads in THREADS
        for n in sizes
        for dtype in DTYPES
        for mode in MODES
    ]


Randn = Callable[..., Tensor]  # randn(*shape, grad=False): seeded, on the device, in the case's dtype


@dataclasses.dataclass(frozen=True)
class OpBench:
    """What a benchmark file declares about its op.

    Attributes:
        name: the op (``fastot.<name>``).
        inputs: ``(case, randn) -> (arguments, leaves that receive gradients)``.
        public: ``backend -> f(*arguments)``, the public op with its hyper-parameters fixed.
        reference: ``f(*arguments)``, the eager reference on the same arguments: what ``compile`` compiles.
        bytes_moved: ``case -> bytes``: the DRAM traffic of the op as the fused kernels do it, every
            operand read or written once per pass (forward reads the inputs; backward reads them
            again and writes the requested gradients).
    """

    name: str
    inputs: Callable[[Case, Randn], tuple[list[Tensor], list[Tensor]]]
    public: Callable[[str], Callable[..., Tensor]]
    reference: Callable[..., Tensor]
    bytes_moved: Callable[[Case], int]


# One compiled function per op (and compile backend); dynamo specialises it per shape and dtype.
_compiled: dict[tuple[str, str], Callable[..., Tensor]] = {}


def compiled(op: OpBench, compile_backend: str = "inductor") -> Callable[..., Tensor]:
    key = (op.name, compile_backend)
    if key not in _compiled:
        torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
        _compiled[key] = torch.compile(op.reference, backend=compile_backend, dynamic=False, fullgraph=True)
    return _compiled[key]


def setup(op: OpBench, provider: str, case: Case, compile_backend: str = "inductor") -> Callable[[], Any]:
    """A zero-argument callable running ``case`` on ``provider``; its ``leaves`` attribute lists grad leaves.

    ``compile_backend`` selects the torch.compile backend of the ``compile`` provider (the suite
    uses ``"inductor"``; ``--benchmark-disable`` runs use ``"eager"`` to only check tracing).
    """
    g = torch.Generator().manual_seed(0)

    def randn(*shape: int, grad: bool = False) -> Tensor:
        return torch.randn(*shape, generator=g).to(device=DEVICE, dtype=case.dtype).requires_grad_(grad)

    args, leaves = op.inputs(case, randn)
    op_fn = compiled(op, compile_backend) if provider == "compile" else op.public(provider)

    def run() -> Any:
        for t in leaves:
            t.grad = None  # as optimizer.zero_grad(set_to_none=True) does before each step
        out = op_fn(*args)
        if case.backward:
            (out if out.dim() == 0 else out.sum()).backward()
            out = None
        synchronize()
        return out

    run.leaves = leaves  # type: ignore[attr-defined]
    return run


def run_case(benchmark: Any, op: OpBench, provider: str, case: Case) -> None:
    """Benchmark ``case`` of ``op`` on ``provider``: the body of every op benchmark."""
    benchmark.group = f"{op.name} {case.shape} {case.dtype_name} {case.mode} threads={case.threads}"
    disabled = benchmark.disabled
    with num_threads(case.threads):
        fn = setup(op, provider, case, compile_backend="eager" if disabled else "inductor")
        peak, method = None, None
        if not disabled:
            fn()  # compiles (compile provider) and fills caches; never timed
            peak, method = peak_memory(fn, provider)
        time_callable(benchmark, fn)
    record(
        benchmark,
        {
            "kind": "op",
            "op": op.name,
            "provider": provider,
            "shape": case.shape,
            "dtype": case.dtype_name,
            "mode": case.mode,
            "threads": case.threads,
            "peak_memory_bytes": peak,
            "peak_memory_method": method,
        },
        op.bytes_moved(case),
    )
