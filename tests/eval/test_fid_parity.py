"""fastot's FID Inception against pytorch-fid's, with the same (random) weights in both.

pytorch-fid needs torchvision, which the CPU-only test environment does not have; `.ci/cuda-build`
runs this file in its torch + torchvision environment. With the real weights file the two networks
are then the same function, so FID values computed by fastot are the standard ones.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fastot.eval import inception as INC

pytorch_fid = pytest.importorskip(
    "pytorch_fid.inception", reason="pytorch-fid (and torchvision) not installed"
)


def _random_fid_inception() -> INC.FIDInceptionV3:
    """Random weights and batch-norm statistics, so that every layer and its position matter."""
    torch.manual_seed(0)
    model = INC.FIDInceptionV3()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


@pytest.mark.parametrize("size", [32, 299])
def test_features_equal_pytorch_fid_with_the_same_weights(size, monkeypatch):
    ours = _random_fid_inception()
    # pytorch-fid fetches its weights with this function; hand it ours instead of downloading.
    monkeypatch.setattr(pytorch_fid, "load_state_dict_from_url", lambda *a, **k: ours.state_dict())
    theirs = pytorch_fid.InceptionV3([pytorch_fid.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    x01 = torch.rand(3, 3, size, size, generator=torch.Generator().manual_seed(size))  # pytorch-fid: [0, 1]
    with torch.inference_mode():
        expected = theirs(x01)[0].flatten(1)
        got = ours(x01 * 2 - 1)  # fastot: [-1, 1]
    assert expected.shape == got.shape == (3, INC.FEATURE_DIM)
    assert expected.std() > 0
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
