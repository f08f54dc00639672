"""Image datasets of one fixed shape ``[C, H, W]``: ``load(i)`` is uint8, ``dataset[i]`` float32 in [-1, 1].

Image folders, LMDB (CelebA-HQ), CIFAR-10 python batches, MNIST idx files, scikit-learn's digits
and CIFAR-10 with MNIST outliers; :func:`open_dataset` guesses which one a path holds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from fastot.data import formats
from fastot.data.formats import CorruptImageError, DatasetError
from fastot.data.transforms import check_channels, resize_array, set_channels, to_signed_unit


class ImageDataset(Dataset):
    """Base class: ``load(i)`` -> uint8 ``[C, H, W]`` (may raise CorruptImageError); ``[i]`` -> [-1, 1]."""

    shape: tuple[int, int, int]
    source: str = ""  # what the data were read from, for messages

    def __len__(self) -> int:
        raise NotImplementedError

    def load(self, index: int) -> Tensor:
        raise NotImplementedError

    def __getitem__(self, index: int) -> Tensor:
        return to_signed_unit(self.load(index))

    def release(self) -> None:
        """Free per-process handles before worker processes are forked (a later ``load`` reopens)."""


class ArrayDataset(ImageDataset):
    """Images held in memory as one uint8 tensor ``[N, C, H, W]``."""

    def __init__(self, images: Tensor | np.ndarray, source: str = "array") -> None:
        self.images = torch.as_tensor(images, dtype=torch.uint8)
        if self.images.dim() != 4 or self.images.shape[1] not in (1, 3):
            raise ValueError(f"images must be uint8 [N, 1 or 3, H, W], got {list(self.images.shape)}")
        if len(self.images) == 0:
            raise DatasetError(f"{source} holds no images")
        self.shape = tuple(self.images.shape[1:])
        self.source = source

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int) -> Tensor:
        return self.images[index]


class ImageFolderDataset(ImageDataset):
    """PNG/JPEG files under ``path`` (recursive); the shorter side resized to ``size``, centre-cropped."""

    def __init__(self, path: str | os.PathLike, size: int = 64, channels: int = 3) -> None:
        self.root = Path(path).expanduser()
        self.paths = formats.list_images(self.root)
        self.size, self.channels = int(size), check_channels(channels)
        self.shape = (self.channels, self.size, self.size)
        self.source = str(self.root)

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> Tensor:
        path = self.paths[index]
        img = formats.decode_image(path, self.channels, str(path))
        arr = formats.pil_to_hwc(formats.resize_center_crop(img, self.size))
        return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


_LMDB_ENVS: dict[tuple[str, int], Any] = {}


def _lmdb_env(path: Path) -> Any:
    """One read-only environment per path and process (LMDB refuses a second open in one process,
    and an environment must not cross a fork)."""
    key = (str(path.resolve()), os.getpid())
    env = _LMDB_ENVS.get(key)
    if env is None:
        lmdb = formats.import_lmdb()
        try:
            env = lmdb.open(
                str(path),
                readonly=True,
                lock=False,
                readahead=False,
                meminit=False,
                max_readers=64,
                subdir=path.is_dir(),
            )
        except lmdb.Error as e:
            raise DatasetError(f"LMDB {path} cannot be opened: {e}") from None
        _LMDB_ENVS[key] = env
    return env


def _close_lmdb_env(path: Path) -> None:
    env = _LMDB_ENVS.pop((str(path.resolve()), os.getpid()), None)
    if env is not None:
        env.close()


class LMDBDataset(ImageDataset):
    """Images in an LMDB environment (see :class:`fastot.data.formats.LMDBLayout` for the layouts).

    ``path`` is the environment (a folder with data.mdb) or a folder holding ``{split}.lmdb``, as
    CelebA-HQ 256 is laid out for the DDGAN code (``train.lmdb``, ``validation.lmdb``).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        size: int = 256,
        channels: int = 3,
        split: str = "train",
        layout: str = "auto",
        resolution: int | None = None,
    ) -> None:
        self.env_path = formats.lmdb_env_path(path, split)
        self.size, self.channels = int(size), check_channels(channels)
        self.shape = (self.channels, self.size, self.size)
        self.source = str(self.env_path)
        with _lmdb_env(self.env_path).begin(write=False) as txn:
            self.layout = formats.detect_lmdb_layout(txn, self.env_path, layout, resolution, self.size)
        if self.layout.length <= 0:
            raise DatasetError(f"LMDB {self.env_path} holds no images")

    def __len__(self) -> int:
        return self.layout.length

    def release(self) -> None:
        # LMDB refuses to open an environment that the parent process held open at fork time.
        _close_lmdb_env(self.env_path)

    def load(self, index: int) -> Tensor:
        key = self.layout.key(index)
        name = f"{self.env_path} key {key.decode()!r}"
        with _lmdb_env(self.env_path).begin(write=False) as txn:
            value = txn.get(key)
            if value is None:
                raise CorruptImageError(f"missing image {name}")
            value = bytes(value)
        img = formats.decode_lmdb_value(value, self.channels, name)
        arr = formats.pil_to_hwc(formats.resize_center_crop(img, self.size))
        return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def _hwc_to_nchw(images: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()


def cifar10_dataset(path: str | os.PathLike, split: str = "train", size: int = 32) -> ArrayDataset:
    """CIFAR-10 (python version batches) as 3 x size x size."""
    images = resize_array(_hwc_to_nchw(formats.load_cifar10(path, split)), size)
    return ArrayDataset(images, source=str(formats.cifar_dir(path)))


def mnist_dataset(
    path: str | os.PathLike, split: str = "train", size: int = 28, channels: int = 1
) -> ArrayDataset:
    """MNIST idx images, resized to size x size (bilinear), gray replicated to 3 channels if asked."""
    images = resize_array(_hwc_to_nchw(formats.load_mnist(path, split)), size)
    return ArrayDataset(set_channels(images, check_channels(channels)), source=str(path))


def digits_dataset(size: int = 32, channels: int = 3, split: str = "all") -> ArrayDataset:
    """scikit-learn's 8x8 digits of ``split`` ('all' 1,797, 'train' 1,437, 'test' 360; see
    :func:`fastot.data.digits.digit_split`) upsampled (bicubic) to size x size, white digits on black."""
    from fastot.data.digits import digit_images

    return ArrayDataset(digit_images(size, channels, split), source=f"sklearn digits ({split})")


def digits_outlier_dataset(
    size: int = 16, channels: int = 1, outlier_fraction: float = 0.01, outlier_seed: int = 0
) -> ArrayDataset:
    """The train digits plus ``outlier_fraction`` grey patches of scikit-learn's sample photographs;
    ``dataset.outliers`` marks the patches."""
    from fastot.data.digits import digits_with_outliers

    images, mask = digits_with_outliers(size, channels, outlier_fraction, outlier_seed)
    ds = ArrayDataset(images, source="sklearn digits (train) + sample-image patches")
    ds.outliers = mask
    return ds


def cifar10_mnist_outlier_dataset(
    cifar10_path: str | os.PathLike,
    mnist_path: str | os.PathLike,
    outlier_fraction: float = 0.01,
    split: str = "train",
    outlier_seed: int = 0,
) -> ArrayDataset:
    """CIFAR-10 plus ``round(outlier_fraction * len(CIFAR))`` MNIST images as 3x32x32 (gray replicated).

    The MNIST images are a random subset (seeded by ``outlier_seed``); they follow the CIFAR images, so
    ``dataset.outliers`` (a bool mask) marks them.
    """
    if not 0 <= outlier_fraction < 1:
        raise ValueError(f"outlier_fraction must be in [0, 1), got {outlier_fraction}")
    cifar = cifar10_dataset(cifar10_path, split).images
    mnist = formats.load_mnist(mnist_path, split)
    k = round(outlier_fraction * len(cifar))
    if k > len(mnist):
        raise DatasetError(f"MNIST file in {mnist_path} holds {len(mnist)} images, {k} outliers requested")
    pick = torch.randperm(len(mnist), generator=torch.Generator().manual_seed(outlier_seed))[:k].sort().values
    outliers = set_channels(resize_array(_hwc_to_nchw(mnist[pick.numpy()]), 32), 3)
    ds = ArrayDataset(torch.cat([cifar, outliers]), source=f"{cifar10_path} + {mnist_path}")
    ds.outliers = torch.cat([torch.zeros(len(cifar), dtype=torch.bool), torch.ones(k, dtype=torch.bool)])
    return ds


def open_dataset(path: str | os.PathLike, size: int | None = None, channels: int = 3) -> ImageDataset:
    """Guess a dataset's format from ``path``: CIFAR-10 batches, LMDB, an MNIST idx file, or an image folder;
    the word ``digits`` names scikit-learn's digits.

    ``size`` defaults to the native size (CIFAR 32, MNIST 28, LMDB 256, digits 32, folders: that of the
    first image).
    """
    if str(path) == "digits" and not Path(path).exists():
        return digits_dataset(size or 32, channels)
    p = Path(path).expanduser()
    if not p.exists():
        raise DatasetError(f"dataset path {p} does not exist")
    if p.is_dir() and any(
        (c / "data_batch_1").is_file() or (c / "test_batch").is_file() for c in (p, p / formats.CIFAR_DIR)
    ):
        split = "train" if any((c / "data_batch_1").is_file() for c in (p, p / formats.CIFAR_DIR)) else "test"
        return cifar10_dataset(p, split, size or 32)
    if (p / "data.mdb").is_file() or (p / "train.lmdb" / "data.mdb").is_file():
        return LMDBDataset(p, size or 256, channels)
    if p.is_file() and ("idx3" in p.name):
        return mnist_dataset(p, "train", size or 28, channels)
    if size is None:
        first = formats.list_images(p)[0]
        size = min(formats.decode_image(first, channels, str(first)).size)
    return ImageFolderDataset(p, size, channels)
