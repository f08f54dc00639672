"""Readers for on-disk image formats: image files, CIFAR-10 python batches, MNIST idx files, LMDB.

Everything here returns uint8 arrays (``[H, W, C]`` per image, or ``[N, H, W, C]`` for whole
datasets); scaling, resizing to the training size and flips live in :mod:`fastot.data.transforms`.
Errors name the path at fault.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import re
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

import numpy as np

from fastot.errors import ConfigError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


class DatasetError(ConfigError):
    """A dataset path that is missing, empty or not laid out as expected (the message names the path)."""

    def __init__(self, message: str) -> None:
        super().__init__("path", message)


class CorruptImageError(ValueError):
    """One image that cannot be decoded (the message names the file or the LMDB key)."""


# ---------------------------------------------------------------------------------------------- files
def check_dir(path: str | os.PathLike, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise DatasetError(f"{what} {p} does not exist")
    if not p.is_dir():
        raise DatasetError(f"{what} {p} is not a directory")
    return p


def list_images(root: str | os.PathLike) -> list[Path]:
    """All PNG/JPEG files under ``root`` (recursive, sorted by relative path, hidden entries skipped)."""
    root = check_dir(root, "image folder")
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(Path(dirpath) / name)
    if not found:
        raise DatasetError(f"image folder {root} holds no PNG or JPEG files")
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def decode_image(data: bytes | Path, channels: int, name: str):
    """Decode PNG/JPEG bytes (or a file) to a PIL image in RGB or L mode; raises CorruptImageError."""
    from PIL import Image, UnidentifiedImageError

    # DecompressionBombError: a header declaring more pixels than PIL agrees to decode; such a file
    # is skipped like any other unreadable one.
    try:
        src = data if isinstance(data, Path) else io.BytesIO(data)
        with Image.open(src) as img:
            img.load()
            return img.convert("RGB" if channels == 3 else "L")
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise CorruptImageError(f"cannot decode image {name}: {e}") from None


def resize_center_crop(img, size: int):
    """Resize the shorter side to ``size`` (bicubic) and crop the centre ``size`` x ``size`` square."""
    from PIL import Image

    w, h = img.size
    if (w, h) != (size, size):
        scale = size / min(w, h)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        img = img.resize((nw, nh), Image.Resampling.BICUBIC)
        left, top = (nw - size) // 2, (nh - size) // 2
        img = img.crop((left, top, left + size, top + size))
    return img


def pil_to_hwc(img) -> np.ndarray:
    arr = np.asarray(img, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


# ---------------------------------------------------------------------------------------------- CIFAR
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST = ("test_batch",)
CIFAR_DIR = "cifar-10-batches-py"


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles the plain dicts of bytes, lists and numpy arrays of a CIFAR batch; nothing else."""

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch")
        if module == "_codecs":
            import codecs

            return codecs.encode
        if name == "_reconstruct":
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # numpy < 2
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        return getattr(np, name)


def cifar_dir(path: str | os.PathLike) -> Path:
    """The folder holding the batches: ``path`` itself or ``path/cifar-10-batches-py``."""
    root = check_dir(path, "CIFAR-10 folder")
    for cand in (root, root / CIFAR_DIR):
        if (cand / CIFAR_TRAIN[0]).is_file() or (cand / CIFAR_TEST[0]).is_file():
            return cand
    raise DatasetError(
        f"CIFAR-10 folder {root} has no data_batch_1..5 / test_batch files "
        f"(expected the python version, {CIFAR_DIR})"
    )


def load_cifar10(path: str | os.PathLike, split: str = "train") -> np.ndarray:
    """CIFAR-10 images as uint8 ``[N, 32, 32, 3]``; ``split`` is "train" (50k), "test" (10k) or "all"."""
    names = {"train": CIFAR_TRAIN, "test": CIFAR_TEST, "all": CIFAR_TRAIN + CIFAR_TEST}
    if split not in names:
        raise ValueError(f"split must be one of {sorted(names)}, got {split!r}")
    root = cifar_dir(path)
    parts = []
    for name in names[split]:
        file = root / name
        if not file.is_file():
            raise DatasetError(f"CIFAR-10 batch {file} is missing")
        try:
            with file.open("rb") as f:
                batch = _CifarUnpickler(f, encoding="bytes").load()
            data = batch.get(b"data", batch.get("data")) if isinstance(batch, dict) else None
            arr = np.asarray(data, dtype=np.uint8)
            if arr.ndim != 2 or arr.shape[1] != 3 * 32 * 32:
                raise ValueError(f"'data' has shape {arr.shape}, expected [N, 3072]")
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
            raise DatasetError(f"CIFAR-10 batch {file} is not readable: {e}") from None
        parts.append(arr.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return np.ascontiguousarray(np.concatenate(parts))


# ---------------------------------------------------------------------------------------------- MNIST
MNIST_FILES = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}


def read_idx(file: str | os.PathLike) -> np.ndarray:
    """An idx file (optionally gzipped) as a numpy array; only unsigned-byte data is supported."""
    file = Path(file)
    opener = gzip.open if file.suffix == ".gz" else open
    try:
        with opener(file, "rb") as f:
            raw = f.read()
        zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
        if zero != 0 or dtype != 0x08 or ndim == 0:
            raise ValueError(f"bad magic number {raw[:4].hex()} (expected 0000 08 nn, unsigned bytes)")
        dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
        count = int(np.prod(dims))
        body = raw[4 + 4 * ndim :]
        if len(body) != count:
            raise ValueError(f"holds {len(body)} data bytes, the header says {count}")
    except (OSError, EOFError, struct.error, ValueError) as e:
        raise DatasetError(f"idx file {file} is not readable: {e}") from None
    return np.frombuffer(body, dtype=np.uint8).reshape(dims).copy()


def mnist_file(path: str | os.PathLike, split: str = "train") -> Path:
    """The images file of ``split``: ``path`` itself, or in ``path``, ``path/raw`` or ``path/MNIST/raw``."""
    p = Path(path).expanduser()
    if p.is_file():
        return p
    if split not in MNIST_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = check_dir(p, "MNIST folder")
    stem = MNIST_FILES[split]
    for folder in (root, root / "raw", root / "MNIST" / "raw"):
        for name in (stem, stem + ".gz", stem.replace("-idx3", ".idx3")):
            if (folder / name).is_file():
                return folder / name
    raise DatasetError(f"MNIST folder {root} has no {stem}[.gz] file")


def load_mnist(path: str | os.PathLike, split: str = "train") -> np.ndarray:
    """MNIST images as uint8 ``[N, 28, 28, 1]`` from idx files (raw or gzip)."""
    file = mnist_file(path, split)
    arr = read_idx(file)
    if arr.ndim != 3:
        raise DatasetError(f"idx file {file} holds a {arr.ndim}-d array, expected images [N, H, W]")
    if len(arr) == 0:
        raise DatasetError(f"idx file {file} holds no images")
    return arr[..., None]


# ---------------------------------------------------------------------------------------------- digits
def load_digits_images() -> np.ndarray:
    """scikit-learn's 1,797 handwritten 8x8 digits (shipped with the package) as float32 in [0, 1]."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError(
            f"the 'digits' data source needs scikit-learn (pip install scikit-learn): {e}"
        ) from None
    return (load_digits().images / 16.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------- LMDB
def import_lmdb():
    try:
        import lmdb
    except ImportError as e:
        raise ImportError(f"LMDB datasets need the lmdb package (pip install lmdb): {e}") from None
    return lmdb


def lmdb_env_path(path: str | os.PathLike, split: str = "train") -> Path:
    """The LMDB environment: ``path`` itself (holds data.mdb) or ``path/{split}.lmdb``."""
    root = Path(path).expanduser()
    if not root.exists():
        raise DatasetError(f"LMDB path {root} does not exist")
    if root.is_file() or (root / "data.mdb").is_file():
        return root
    cand = root / f"{split}.lmdb"
    if (cand / "data.mdb").is_file():
        return cand
    raise DatasetError(f"LMDB path {root} has neither data.mdb nor {split}.lmdb/data.mdb")


_RES_KEY = re.compile(rb"^(\d+)-0+$")


class LMDBLayout:
    """How images are keyed in an LMDB environment.

    * ``"index"``: keys ``b"0"``, ``b"1"``, ... (the CelebA-HQ 256 LMDB of the DDGAN / NVAE
      code: ``train.lmdb`` and ``validation.lmdb``, values raw RGB bytes of a square image, or
      encoded PNG/JPEG).
    * ``"resolution"``: keys ``f"{resolution}-{index:05d}"`` holding encoded images, plus a
      ``b"length"`` entry (the multi-resolution layout of StyleGAN2 data preparation scripts).
    """

    def __init__(self, kind: str, length: int, resolution: int | None = None) -> None:
        self.kind, self.length, self.resolution = kind, length, resolution

    def key(self, index: int) -> bytes:
        if self.kind == "index":
            return str(index).encode()
        return f"{self.resolution}-{index:05d}".encode()


def _first_keys(txn, limit: int) -> Iterable[bytes]:
    cur = txn.cursor()
    for i, key in enumerate(cur.iternext(keys=True, values=False)):
        if i >= limit:
            break
        yield bytes(key)


def detect_lmdb_layout(
    txn, env_path: Path, layout: str = "auto", resolution: int | None = None, size: int | None = None
) -> LMDBLayout:
    if layout not in ("auto", "index", "resolution"):
        raise ValueError(f"layout must be 'auto', 'index' or 'resolution', got {layout!r}")
    entries = txn.stat()["entries"]
    length_val = txn.get(b"length")
    if layout in ("auto", "resolution") and length_val is not None:
        try:
            length = int(bytes(length_val).decode())
        except ValueError:
            raise DatasetError(f"LMDB {env_path}: the 'length' entry is not an integer") from None
        if resolution is None:
            found = sorted(
                int(m.group(1)) for k in _first_keys(txn, 64) if (m := _RES_KEY.match(k)) is not None
            )
            if not found:
                raise DatasetError(f"LMDB {env_path} has a 'length' entry but no '<resolution>-00000' key")
            bigger = [r for r in found if size is None or r >= size]
            resolution = bigger[0] if bigger else found[-1]
        if txn.get(f"{resolution}-00000".encode()) is None and length > 0:
            raise DatasetError(f"LMDB {env_path} has no key '{resolution}-00000' (resolution {resolution})")
        return LMDBLayout("resolution", length, resolution)
    if layout in ("auto", "index") and txn.get(b"0") is not None:
        return LMDBLayout("index", entries)
    if entries == 0:
        raise DatasetError(f"LMDB {env_path} is empty")
    sample = b", ".join(_first_keys(txn, 3)).decode(errors="replace")
    raise DatasetError(
        f"LMDB {env_path}: unknown layout (first keys: {sample}); expected keys '0', '1', ... "
        "or '<resolution>-<index:05d>' with a 'length' entry"
    )


_MAGIC = (b"\x89PNG", b"\xff\xd8\xff")


def decode_lmdb_value(value: bytes, channels: int, name: str):
    """An LMDB value as a PIL image: encoded PNG/JPEG, or raw square RGB (or gray) bytes."""
    from PIL import Image

    if value.startswith(_MAGIC):
        return decode_image(value, channels, name)
    n = len(value)
    for c in (3, 1):
        side = round((n / c) ** 0.5)
        if side > 0 and side * side * c == n:
            arr = np.frombuffer(value, dtype=np.uint8).reshape(side, side, c)
            img = Image.fromarray(arr[:, :, 0] if c == 1 else arr, mode="L" if c == 1 else "RGB")
            return img.convert("RGB" if channels == 3 else "L")
    return decode_image(value, channels, name)
