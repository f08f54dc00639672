"""fastot.eval.digits: the fitted feature space is accurate, and its FD tells real digits from noise."""

from __future__ import annotations

import pytest
import torch

from fastot.data.digits import digit_images
from fastot.eval import digits


@pytest.fixture(scope="module")
def floor():
    return digits.digits_floor()


def test_the_feature_network_reaches_97_percent_on_held_out_digits():
    acc = digits.accuracy()
    assert acc["digits"] >= 0.97
    assert acc["patches"] >= 0.97  # the "not a digit" class flags photo patches it never saw


def test_fd_of_real_digits_is_far_below_noise_and_blurred_digits(floor):
    n = digits.fd_sample_size()
    noise = digits.digits_metrics(torch.rand(n, 1, 16, 16) * 2 - 1)
    assert noise["fd"] > 50 * floor["fd"]
    assert noise["outliers"] > 0.9 and noise["precision"] < 0.05
    # A milder corruption: the held-out digits blurred must score worse than the floor.
    held = digit_images(16, 1, "test").float() / 127.5 - 1
    blurred = torch.nn.functional.avg_pool2d(held, 3, 1, 1)
    assert digits.digits_metrics(blurred)["fd"] > 2 * floor["fd"]


def test_the_floor_is_real_against_real(floor):
    assert floor["nn_ratio"] == pytest.approx(1.0)
    assert floor["close_copies"] == pytest.approx(digits.COPY_QUANTILE, abs=0.01)
    assert floor["precision"] > 0.8 and floor["recall"] > 0.8
    assert floor["outliers"] < 0.01 and floor["class_tv"] < 0.1


def test_copies_of_training_digits_are_caught_by_the_memorisation_check(floor):
    from fastot.data.digits import digit_images as imgs

    train = imgs(16, 1, "train").float() / 127.5 - 1
    copies = digits.digits_metrics(train[: 2 * digits.fd_sample_size()])
    assert copies["nn_ratio"] < 0.01 and copies["close_copies"] == 1.0


def test_three_channel_32x32_images_are_scored_like_their_grey_16x16(floor):
    held = digit_images(32, 3, "test").float() / 127.5 - 1
    assert digits.digits_metrics(held)["fd"] < 1.5 * floor["fd"]


def test_too_few_or_misshaped_images_name_the_argument():
    with pytest.raises(ValueError, match="images"):
        digits.digits_metrics(torch.zeros(10, 1, 16, 16))
    with pytest.raises(ValueError, match="images"):
        digits.digits_metrics(torch.zeros(400, 2, 16, 16))


def test_a_corrupt_cache_file_is_refitted(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTOT_CACHE", str(tmp_path))
    monkeypatch.setattr(digits, "_LOADED", {})
    path = tmp_path / f"digits-features-{digits.recipe_hash()}.pt"
    path.write_bytes(b"not a checkpoint")
    monkeypatch.setattr(digits, "train_network", lambda: digits.DigitsNet().eval())
    net = digits.load_network()
    assert isinstance(net, digits.DigitsNet)
    assert torch.load(path, weights_only=True).keys() == net.state_dict().keys()


def test_the_command_line_names_a_missing_run(capsys, tmp_path):
    from fastot.eval.__main__ import main

    assert main(["digits", "--run", str(tmp_path / "nowhere")]) == 2
    assert "run" in capsys.readouterr().err
