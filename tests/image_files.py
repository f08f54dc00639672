"""Small image datasets in the formats fastot reads, generated on the fly for tests."""

from __future__ import annotations

import gzip
import io
import pickle
import struct

import numpy as np
import pytest
from PIL import Image


def rgb(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def image_folder(root, n: int = 6, nested: bool = True):
    """n images of mixed sizes and formats (PNG RGB, PNG gray, JPEG), some in a subfolder."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "sub").mkdir(exist_ok=True)
    for i in range(n):
        folder = root / "sub" if nested and i % 2 else root
        arr = rgb(12 + i, 20 - i, i)
        if i % 3 == 0:
            Image.fromarray(arr).save(folder / f"img{i}.png")
        elif i % 3 == 1:
            Image.fromarray(arr[:, :, 0]).save(folder / f"img{i}.png")
        else:
            Image.fromarray(arr).save(folder / f"img{i}.jpg", quality=90)
    (root / "notes.txt").write_text("not an image")
    return root


def mirror_folder(root):
    """One 8x8 image whose left half is white and right half black."""
    root.mkdir(parents=True, exist_ok=True)
    arr = np.zeros((8, 8, 3), np.uint8)
    arr[:, :4] = 255
    Image.fromarray(arr).save(root / "half.png")
    return root


def cifar_batches(root, n_per_batch: int = 20):
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        data = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        batch = {
            b"batch_label": name.encode(),
            b"labels": rng.integers(0, 10, n_per_batch).tolist(),
            b"data": data,
            b"filenames": [f"f{i}.png".encode() for i in range(n_per_batch)],
        }
        with (d / name).open("wb") as f:
            pickle.dump(batch, f, protocol=2)
    return root


def write_idx(path, images: np.ndarray, gz: bool = False) -> None:
    header = struct.pack(">HBB", 0, 0x08, images.ndim) + struct.pack(f">{images.ndim}I", *images.shape)
    raw = header + images.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)


def mnist_images(n: int) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def write_lmdb(path, items: dict[bytes, bytes]) -> None:
    lmdb = pytest.importorskip("lmdb")
    path.parent.mkdir(parents=True, exist_ok=True)
    env = lmdb.open(str(path), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for k, v in items.items():
            txn.put(k, v)
    env.close()


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()
