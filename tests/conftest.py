import os

import torch

# Without a GPU, Triton kernels run on CPU tensors through the interpreter; triton.jit
# reads this when the kernels are defined, so it must be set before fastot is imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest
from fastot_testing import BACKENDS, Backend


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(params=list(BACKENDS.values()))
def backend(request) -> Backend:
    """Every backend an op runs on: eager, cpp, Triton interpreted, CUDA and Triton compiled."""
    request.param.require()
    return request.param
