"""fastot.eval's run loading falls back past an unreadable latest checkpoint, like --resume does."""

from __future__ import annotations

import pytest

from fastot.errors import ConfigError
from fastot.eval.generate import load_run
from fastot.train import checkpoint as ckpt
from fastot.train.config import load_config
from fastot.train.loop import train

FAST = ["train.progress=false", "train.threads=1", "eval.plots=false", "eval.n_samples=200"]


def test_unreadable_latest_checkpoint_is_named_and_skipped(tmp_path):
    cfg = load_config(
        "uotm-outlier-1d", [*FAST, "train.iterations=4", "train.ckpt_every=2", "train.batch_size=16"]
    )
    train(cfg, tmp_path)
    found = ckpt.list_checkpoints(tmp_path)
    assert len(found) >= 2
    newest, previous = found[-1][1], found[-2][1]
    newest.write_bytes(newest.read_bytes()[:100])  # truncated, as by a full disk
    with pytest.warns(ckpt.CheckpointWarning, match=newest.name):
        run = load_run(tmp_path)
    good = ckpt.load(previous)
    for k, v in good["map"].items():
        assert (run.map.state_dict()[k] == v).all(), k


def test_a_run_without_readable_checkpoints_is_a_config_error(tmp_path):
    cfg = load_config("uotm-outlier-1d", [*FAST, "train.iterations=2", "train.batch_size=16"])
    train(cfg, tmp_path)
    for _, path in ckpt.list_checkpoints(tmp_path):
        path.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="no readable checkpoint"), pytest.warns(ckpt.CheckpointWarning):
        load_run(tmp_path)
