"""The compiled parts load when they were built: the CUDA kernels of a CUDA build, the Triton
kernels wherever Triton is installed, each registered for every op."""

import importlib.util
import subprocess
import textwrap
from pathlib import Path

import pytest
import torch
from fastot_testing import HAS_GPU, OP_NAMES, run_python

import fastot
from fastot._extension import STATUS

NEEDS_TRITON = pytest.mark.skipif(
    importlib.util.find_spec("triton") is None,
    reason="Triton is not installed: fastot uses its other backends",
)


def test_cuda_build_loads_cuda_kernels():
    # A build that compiled the CUDA kernels must load them: importing needs no GPU.
    if STATUS.build.get("WITH_CUDA"):
        assert STATUS.cuda, STATUS.why.get("cuda")
    else:
        assert not STATUS.cuda
        assert STATUS.why.get("cuda"), "a missing CUDA backend must say why"


@pytest.mark.skipif(not STATUS.cuda, reason="fastot was built without its CUDA kernels")
@pytest.mark.parametrize("name", OP_NAMES)
def test_cuda_kernel_registered(name):
    assert torch._C._dispatch_has_kernel_for_dispatch_key(f"fastot::{name}", "CUDA")


@pytest.mark.triton
@NEEDS_TRITON
def test_triton_kernels_loaded():
    # Triton imports, so the kernels must have loaded: a failure here is a bug, not a skip.
    assert STATUS.triton, STATUS.why.get("triton")
    assert "triton" in fastot.available("cuda" if HAS_GPU else "cpu")


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    return run_python(["-c", textwrap.dedent(code)], env={"TRITON_INTERPRET": None, **env}, timeout=600)


@pytest.mark.triton
@NEEDS_TRITON
def test_triton_kernels_compile_for_a_cuda_target():
    # Compiles every kernel to a cubin for sm_80 (Triton ships ptxas), which checks what the
    # interpreter does not: constexpr-only globals, static dtype branches, scalar argument types.
    pytest.importorskip("triton.backends.nvidia.compiler", reason="Triton was built without its CUDA backend")
    res = _run(
        """
        import importlib
        import sys
        import triton
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
        import fastot  # noqa: F401
        from fastot.ops._library import op_names

        def mod(name):
            return importlib.import_module("fastot.kernels." + name)

        def jit(kernel):
            while not isinstance(kernel, triton.runtime.jit.JITFunction):
                kernel = kernel.fn
            return kernel

        sys.path.insert(0, TESTS)
        ops = op_names()
        FLOATS = {"scale", "coef", "w_over_b", "w0", "w1", "gamma", "alpha", "w_transport", "w_spread"}

        def build(kernel, constexprs, dt, acc_ptrs=()):
            fn = jit(kernel)
            sig = {}
            for name in fn.arg_names:
                if name in constexprs:
                    sig[name] = "constexpr"
                elif name.endswith("_ptr"):
                    sig[name] = "*" + (("fp64" if dt == "fp64" else "fp32") if name in acc_ptrs else dt)
                else:
                    sig[name] = "fp64" if name in FLOATS else "i32"
            src = ASTSource(fn=fn, signature=sig, constexprs=constexprs)
            return triton.compile(src, target=GPUTarget("cuda", 80, 32)).asm["cubin"]

        # Each op's jobs come from its own tests/test_<op>.py; the row finisher is shared.
        per_op = {op: importlib.import_module("test_" + op).triton_cuda_jobs(mod(op)) for op in ops}
        shared = [(mod("_launch")._finish_rows_kernel, {"TERMS": 2, "BLOCK_N": 16}, ("part_ptr",))]
        for op in ops:  # no kernel of an op goes unchecked
            kernels = {jit(v) for n, v in vars(mod(op)).items() if n.endswith("_kernel")}
            assert kernels == {jit(j[0]) for j in per_op[op]}, (op, kernels)
        for dt in ("fp32", "bf16", "fp64"):
            for kernel, constexprs, acc_ptrs in [*shared, *(j for jobs in per_op.values() for j in jobs)]:
                assert build(kernel, constexprs, dt, acc_ptrs), (kernel, dt)
        print("ok")
        """.replace("TESTS", repr(str(Path(__file__).parent))),
        TRITON_DEFAULT_FP_FUSION="1",
    )
    assert res.returncode == 0, res.stderr
    assert "ok" in res.stdout
