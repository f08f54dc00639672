"""An unreadable --inception-weights file: one line naming the file and what is expected, exit 2."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from fastot.eval import inception as INC
from fastot.eval.__main__ import main


class _NotATensor:
    pass


def _bad_files(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"definitely not a weight file")
    pickled = tmp_path / "object.pth"
    torch.save({"conv.weight": _NotATensor()}, pickled)  # needs weights_only=False: refused
    good = tmp_path / "tensors.pth"
    torch.save({"conv.weight": torch.zeros(2)}, good)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[:100])
    state = {k: v for k, v in INC.FIDInceptionV3().state_dict().items() if "num_batches" not in k}
    state["fc.weight"] = torch.zeros(10, 2048)
    shaped = tmp_path / "wrong_shape.pth"
    torch.save(state, shaped)
    return [garbage, pickled, cut, shaped]


def test_loader_raises_weights_error_naming_the_file(tmp_path):
    for path in _bad_files(tmp_path):
        with pytest.raises(INC.WeightsError) as info:
            INC.load_fid_inception(path)
        msg = str(info.value)
        assert str(path) in msg and INC.WEIGHTS_NAME in msg, msg
        assert "weights_only" not in msg and len(msg.splitlines()) == 1, msg


def test_cli_bad_weights_exit_2_with_one_line(tmp_path, capsys):
    images = tmp_path / "imgs"
    images.mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(images / f"{i}.png")
    out = tmp_path / "s.npz"
    for path in _bad_files(tmp_path)[:3]:
        argv = ["stats", "--data", str(images), "--out", str(out), "--inception-weights", str(path)]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("fastot.eval: error: "), err
        assert str(path) in err[0] and INC.WEIGHTS_NAME in err[0]
