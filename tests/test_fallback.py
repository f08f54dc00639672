"""fastot imports and works on the eager backend whatever compiled part is missing."""

import subprocess
import textwrap

import torch
from fastot_testing import run_python

import fastot
from fastot._extension import STATUS


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    return run_python(["-c", textwrap.dedent(code)], env=env)


def test_extension_is_built_in_an_installed_fastot():
    assert STATUS.cpp, STATUS.why.get("cpp")


def test_auto_falls_back_to_eager_without_extensions(monkeypatch):
    monkeypatch.setattr(STATUS, "cpp", False)
    monkeypatch.setattr(STATUS, "triton", False)
    x, y = torch.randn(3, 4), torch.randn(3, 4)
    assert fastot.available("cpu") == ["eager"]
    torch.testing.assert_close(fastot.quadratic_cost(x, y), ((x - y) ** 2).sum(1))


def test_import_with_extensions_disabled():
    res = _run(
        """
        import torch, fastot
        from fastot._extension import STATUS
        assert not STATUS.cpp and not STATUS.triton
        x = torch.randn(4, 5, requires_grad=True)
        fastot.semi_dual_loss(fastot.quadratic_cost(x, x.detach() * 0), x[:, 0], x[:, 1]).backward()
        fastot.r1_penalty(x, 1.0).backward()
        print("ok", fastot.available("cpu"))
        """,
        FASTOT_DISABLE_EXTENSIONS="1",
    )
    assert res.returncode == 0, res.stderr
    assert "ok ['eager']" in res.stdout


def test_torch_version_mismatch_warns_once_and_uses_eager():
    # A build record from another torch: the .so must not even be loaded.
    res = _run(
        """
        import sys, types, warnings
        info = types.ModuleType("fastot._build_info")
        info.TORCH_VERSION, info.WITH_CUDA, info.TORCH_CUDA_VERSION = "1.13.0", False, None
        sys.modules["fastot._build_info"] = info
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            import torch, fastot
        msgs = [str(x.message) for x in w if "built against torch 1.13.0" in str(x.message)]
        assert len(msgs) == 1, msgs
        assert "fastot._C" not in sys.modules
        print(fastot.quadratic_cost(torch.ones(2, 3), torch.zeros(2, 3)).tolist(), fastot.available("cpu"))
        """
    )
    assert res.returncode == 0, res.stderr
    assert "[3.0, 3.0] ['eager'" in res.stdout


def test_import_without_triton_falls_back():
    # A missing Triton must leave fastot importable with STATUS.triton False and a reason.
    code = """
        import sys
        sys.modules["triton"] = None
        import torch, fastot
        from fastot._extension import STATUS
        assert not STATUS.triton, STATUS
        assert "Triton kernels unavailable" in STATUS.why["triton"], STATUS.why
        print("ok", fastot.quadratic_cost(torch.ones(2, 3), torch.zeros(2, 3)).tolist())
    """
    res = _run(code, TRITON_INTERPRET="1")
    assert res.returncode == 0, res.stderr
    assert "ok [3.0, 3.0]" in res.stdout
