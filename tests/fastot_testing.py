"""Shared test helpers: tolerances, input factories, the backends every op test runs on."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
import torch

from fastot._extension import STATUS
from fastot.ops._library import op_names

# (atol, rtol) against a float64 evaluation of the reference. float32 rows of up to
# 196608 elements carry ~1e-6 relative error; bfloat16 stores 8 mantissa bits (~4e-3).
TOL = {
    torch.float64: (1e-12, 1e-10),
    torch.float32: (1e-5, 2e-5),
    torch.bfloat16: (2e-2, 2e-2),
    torch.float16: (2e-3, 2e-3),
}
DTYPES = [torch.float64, torch.float32, torch.bfloat16, torch.float16]

# Every fastot:: op, the backward ops included: the C++ and CUDA kernels register each, and
# the Triton family has each with the suffix _triton. Derived from the ops' definitions.
OP_NAMES = op_names(include_backward=True)


def per_op(attr: str) -> dict:
    """``attr`` of every public op's own ``tests/test_<op>.py``: the cross-op tables (bad input,
    opcheck, torch.compile) take each op's calls from its file, so adding an op edits no table."""
    import importlib

    return {op: getattr(importlib.import_module(f"test_{op}"), attr) for op in op_names()}


# The fused CPU backend; tests that need it fail (not skip) when it was not built, because
# an installed fastot without its C++ kernels is a broken build.
CPU_FUSED = "cpp"


def assert_close(
    actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype, scale: float = 1.0
) -> None:
    atol, rtol = TOL[dtype]
    torch.testing.assert_close(actual.double(), expected.double(), atol=atol * scale, rtol=rtol)


def make(shape, dtype, contiguous: bool = True, requires_grad: bool = False, scale: float = 1.0):
    """A random tensor of ``shape``; non-contiguous ones are a strided view of a larger buffer."""
    if contiguous:
        t = torch.randn(shape, dtype=torch.float64) * scale
        t = t.to(dtype)
    else:
        # Transposing the last two dims of a wider buffer gives a non-contiguous view.
        shape = list(shape)
        big = (torch.randn([*shape[:-1], 2 * shape[-1]], dtype=torch.float64) * scale).to(dtype)
        t = big[..., ::2]
        assert not t.is_contiguous() or t.numel() <= 1
    return t.requires_grad_(requires_grad)


def shifted(shape, device: str) -> torch.Tensor:
    """A contiguous float32 tensor that starts one element into its buffer (not 16-byte aligned)."""
    n = 1
    for s in shape:
        n *= s
    return torch.randn(n + 1, dtype=torch.float32, device=device)[1:].view(shape)


def fused_available() -> bool:
    return STATUS.cpp


# Entries below this fraction of the largest expected magnitude are compared absolutely (at the
# dtype's atol times it): a sum that cancels keeps only the rounding of its largest terms.
SMALL = 1e-3


def check(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype, floor: float = 0.0) -> None:
    """``actual`` (any device) has ``expected``'s shape, the dtype under test, and every value within
    ``rtol * |expected|`` plus a small absolute ``atol * max(floor, SMALL * max|expected|)``.

    A failure names the first mismatching index and how many entries are off.
    """
    assert actual.shape == expected.shape and actual.dtype == dtype
    atol, rtol = TOL[dtype]
    a, e = actual.detach().cpu().double(), expected.detach().cpu().double()
    top = e.abs().max().item() if e.numel() else 0.0
    bound = rtol * e.abs() + atol * max(floor, SMALL * top)
    bad = ~((a - e).abs() <= bound) & ~(a.isnan() & e.isnan()) & ~(a == e)  # equal infinities pass
    if bad.any():
        first = tuple(int(i) for i in bad.nonzero()[0])
        raise AssertionError(
            f"{int(bad.sum())} of {e.numel()} entries off; first at {first}: got {a[first].item()!r}, "
            f"expected {e[first].item()!r} (allowed {bound[first].item():.3g}; {dtype}, "
            f"max|expected| {top:.3g})"
        )


# --- the backends ---------------------------------------------------------------------------

INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"
HAS_GPU = torch.cuda.is_available()


@dataclass(frozen=True)
class Backend:
    """A backend under test: the ``backend=`` argument and the device of its tensors."""

    name: str
    device: str

    @property
    def fused(self) -> bool:
        return self.name != "eager"

    def op(self, name: str):
        """This backend's compiled op ``fastot::<name>`` (the Triton ones end in ``_triton``)."""
        assert self.fused, "the eager backend has no compiled ops"
        return getattr(torch.ops.fastot, name + ("_triton" if self.name == "triton" else ""))

    def to(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` on this backend's device with the same strides (``.to`` would make a view contiguous)."""
        if self.device == "cpu":
            return t
        return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=self.device).copy_(t)

    def leaf(self, shape, dtype, contiguous: bool = True, scale: float = 1.0) -> torch.Tensor:
        """A random leaf requiring grad; a non-contiguous one is a strided view (see :func:`make`)."""
        return self.to(make(shape, dtype, contiguous, scale=scale)).requires_grad_()

    def require(self) -> None:
        """Skip when this machine cannot run the backend; fail when a build that should can't."""
        if self.name == "cpp" and not STATUS.cpp:
            # An installed fastot without its C++ kernels is a broken build, not a skip.
            pytest.fail(f"the C++ kernels did not load: {STATUS.why.get('cpp')}")
        if self.name == "cuda" and not STATUS.cuda:
            if STATUS.build.get("WITH_CUDA"):
                why = STATUS.why.get("cuda")
                pytest.fail(f"fastot was built with CUDA kernels but they did not load: {why}")
            pytest.skip("fastot was built without its CUDA kernels")
        if self.name == "triton" and not STATUS.triton:
            pytest.skip(STATUS.why.get("triton", "Triton is unavailable"))


def skip_gpu_sized(backend: Backend, elements: int) -> None:
    """A batch of CelebA-HQ-sized rows is a GPU case: minutes under the Triton interpreter, and
    the CPU backends cover long rows with one image."""
    if backend.device == "cpu" and elements > 10**6:
        pytest.skip("a batch of CelebA-HQ-sized rows: GPU backends only")


_NO_GPU = pytest.mark.skipif(not HAS_GPU, reason="no CUDA device")
_NO_INTERPRETER = pytest.mark.skipif(not INTERPRET, reason="CPU tensors need TRITON_INTERPRET=1")
BACKENDS = {
    "eager": pytest.param(Backend("eager", "cpu"), id="eager"),
    "cpp": pytest.param(Backend("cpp", "cpu"), id="cpp"),
    "triton-interpreted": pytest.param(
        Backend("triton", "cpu"), id="triton-interpreted", marks=[pytest.mark.triton, _NO_INTERPRETER]
    ),
    "cuda": pytest.param(Backend("cuda", "cuda"), id="cuda", marks=[pytest.mark.cuda, _NO_GPU]),
    "triton-compiled": pytest.param(
        Backend("triton", "cuda"), id="triton-compiled", marks=[pytest.mark.triton, pytest.mark.cuda, _NO_GPU]
    ),
}
FUSED = ("cpp", "triton-interpreted", "cuda", "triton-compiled")
GPU = ("cuda", "triton-compiled")
TRITON = ("triton-interpreted", "triton-compiled")


def backends(*names: str) -> list:
    """The ``backend`` fixture's parameters for a subset, by id: ``@pytest.mark.parametrize(
    "backend", backends("cpp", "cuda"), indirect=True)``. Without the mark a test runs on all."""
    return [BACKENDS[n] for n in names]


def run_python(args: list[str], env: dict[str, str | None] | None = None, timeout: float = 300):
    """Run ``python ARGS`` in a scratch directory; ``env`` entries set to None are unset.

    Never from the checkout: ``python -c`` puts the working directory first on sys.path, and the
    source tree's ``fastot`` would shadow the installed package under test.
    """
    import os
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as cwd:
        return subprocess.run(
            [sys.executable, *args],
            capture_output=True,
            text=True,
            env={k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None},
            timeout=timeout,
            cwd=cwd,
        )
