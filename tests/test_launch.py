"""The shared Triton launcher: grids within CUDA's limits, every element visited exactly once."""

import pytest
import torch
from fastot_testing import backends

triton = pytest.importorskip("triton")
import triton.language as tl  # noqa: E402
from fastot.kernels import _launch  # noqa: E402

# CUDA: 2^31 - 1 programs on grid axis 0, 65,535 on axes 1 and 2.
CUDA_AXIS0, CUDA_AXIS12 = 2**31 - 1, 65_535


@pytest.fixture
def launch(backend):
    backend.require()
    return _launch


TRITON = pytest.mark.parametrize("backend", backends("triton-interpreted", "triton-compiled"), indirect=True)


@TRITON
@pytest.mark.parametrize(
    "rows, n, block",
    [
        (1, 64 * 3 * 256 * 256, 256),  # r1's backward: one flattened row, 49,152 blocks
        (1, 2**25, 256),  # 131,072 blocks: more than axis 1 could take
        (16, 3 * 256 * 256, 256),  # quadratic_cost's backward at the CelebA-HQ batch
        (64 * 5, 3 * 256 * 256, 1024),  # energy_kernel_cost's backward: B (Z + 1) output rows
        (2**20, 1, 256),  # many short rows
    ],
)
def test_elementwise_grid_is_one_axis_within_cuda_limits(launch, rows, n, block):
    grid = launch.block_grid(rows, n, block)
    assert len(grid) == 1 and grid[0] <= CUDA_AXIS0
    assert grid[0] == rows * -(-n // block)  # one program per (row, block), none missing


@TRITON
def test_a_grid_beyond_cuda_limits_is_refused_naming_the_shape(launch):
    with pytest.raises(ValueError, match=r"4096 rows of 2147483648 columns"):
        launch.block_grid(4096, 2**31, 256)


@TRITON
def test_row_sums_second_axis_stays_small(launch, backend):
    # Reductions split a row only into as many chunks as programs are needed to fill the device.
    for rows, d in [(1, 2**30), (3, 3 * 256 * 256), (1, 64 * 3 * 256 * 256)]:
        n_chunks, chunk = launch.split_rows(rows, d, torch.device(backend.device))
        assert n_chunks <= CUDA_AXIS12 and n_chunks * chunk >= d > (n_chunks - 1) * chunk


@triton.jit
def _visit_kernel(out_ptr, n, BLOCK_D: tl.constexpr):
    row, offs = _launch.row_block(n, BLOCK_D)
    m = offs < n
    p = out_ptr + row * n + offs
    tl.store(p, tl.load(p, mask=m) + 1, mask=m)


@TRITON
@pytest.mark.parametrize("rows, n, block", [(1, 1, 16), (3, 7, 16), (5, 33, 16), (2, 64, 16), (4, 100, 32)])
def test_row_block_visits_every_element_once(launch, backend, rows, n, block):
    out = torch.zeros(rows, n, dtype=torch.int32, device=backend.device)
    launch.blocks(_visit_kernel, rows, n, out, n, BLOCK_D=block)
    assert torch.equal(out.cpu(), torch.ones(rows, n, dtype=torch.int32))


@pytest.mark.parametrize(
    "module, kernel",
    [
        ("weak_quadratic_cost", "_weak_quadratic_cost_fwd_kernel"),
        ("weak_quadratic_cost", "_weak_quadratic_cost_bwd_kernel"),
        ("energy_kernel_cost", "_energy_sq_dist_kernel"),
        ("energy_kernel_cost", "_energy_bwd_kernel"),
    ],
)
def test_kernels_looping_over_samples_tune_per_sample_count(module, kernel):
    # A block tuned at Z = 2 is reused at Z = 64 unless Z is part of the key.
    import importlib

    tuner = getattr(importlib.import_module(f"fastot.kernels.{module}"), kernel)
    assert {"d", "Z"} <= set(tuner.keys)
