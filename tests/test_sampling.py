"""fastot.sampling rebuilds a run's sampling map from its directory and draws exactly the samples the
training Run draws: same EMA weights, source stream and seeds, without optimisers or potential."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from fastot.config import load_config
from fastot.errors import ConfigError
from fastot.nn import POTENTIALS, register_potential
from fastot.rundir import list_checkpoints, load_checkpoint
from fastot.sample import main as sample_main
from fastot.sampling import (
    CheckpointWarning,
    generate,
    generate_images,
    load_map,
)
from fastot.train.loop import train
from fastot.train.run import Run

FAST = [
    "train.progress=false",
    "train.threads=1",
    "train.batch_size=16",
    "networks.map.width=16",
    "networks.potential.width=16",
    "eval.n_samples=100",
    "eval.plots=false",
    "train.iterations=4",
    "train.ckpt_every=2",
]


def _train_toy(run_dir: Path, *extra: str) -> Path:
    train(load_config("uotm-outlier-1d", [*FAST, *extra]), run_dir)
    return run_dir


def _training_run(run_dir: Path) -> Run:
    """The trainer's own view of the run: a training Run with the newest checkpoint loaded."""
    run = Run(load_config(None, [], path=run_dir / "config.yaml"), run_dir)
    run.load_state_dict(load_checkpoint(list_checkpoints(run_dir)[-1][1]))
    return run


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("toy_runs")
    return {
        "ema": _train_toy(root / "ema", "train.ema.enabled=true", "train.ema.decay=0.5"),
        "plain": _train_toy(root / "plain"),
    }


@pytest.mark.parametrize("kind", ["ema", "plain"])
def test_the_samples_are_those_of_the_training_run(toy_runs, kind, tmp_path):
    run_dir = toy_runs[kind]
    run = _training_run(run_dir)
    x_old, y_old = generate(run.sampling_map, run.source, 300, 7)
    trained = load_map(run_dir)
    x, y = trained.generate(300, 7)
    assert torch.equal(x, x_old) and torch.equal(y, y_old)
    assert trained.step == 4 and trained.checkpoint.name == "ckpt_00000004.pt"
    if kind == "ema":  # the EMA copy is what gets sampled, and it differs from the raw map
        assert not torch.equal(generate(run.map, run.source, 300, 7)[1], y)
    # The command line writes the same pairs, with the run's eval.seed by default.
    assert sample_main(["--run", str(run_dir), "--n", "300", "--out", str(tmp_path / "s.npz")]) == 0
    with np.load(tmp_path / "s.npz") as s:
        x_old, y_old = generate(run.sampling_map, run.source, 300, run.cfg.eval.seed)
        np.testing.assert_array_equal(s["x"], x_old.numpy())
        np.testing.assert_array_equal(s["y"], y_old.numpy())


def test_loading_builds_no_potential_or_optimiser_and_leaves_torch_seeded_as_it_was(toy_runs, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(toy_runs["ema"], run_dir)
    cfg = OmegaConf.load(run_dir / "config.yaml")
    cfg.networks.potential.name = "no-such-potential"
    cfg.optim.map.name = "no-such-optimiser"
    OmegaConf.save(cfg, run_dir / "config.yaml")
    before = torch.get_rng_state()
    trained = load_map(run_dir)
    assert torch.equal(torch.get_rng_state(), before)
    assert not trained.net.training and not any(p.requires_grad for p in trained.net.parameters())
    assert torch.equal(trained.generate(50, 3)[1], load_map(toy_runs["ema"]).generate(50, 3)[1])


def test_an_unreadable_latest_checkpoint_is_named_and_skipped(toy_runs, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(toy_runs["ema"], run_dir)
    found = list_checkpoints(run_dir)
    newest, previous = found[-1][1], found[-2][1]
    newest.write_bytes(newest.read_bytes()[:100])  # truncated, as by a full disk
    with pytest.warns(CheckpointWarning, match=newest.name):
        trained = load_map(run_dir)
    assert trained.checkpoint == previous and trained.step == 2
    good = load_checkpoint(previous)["ema"]
    for k, v in trained.net.state_dict().items():
        assert torch.equal(v, good[k]), k


def test_a_run_without_readable_checkpoints_is_a_config_error(toy_runs, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(toy_runs["plain"], run_dir)
    for _, path in list_checkpoints(run_dir):
        path.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="no readable checkpoint"), pytest.warns(CheckpointWarning):
        load_map(run_dir)


def test_what_is_not_a_run_directory_is_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_map(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match=r"config\.yaml not found"):
        load_map(tmp_path)


def test_a_config_edited_to_another_network_says_so(toy_runs, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(toy_runs["plain"], run_dir)
    cfg = OmegaConf.load(run_dir / "config.yaml")
    cfg.networks.map.width = 8
    OmegaConf.save(cfg, run_dir / "config.yaml")
    with pytest.raises(ConfigError, match=r"networks\.map: the checkpoint does not fit"):
        load_map(run_dir)


# ---------------------------------------------------------------------------- an image run
class _TinyPotential(nn.Module):
    def __init__(self, channels: int = 1, image_size: int = 16) -> None:
        super().__init__()
        self.lin = nn.Linear(channels * image_size * image_size, 1)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.lin(y.flatten(1)).squeeze(-1)


@pytest.fixture(scope="module")
def translation_run(tmp_path_factory) -> Iterator[Path]:
    """Digits to digits with the stochastic UNet (batch norm, noise channel), EMA and channels_last:
    the source is a dataset stream whose position the checkpoint holds."""
    pytest.importorskip("sklearn")
    name = "_sampling_test_potential"
    register_potential(name)(_TinyPotential)
    try:
        spec = {
            "data": {
                "source": {"name": "digits", "size": 16, "channels": 1},
                "target": {"name": "digits", "size": 16, "channels": 1},
            },
            "networks": {"map": {"name": "unet", "base": 4}, "potential": {"name": name}},
            "algorithm": {"name": "uotm"},
            "train": {
                "iterations": 3,
                "batch_size": 4,
                "ema": {"enabled": True, "decay": 0.5},
                "channels_last": True,
                "threads": 1,
                "progress": False,
            },
            "eval": {"n_samples": 8, "plots": False},
        }
        root = tmp_path_factory.mktemp("translation")
        (root / "spec.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(spec)))
        run_dir = root / "run"
        train(load_config(None, [], path=root / "spec.yaml"), run_dir)
        yield run_dir
    finally:
        POTENTIALS.pop(name)


def test_an_image_run_continues_its_source_stream_with_the_ema_map(translation_run):
    run = _training_run(translation_run)
    assert run.source.consumed > 0  # so the stream position matters
    x_old, y_old = generate(run.sampling_map, run.source, 10, 4)
    x, y = load_map(translation_run).generate(10, 4)
    assert torch.equal(x, x_old) and torch.equal(y, y_old)
    # Batches seeded per index, as FID draws them.
    run = _training_run(translation_run)
    old = [
        generate(run.sampling_map, run.source, m, 2 * 1_000_003 + b, chunk=m)[1]
        for b, m in enumerate((4, 4, 2))
    ]
    assert torch.equal(generate_images(translation_run, 10, batch_size=4, seed=2), torch.cat(old))
