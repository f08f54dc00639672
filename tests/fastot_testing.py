"""Shared test helpers: tolerances, input factories, the fused CPU backend under test."""

from __future__ import annotations

import torch

from fastot._extension import STATUS

# (atol, rtol) against a float64 evaluation of the reference. float32 rows of up to
# 196608 elements carry ~1e-6 relative error; bfloat16 stores 8 mantissa bits (~4e-3).
TOL = {
    torch.float64: (1e-12, 1e-10),
    torch.float32: (1e-5, 2e-5),
    torch.bfloat16: (2e-2, 2e-2),
    torch.float16: (2e-3, 2e-3),
}
DTYPES = [torch.float64, torch.float32, torch.bfloat16, torch.float16]

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


def fused_available() -> bool:
    return STATUS.cpp


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
