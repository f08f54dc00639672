"""A PNG whose header declares an enormous size is a corrupt image: skipped, counted, warned about."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from image_files import rgb
from PIL import Image

from fastot.data.dataset_samplers import image_folder
from fastot.data.formats import CorruptImageError, decode_image
from fastot.data.loader import CorruptImageWarning


def bomb_png(width: int = 20000, height: int = 10000) -> bytes:
    """A valid 8x8 PNG whose IHDR chunk is patched to declare ``width`` x ``height`` (CRC fixed)."""
    buf = io.BytesIO()
    Image.fromarray(rgb(8, 8, 0)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    assert data[12:16] == b"IHDR"  # 8-byte signature, then the IHDR chunk's length and type
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # CRC over type + 13 data bytes
    return bytes(data)


def test_the_patched_header_is_what_pil_refuses():
    # PIL refuses at open time once the size exceeds twice MAX_IMAGE_PIXELS (20000 x 10000 does): the
    # error that used to end training.
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(bomb_png()))


def test_decode_raises_corrupt_image_naming_the_file():
    with pytest.raises(CorruptImageError, match=r"bomb\.png"):
        decode_image(bomb_png(), 3, "bomb.png")


def test_training_stream_skips_and_counts_it(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(4):
        Image.fromarray(rgb(8, 8, i + 1)).save(root / f"ok{i}.png")
    (root / "bomb.png").write_bytes(bomb_png())
    s = image_folder(str(root), size=8, seed=0)
    with pytest.warns(CorruptImageWarning, match=r"bomb\.png"):
        x = np.concatenate([s.sample(4).numpy() for _ in range(3)])  # 12 images: over two epochs of 5
    assert x.shape == (12, 3, 8, 8)
    assert len(s.corrupt) == 1 and s.skipped >= 2
