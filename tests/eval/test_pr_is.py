"""Improved precision/recall, the Inception Score, and the fid command's --metrics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from test_fid import _image_folder, stand_in

from fastot.eval import fid as FID
from fastot.eval import inception as INC
from fastot.eval.__main__ import main
from fastot.eval.inception_score import inception_score, inception_score_of_logits
from fastot.eval.precision_recall import inside_manifold, knn_radii, precision_recall


# ---------------------------------------------------------------------------------------------- P&R
def _brute_force_pr(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    def radii(x):
        d = np.linalg.norm(x[:, None] - x[None], axis=-1)
        np.fill_diagonal(d, np.inf)
        return np.sort(d, axis=1)[:, k - 1]

    def inside(q, x, r):
        return (np.linalg.norm(q[:, None] - x[None], axis=-1) <= r[None]).any(1).mean()

    return inside(fake, real, radii(real)), inside(real, fake, radii(fake))


def test_a_set_against_itself_is_fully_precise_and_recalled():
    x = torch.randn(200, 16, generator=torch.Generator().manual_seed(0))
    assert precision_recall(x, x) == {"precision": 1.0, "recall": 1.0}


def test_far_apart_clouds_give_zero():
    g = torch.Generator().manual_seed(1)
    real, fake = torch.randn(100, 5, generator=g), torch.randn(120, 5, generator=g) + 100.0
    assert precision_recall(real, fake) == {"precision": 0.0, "recall": 0.0}


def test_one_dimensional_configuration_by_hand():
    # k = 1. Real points 0, 1, 3, 7 have radii 1, 1, 2, 4: the real manifold is [-1, 11].
    real = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    fake = torch.tensor([[-2.0], [2.5], [12.0], [10.0]])
    assert knn_radii(real, k=1).tolist() == [1.0, 1.0, 2.0, 4.0]
    # Fake radii 4.5, 4.5, 2, 2: the generated manifold is [-6.5, 7] U [8, 14]; 7 is on a boundary.
    assert knn_radii(fake, k=1).tolist() == [4.5, 4.5, 2.0, 2.0]
    assert precision_recall(real, fake, k=1) == {"precision": 0.5, "recall": 1.0}
    # Duplicates are neighbours at distance 0 (only the point itself is excluded), k = 3.
    real = torch.tensor([[0.0], [0.0], [0.0], [0.0], [5.0]])
    assert knn_radii(real, k=3).tolist() == [0.0, 0.0, 0.0, 0.0, 5.0]
    fake = torch.tensor([[0.0], [10.0], [10.5], [-0.1]])
    assert inside_manifold(fake, real, knn_radii(real, k=3)).tolist() == [True, True, False, False]


def test_two_dimensional_configuration_by_hand():
    # k = 3: each corner of the unit square has radius sqrt(2) (neighbours at 1, 1, sqrt 2); (3, 0) has
    # radius 3 (neighbours at 2, sqrt 5, 3).
    real = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [3.0, 0.0]])
    np.testing.assert_allclose(knn_radii(real).numpy(), [math.sqrt(2)] * 4 + [3.0], rtol=1e-12)
    # (0.5, 0.5) and (5.9, 0) are inside; (-1.5, 0.5) is sqrt(2.5) from the nearest corner, (3, 3.5) is
    # 3.5 from (3, 0) and sqrt(10.25) from (1, 1).
    fake = torch.tensor([[0.5, 0.5], [5.9, 0.0], [-1.5, 0.5], [3.0, 3.5]])
    assert inside_manifold(fake, real, knn_radii(real)).tolist() == [True, True, False, False]
    # With 4 generated points and k = 3, each radius reaches the farthest other point: the ball around
    # (0.5, 0.5) has radius |(0.5, 0.5) - (5.9, 0)| > 5 and covers every real point.
    assert precision_recall(real, fake) == {"precision": 0.5, "recall": 1.0}


def test_chunked_matches_unchunked_and_brute_force():
    g = torch.Generator().manual_seed(2)
    real = torch.randn(300, 8, generator=g)
    fake = 1.3 * torch.randn(250, 8, generator=g) + 0.4
    whole = precision_recall(real, fake, k=3, chunk=10_000)
    assert precision_recall(real, fake, k=3, chunk=37) == whole
    torch.testing.assert_close(knn_radii(real, chunk=37), knn_radii(real, chunk=10_000))
    p, r = _brute_force_pr(real.double().numpy(), fake.double().numpy(), 3)
    assert whole == {"precision": pytest.approx(p, abs=1e-12), "recall": pytest.approx(r, abs=1e-12)}
    assert 0.0 < whole["precision"] < 1.0 and 0.0 < whole["recall"] < 1.0


def test_precision_recall_checks():
    with pytest.raises(ValueError, match="more than 3 points"):
        knn_radii(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="dimension"):
        precision_recall(torch.zeros(5, 2), torch.zeros(5, 3))


# ---------------------------------------------------------------------------------------------- IS
def test_uniform_predictions_score_one():
    mean, std = inception_score(torch.full((50, 7), 1 / 7))
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


def test_confident_predictions_over_equally_used_classes_score_the_class_count():
    classes = 4
    probs = torch.eye(classes)[torch.arange(40) % classes]  # each split of 4 samples sees every class once
    for splits in (1, 10):
        mean, std = inception_score(probs, splits=splits)
        assert mean == pytest.approx(classes, rel=1e-12) and std == pytest.approx(0.0, abs=1e-12)
    mean, _ = inception_score_of_logits(50.0 * torch.eye(classes)[torch.arange(40) % classes], splits=10)
    assert mean == pytest.approx(classes, rel=1e-9)


def test_inception_score_by_hand():
    # p(y) = (0.75, 0.25); KLs log(4/3) and 0.5 log(4/3): the score is (4/3) ** 0.75
    mean, std = inception_score(np.array([[1.0, 0.0], [0.5, 0.5]]), splits=1)
    assert mean == pytest.approx((4 / 3) ** 0.75, rel=1e-12) and std == 0.0
    # uneven splits of 5 samples: [0:2] and [2:5]; scores 4/3 ** 0.75 and 1
    probs = np.array([[1.0, 0.0], [0.5, 0.5], [0.2, 0.8], [0.2, 0.8], [0.2, 0.8]])
    mean, std = inception_score(probs, splits=2)
    assert mean == pytest.approx(((4 / 3) ** 0.75 + 1) / 2, rel=1e-12)
    assert std == pytest.approx(((4 / 3) ** 0.75 - 1) / 2, rel=1e-12)
    with pytest.raises(ValueError, match="at least 10 samples"):
        inception_score(probs)


def test_inception_logits_head():
    model = INC.FIDInceptionV3(resize_input=False)
    f = torch.rand(3, INC.FEATURE_DIM)
    torch.testing.assert_close(model.logits(f), f @ model.fc.weight.T)
    torch.testing.assert_close(model.logits(f, bias=True), model.fc(f))
    with torch.inference_mode():
        x = torch.rand(1, 3, 75, 75) * 2 - 1  # the smallest input the network takes
        feats, logits = model.features_and_logits(x)
        torch.testing.assert_close(feats, model(x))
    assert logits.shape == (1, 1008)
    torch.testing.assert_close(logits, model.logits(feats))


# ---------------------------------------------------------------------------------------------- CLI
class StandInWithLogits:
    """The 12-d stand-in features with a fixed linear 5-class head."""

    def __init__(self) -> None:
        self.head = torch.randn(12, 5, generator=torch.Generator().manual_seed(0))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return stand_in(x)

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = stand_in(x)
        return f, 10 * f @ self.head


def test_fid_cli_with_all_metrics(tmp_path, capsys):
    a = _image_folder(tmp_path / "a", 16, 0)
    b = _image_folder(tmp_path / "b", 16, 1, bright=0.5)
    ex = StandInWithLogits()
    argv = ["fid", "--images", str(a), "--ref", str(a), "--metrics", "fid,pr,is", "--batch-size", "5"]
    assert main(argv, extractor=ex) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fid"] == pytest.approx(0.0, abs=1e-6)
    assert out["precision"] == out["recall"] == 1.0 and out["k"] == 3 and out["n_ref"] == 16
    assert out["is"] > 1.0 and out["is_std"] >= 0.0 and out["is_splits"] == 10

    res = tmp_path / "res.json"
    argv = ["fid", "--images", str(b), "--ref", str(a), "--metrics", "pr,is", "--out", str(res)]
    assert main(argv, extractor=ex) == 0
    out = json.loads(capsys.readouterr().out)
    assert "fid" not in out and out["precision"] == out["recall"] == 0.0  # far apart in feature space
    assert json.loads(res.read_text()) == out

    # the Inception Score needs no reference
    argv = ["fid", "--images", str(b), "--metrics", "is", "--is-splits", "4"]
    assert main(argv, extractor=ex) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ref"] is None and out["is_splits"] == 4 and out["is"] >= 1.0


def test_precision_recall_against_a_statistics_file_with_features(tmp_path, capsys):
    a = _image_folder(tmp_path / "a", 12, 0)
    b = _image_folder(tmp_path / "b", 12, 5)
    plain, full = tmp_path / "plain.npz", tmp_path / "full.npz"
    assert main(["stats", "--data", str(a), "--out", str(plain)], extractor=stand_in) == 0
    assert main(["stats", "--data", str(a), "--out", str(full), "--features"], extractor=stand_in) == 0
    capsys.readouterr()
    assert FID.load_stats(full)[0].shape == (12,) and FID.load_features(full).shape == (12, 12)

    results = []
    for ref in (a, full):
        argv = ["fid", "--images", str(b), "--ref", str(ref), "--metrics", "fid,pr"]
        assert main(argv, extractor=stand_in) == 0
        results.append(json.loads(capsys.readouterr().out))
    for key in ("fid", "precision", "recall", "n_ref"):
        assert results[0][key] == pytest.approx(results[1][key], rel=1e-6)

    assert main(["fid", "--images", str(b), "--ref", str(plain), "--metrics", "pr"], extractor=stand_in) == 2
    assert "--features" in capsys.readouterr().err


def test_metric_errors(tmp_path, capsys):
    a = _image_folder(tmp_path / "a", 10, 0)
    assert main(["fid", "--images", str(a), "--metrics", "is"], extractor=stand_in) == 2
    assert "logits" in capsys.readouterr().err
    assert main(["fid", "--images", str(a), "--ref", str(a), "--metrics", "fid,kid"], extractor=stand_in) == 2
    assert "unknown metric 'kid'" in capsys.readouterr().err
    assert main(["fid", "--images", str(a), "--metrics", "fid,pr"], extractor=stand_in) == 2
    assert "ref" in capsys.readouterr().err


def test_missing_weights_say_where_they_come_from(tmp_path, capsys, monkeypatch):
    a = _image_folder(tmp_path / "a", 4, 0)
    missing = tmp_path / "nowhere.pth"
    argv = ["fid", "--images", str(a), "--ref", str(a), "--inception-weights", str(missing)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "--inception-weights PATH" in err and INC.WEIGHTS_NAME in err
    assert "pytorch-fid" in err
    # nothing given, nothing in the default places
    monkeypatch.setenv(INC.WEIGHTS_ENV, str(missing))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError, match="--inception-weights PATH"):
        INC.find_weights()
