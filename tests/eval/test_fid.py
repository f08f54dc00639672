"""FID: the Fréchet distance, the FID Inception network, and the stats / fid command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from PIL import Image
from torch import nn

from fastot.eval import fid as FID
from fastot.eval import inception as INC
from fastot.eval.__main__ import main
from fastot.nn import MAPS, POTENTIALS, register_map, register_potential
from fastot.sampling import generate_images


def _spd(d: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


# ---------------------------------------------------------------------------------------------- distance
def test_identical_statistics_give_zero():
    mu, sigma = np.arange(6.0), _spd(6, 0)
    assert abs(FID.frechet_distance(mu, sigma, mu, sigma)) < 1e-6


def test_diagonal_covariances_match_the_closed_form():
    rng = np.random.default_rng(1)
    m1, m2 = rng.normal(size=5), rng.normal(size=5)
    v1, v2 = rng.uniform(0.1, 3, 5), rng.uniform(0.1, 3, 5)
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    got = FID.frechet_distance(m1, np.diag(v1), m2, np.diag(v2))
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)
    # singular (rank-deficient) covariances stay finite and close to the closed form
    v1[0] = v2[1] = 0.0
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert FID.frechet_distance(m1, np.diag(v1), m2, np.diag(v2)) == pytest.approx(expected, abs=1e-4)


def test_shape_checks():
    with pytest.raises(ValueError, match="shape"):
        FID.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_running_statistics_match_numpy():
    f = torch.from_numpy(np.random.default_rng(2).normal(size=(50, 7)))
    acc = FID.RunningStats()
    for chunk in f.split(13):
        acc.update(chunk)
    mu, sigma = acc.result()
    mu2, sigma2 = FID.statistics_of(f)
    np.testing.assert_allclose(mu, mu2, atol=1e-12)
    np.testing.assert_allclose(sigma, sigma2, atol=1e-10)


# ---------------------------------------------------------------------------------------------- Inception
def test_fid_inception_forward_and_layout():
    model = INC.FIDInceptionV3()
    assert sum(p.numel() for p in model.parameters()) == 23_850_960  # Inception v3, no aux head, 1008 classes
    keys = model.state_dict()
    assert keys["fc.weight"].shape == (1008, 2048)
    assert "Mixed_7c.branch3x3dbl_3b.bn.running_var" in keys and "Conv2d_1a_3x3.conv.weight" in keys
    with torch.inference_mode():
        y = model(torch.rand(2, 3, 299, 299) * 2 - 1)
    assert y.shape == (2, INC.FEATURE_DIM) and torch.isfinite(y).all() and (y >= 0).all()


def test_weight_file_loading(tmp_path):
    state = {k: v for k, v in INC.FIDInceptionV3().state_dict().items() if "num_batches" not in k}
    torch.save(state, tmp_path / INC.WEIGHTS_NAME)
    model = INC.load_fid_inception(tmp_path)  # a folder holding the file
    assert torch.equal(model.Mixed_6e.branch_pool.conv.weight, state["Mixed_6e.branch_pool.conv.weight"])
    assert not model.training
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match=r"other\.pth is not the FID Inception"):
        INC.load_fid_inception(tmp_path / "other.pth")
    with pytest.raises(FileNotFoundError, match=r"missing\.pth"):
        INC.load_fid_inception(tmp_path / "missing.pth")


def test_real_weights_if_present():
    try:
        path = INC.find_weights()
    except FileNotFoundError:
        pytest.skip("FID Inception weights not available (set FASTOT_FID_WEIGHTS to run this test)")
    model = INC.load_fid_inception(path)
    with torch.inference_mode():
        y = model(torch.zeros(1, 3, 64, 64))
    assert y.shape == (1, 2048) and (y >= 0).all() and y.sum() > 0


# ---------------------------------------------------------------------------------------------- CLI
def stand_in(x: torch.Tensor) -> torch.Tensor:
    """A cheap 12-d feature extractor: 2x2 average-pooled colours."""
    return F.adaptive_avg_pool2d(x, 2).flatten(1)


def _image_folder(root, n: int, seed: int, size: int = 8, bright: float = 1.0):
    root.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        arr = (rng.uniform(0, 255, (size, size, 3)) * bright).astype(np.uint8)
        Image.fromarray(arr).save(root / f"{i:03d}.png")
    return root


def test_stats_and_fid_cli_on_image_folders(tmp_path, capsys):
    a = _image_folder(tmp_path / "a", 16, 0)
    b = _image_folder(tmp_path / "b", 16, 1, bright=0.5)
    stats = tmp_path / "stats" / "a.npz"
    assert (
        main(["stats", "--data", str(a), "--out", str(stats), "--batch-size", "5"], extractor=stand_in) == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 16 and out["dim"] == 12 and out["shape"] == [3, 8, 8]
    mu, sigma = FID.load_stats(stats)
    assert mu.shape == (12,) and sigma.shape == (12, 12)

    assert main(["fid", "--images", str(a), "--ref", str(stats)], extractor=stand_in) == 0
    assert json.loads(capsys.readouterr().out)["fid"] == pytest.approx(0.0, abs=1e-6)
    res = tmp_path / "fid.json"
    assert main(["fid", "--images", str(b), "--ref", str(a), "--out", str(res)], extractor=stand_in) == 0
    far = json.loads(capsys.readouterr().out)["fid"]
    assert far > 0.1 and json.loads(res.read_text())["fid"] == far


def test_stats_of_the_digits(tmp_path, capsys):
    pytest.importorskip("sklearn")
    argv = ["stats", "--data", "digits", "--out", str(tmp_path / "d.npz"), "--limit", "50"]
    assert main(argv, extractor=stand_in) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 50


def test_cli_errors_name_the_path(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main(["stats", "--data", str(missing), "--out", str(tmp_path / "s.npz")], extractor=stand_in) == 2
    assert str(missing) in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["stats", "--data", str(empty), "--out", str(tmp_path / "s.npz")], extractor=stand_in) == 2
    assert str(empty) in capsys.readouterr().err
    a = _image_folder(tmp_path / "a", 4, 0)
    assert main(["stats", "--data", str(a), "--out", str(tmp_path / "x.npz"), "--weights", str(missing)]) == 2
    assert "weights" in capsys.readouterr().err
    assert main(["fid", "--run", str(a), "--ref", str(a)], extractor=stand_in) == 2
    assert "config.yaml" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- runs
class _TinyImageMap(nn.Module):
    def __init__(self, channels: int = 1, image_size: int = 8) -> None:
        super().__init__()
        self.z_dim = 0
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x, z=None):
        return torch.tanh(self.conv(x))


class _TinyImagePotential(nn.Module):
    def __init__(self, channels: int = 1, image_size: int = 8) -> None:
        super().__init__()
        self.lin = nn.Linear(channels * image_size * image_size, 1)

    def forward(self, y):
        return self.lin(y.flatten(1)).squeeze(-1)


@pytest.fixture
def image_run(tmp_path):
    pytest.importorskip("sklearn")
    from fastot.config import load_config
    from fastot.train.run import Run

    if "_fid_test_map" not in MAPS:
        register_map("_fid_test_map")(_TinyImageMap)
    if "_fid_test_potential" not in POTENTIALS:
        register_potential("_fid_test_potential")(_TinyImagePotential)
    spec = {
        "data": {
            "source": {"name": "gaussian_image", "channels": 1, "size": 8},
            "target": {"name": "digits", "size": 8, "channels": 1},
        },
        "networks": {"map": {"name": "_fid_test_map"}, "potential": {"name": "_fid_test_potential"}},
        "algorithm": {"name": "uotm"},
        "train": {"iterations": 1, "batch_size": 4, "ema": {"enabled": True, "decay": 0.9}, "threads": 1},
    }
    (tmp_path / "spec.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(spec)))
    cfg = load_config(None, [], path=tmp_path / "spec.yaml")
    run_dir = tmp_path / "run"
    run = Run(cfg, run_dir)
    with torch.no_grad():  # the EMA copy maps everything to 0, the raw map does not
        for p in run.ema.module.parameters():
            p.zero_()
    run_dir.mkdir()
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    run.save_checkpoint()
    return run_dir


def test_generate_images_uses_the_checkpoint_and_ema(image_run):
    y = generate_images(image_run, 10, batch_size=4, seed=0)
    assert y.shape == (10, 1, 8, 8) and torch.count_nonzero(y) == 0


def test_fid_cli_on_a_run(image_run, tmp_path, capsys):
    ref = _image_folder(tmp_path / "ref", 12, 3, size=16)
    argv = ["fid", "--run", str(image_run), "--ref", str(ref), "--n", "10", "--batch-size", "4"]
    assert main(argv, extractor=stand_in) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 10 and out["shape"] == [1, 8, 8] and np.isfinite(out["fid"]) and out["fid"] > 0
