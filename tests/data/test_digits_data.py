"""fastot.data.digits: the split, the outlier data and the Gaussian of the digits' moments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastot.data import build_sampler
from fastot.data.digits import digit_split, digits_with_outliers, photo_patches


def test_train_and_test_split_the_digits_without_overlap():
    train, test = digit_split("train"), digit_split("test")
    assert len(np.intersect1d(train, test)) == 0
    assert np.array_equal(np.sort(np.concatenate([train, test])), digit_split("all"))
    assert 350 <= len(test) <= 370
    with pytest.raises(ValueError, match="split"):
        digit_split("val")


def test_outlier_data_holds_one_percent_photo_patches():
    images, mask = digits_with_outliers(16, 1, 0.01)
    assert images.shape[1:] == (1, 16, 16) and images.dtype == torch.uint8
    assert mask.sum() == round(0.01 * len(digit_split("train")))
    assert mask[-int(mask.sum()) :].all()
    patches = photo_patches(20)
    assert patches.float().std() > 20  # structure, not flat colour
    with pytest.raises(ValueError, match="outlier_fraction"):
        digits_with_outliers(16, 1, 1.5)


def test_the_gaussian_of_the_digits_has_their_moments():
    s = build_sampler({"name": "gaussian_digits", "size": 16}, "data.target")
    y = s.sample(20000, torch.Generator().manual_seed(0)).flatten(1).double()
    assert y.shape[1] == 256
    assert torch.allclose(y.mean(0), s.mean, atol=0.06)
    assert (torch.cov(y.T) - s.cov).abs().max() < 0.1
    assert torch.linalg.eigvalsh(s.cov).min() >= 1e-3 - 1e-9  # full rank after the ridge
    with pytest.raises(ValueError, match="channels"):
        build_sampler({"name": "gaussian_digits", "channels": 3}, "data.target")
