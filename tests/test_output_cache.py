"""Large CPU outputs come from a buffer cache: reuse must never alias live results."""

import torch
from fastot_testing import run_python

import fastot


def _grad(x, y):
    y = y.detach().requires_grad_()
    (g,) = torch.autograd.grad(fastot.quadratic_cost(x, y, 1.0, backend="cpp").sum(), y)
    return g


def test_live_outputs_never_share_a_buffer():
    x = torch.randn(4, 3, 256, 256)  # 3 MiB per output: large enough to be cached
    y1, y2 = torch.randn_like(x), torch.randn_like(x)
    g1 = _grad(x, y1)
    g2 = _grad(x, y2)
    assert g1.data_ptr() != g2.data_ptr()
    torch.testing.assert_close(g1, 2 * (y1 - x))
    torch.testing.assert_close(g2, 2 * (y2 - x))


def test_freed_buffers_are_reused_and_fully_overwritten():
    x = torch.randn(4, 3, 256, 256)
    ptrs = set()
    for _ in range(6):
        y = torch.randn_like(x)
        g = _grad(x, y)
        torch.testing.assert_close(g, 2 * (y - x))
        ptrs.add(g.data_ptr())
        g.fill_(float("nan"))  # stale contents must never leak into the next result
        del g
    assert len(ptrs) <= 3, "freed outputs are not being reused"


def test_cache_can_be_disabled():
    code = (
        "import torch, fastot\n"
        "x = torch.randn(4, 3, 128, 128); y = torch.randn_like(x).requires_grad_()\n"
        "(g,) = torch.autograd.grad(fastot.quadratic_cost(x, y, backend='cpp').sum(), y)\n"
        "torch.testing.assert_close(g, 2 * (y.detach() - x)); print('ok')\n"
    )
    res = run_python(["-c", code], env={"FASTOT_CPU_CACHE_MB": "0"})
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr
