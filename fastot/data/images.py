"""Image data: datasets, transforms and the registered image samplers.

Datasets (``torch.utils.data.Dataset``) read uint8 images of one fixed shape ``[C, H, W]``:
image folders, LMDB (CelebA-HQ), CIFAR-10 python batches, MNIST idx files, scikit-learn's
digits (shipped with scikit-learn, the default for CPU image runs) and CIFAR-10 with 1% MNIST
outliers. ``dataset[i]`` is a float32 image in [-1, 1].

An :class:`ImageSampler` turns a dataset into a trainer data source: ``sample(n)`` returns
``[n, C, H, W]`` float32 in [-1, 1], drawn from a ``DataLoader`` (optional worker processes,
pinned memory under CUDA) over an endless stream of shuffled epochs. The order and the random
horizontal flips come from the sampler's own ``seed`` (the ``generator`` argument of ``sample``
is not used), and are drawn in the main process, so a seed gives the same batches whatever
``num_workers`` is. Without a ``seed`` it derives from ``torch.initial_seed()`` (the trainer
seeds torch with the run's seed before building the data) and the dataset's location. Corrupt
files are skipped with a warning and counted (``.skipped``), or raise with ``on_corrupt="error"``.

Image *sources* (``gaussian_image``, ``noise_upsampled``) draw from the generator passed to
``sample`` like the toy samplers. Image samplers expose ``.shape`` (and no ``.dim``).
"""

from __future__ import annotations

import inspect
import os
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from fastot.data import formats
from fastot.data.formats import CorruptImageError, DatasetError
from fastot.data.registry import register_sampler

ON_CORRUPT = ("skip", "error")

# The names this module registers (data sets, then image sources).
IMAGE_SAMPLERS = (
    "image_folder",
    "lmdb",
    "cifar10",
    "mnist",
    "digits",
    "cifar10_mnist_outlier",
    "gaussian_image",
    "noise_upsampled",
)


class CorruptImageWarning(UserWarning):
    """A corrupt image was skipped."""


# ---------------------------------------------------------------------------------------------- transforms
def to_signed_unit(images: Tensor) -> Tensor:
    """uint8 images (0..255) -> float32 in [-1, 1]."""
    return images.to(torch.float32).div_(127.5).sub_(1.0)


def to_uint8(images: Tensor) -> Tensor:
    """float images in [-1, 1] -> uint8 (0..255), rounded; out-of-range values are clipped."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round_().to(torch.uint8)


def hflip(images: Tensor) -> Tensor:
    """Mirror images left-right (the last axis)."""
    return images.flip(-1)


def random_hflip(images: Tensor, generator: torch.Generator | None = None, p: float = 0.5) -> Tensor:
    """Flip each image of a batch ``[B, C, H, W]`` with probability ``p``."""
    mask = torch.rand(images.shape[0], generator=generator) < p
    return torch.where(mask[:, None, None, None], images.flip(-1), images)


def resize_array(images: np.ndarray | Tensor, size: int, chunk: int = 2048) -> Tensor:
    """Resize uint8 ``[N, C, H, W]`` images to ``size`` x ``size`` (bilinear, antialiased when shrinking)."""
    x = torch.as_tensor(images)
    if x.shape[-2:] == (size, size):
        return x.to(torch.uint8).contiguous()
    out = torch.empty(x.shape[0], x.shape[1], size, size, dtype=torch.uint8)
    shrink = min(x.shape[-2:]) > size
    for i in range(0, x.shape[0], chunk):
        part = x[i : i + chunk].to(torch.float32)
        part = F.interpolate(part, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)
        out[i : i + chunk] = part.round_().clamp_(0, 255).to(torch.uint8)
    return out


def _check_channels(channels: int) -> int:
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    return channels


def _set_channels(images: Tensor, channels: int) -> Tensor:
    """uint8 ``[N, c, H, W]``, c in {1, 3} -> ``channels`` channels (gray replicated, or ITU-R 601 luma)."""
    c = images.shape[1]
    if c == channels:
        return images
    if channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (images.float() * w).sum(1, keepdim=True).round_().clamp_(0, 255).to(torch.uint8)


# ---------------------------------------------------------------------------------------------- datasets
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
        self.size, self.channels = int(size), _check_channels(channels)
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


def _lmdb_env(path: Path):
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
        self.size, self.channels = int(size), _check_channels(channels)
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
    return ArrayDataset(_set_channels(images, _check_channels(channels)), source=str(path))


def digits_dataset(size: int = 32, channels: int = 3) -> ArrayDataset:
    """scikit-learn's 1,797 8x8 digits upsampled (bicubic) to size x size, white digits on black."""
    x = torch.from_numpy(formats.load_digits_images())[:, None]  # [N, 1, 8, 8] in [0, 1]
    x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)
    images = (x.clamp(0, 1) * 255).round_().to(torch.uint8)
    return ArrayDataset(_set_channels(images, _check_channels(channels)), source="sklearn digits")


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
    outliers = _set_channels(resize_array(_hwc_to_nchw(mnist[pick.numpy()]), 32), 3)
    ds = ArrayDataset(torch.cat([cifar, outliers]), source=f"{cifar10_path} + {mnist_path}")
    ds.outliers = torch.cat([torch.zeros(len(cifar), dtype=torch.bool), torch.ones(k, dtype=torch.bool)])
    return ds


# ---------------------------------------------------------------------------------------------- sampling
class _Bad:
    """Stands in for an image that could not be read (collated away, its message reported)."""

    def __init__(self, message: str) -> None:
        self.message = message


class _Items(Dataset):
    """Reads ``(index, flip)`` pairs: a float [-1, 1] image, mirrored when ``flip``."""

    def __init__(self, dataset: ImageDataset, on_corrupt: str) -> None:
        self.dataset, self.on_corrupt = dataset, on_corrupt

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, bool]) -> Tensor | _Bad:
        index, flip = item
        try:
            x = self.dataset.load(index)
        except CorruptImageError as e:
            if self.on_corrupt == "error":
                raise
            return _Bad(str(e))
        x = to_signed_unit(x)
        return x.flip(-1) if flip else x


def _collate(items: list[Tensor | _Bad]) -> tuple[Tensor, list[str]]:
    good = [x for x in items if not isinstance(x, _Bad)]
    bad = [x.message for x in items if isinstance(x, _Bad)]
    return (torch.stack(good) if good else torch.empty(0)), bad


def _epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + epoch * 7_919 + 0x5EED) % (2**63)


class InfiniteIndexSampler(torch.utils.data.Sampler):
    """An endless stream of ``(index, flip)``: one seeded permutation per epoch (sharded across ranks)."""

    def __init__(
        self,
        n: int,
        seed: int = 0,
        shuffle: bool = True,
        flip: bool = False,
        rank: int = 0,
        world: int = 1,
        start: int = 0,
    ) -> None:
        self.n, self.seed, self.shuffle, self.flip, self.rank, self.world = (
            n,
            seed,
            shuffle,
            flip,
            rank,
            world,
        )
        self.start = start  # items of the stream already consumed (a resumed run continues after them)

    def epoch_items(self, epoch: int) -> list[tuple[int, bool]]:
        g = torch.Generator().manual_seed(_epoch_seed(self.seed, epoch))
        order = torch.randperm(self.n, generator=g) if self.shuffle else torch.arange(self.n)
        flips = torch.rand(self.n, generator=g) < 0.5 if self.flip else torch.zeros(self.n, dtype=torch.bool)
        keep = slice(self.rank, None, self.world)
        return list(zip(order[keep].tolist(), flips[keep].tolist(), strict=True))

    def __iter__(self) -> Iterator[tuple[int, bool]]:
        epoch, skip = divmod(self.start, self.per_epoch())
        while True:
            yield from self.epoch_items(epoch)[skip:]
            epoch, skip = epoch + 1, 0

    def per_epoch(self) -> int:
        return len(range(self.rank, self.n, self.world))


def _rank_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class ImageSampler:
    """``sample(n) -> [n, C, H, W]`` float32 in [-1, 1] from ``dataset``, endlessly, epoch after epoch.

    The DataLoader starts at the first ``sample`` call; its batch size is ``loader_batch`` (default:
    the ``n`` of that first call, so training batches come straight from the loader, pinned under
    CUDA). Other sizes are served from a buffer. ``epoch`` counts complete passes consumed so far.
    Under torch.distributed every rank reads its own shard of each epoch's permutation.
    """

    def __init__(
        self,
        dataset: ImageDataset,
        *,
        flip: bool = True,
        shuffle: bool = True,
        seed: int | None = None,
        num_workers: int = 0,
        pin_memory: bool | None = None,
        loader_batch: int | None = None,
        prefetch_factor: int = 2,
        on_corrupt: str = "skip",
    ) -> None:
        if on_corrupt not in ON_CORRUPT:
            raise ValueError(f"on_corrupt must be 'skip' or 'error', got {on_corrupt!r}")
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        self.dataset = dataset
        self.shape = tuple(dataset.shape)
        if seed is None:  # follows torch.manual_seed (the run's seed), distinct per dataset
            seed = (torch.initial_seed() + zlib.crc32(dataset.source.encode())) % 2**63
        self.flip, self.shuffle, self.seed = bool(flip), bool(shuffle), int(seed)
        self.num_workers, self.prefetch_factor = int(num_workers), int(prefetch_factor)
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else bool(pin_memory)
        self.loader_batch = loader_batch
        self.on_corrupt = on_corrupt
        self.skipped = 0  # corrupt reads skipped (a file is counted each time it comes up)
        self.corrupt: set[str] = set()  # messages of the distinct corrupt images seen
        self.consumed = 0  # images handed out plus corrupt ones skipped
        self._loader: DataLoader | None = None
        self._it: Iterator | None = None
        self._buffer: list[Tensor] = []
        self._since_good = 0
        self._per_epoch = len(dataset)

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def epoch(self) -> int:
        """Complete passes over the dataset (this rank's shard) consumed by ``sample``."""
        return self.consumed // self._per_epoch

    def _start(self, n: int) -> None:
        rank, world = _rank_world()
        if self.num_workers > 0:
            self.dataset.release()
        indices = InfiniteIndexSampler(
            len(self.dataset), self.seed, self.shuffle, self.flip, rank, world, start=self.consumed
        )
        self._per_epoch = indices.per_epoch()
        extra: dict[str, Any] = {}
        if self.num_workers > 0:
            extra = {"persistent_workers": True, "prefetch_factor": self.prefetch_factor}
        self._loader = DataLoader(
            _Items(self.dataset, self.on_corrupt),
            batch_size=int(self.loader_batch or n),
            sampler=indices,
            num_workers=self.num_workers,
            collate_fn=_collate,
            pin_memory=self.pin_memory,
            drop_last=False,
            **extra,
        )
        self._it = iter(self._loader)

    def _next_batch(self) -> Tensor:
        assert self._it is not None
        batch, bad = next(self._it)
        self.consumed += len(bad)  # readable images count when ``sample`` hands them out
        if bad:
            for msg in bad:
                self.skipped += 1
                if msg not in self.corrupt:
                    self.corrupt.add(msg)
                    warnings.warn(
                        f"skipped a corrupt image ({len(self.corrupt)} so far, {self.skipped} skips): {msg}",
                        CorruptImageWarning,
                        stacklevel=3,
                    )
            self._since_good = 0 if len(batch) else self._since_good + len(bad)
            if self._since_good >= self._per_epoch:
                raise DatasetError(f"no readable image in {self.dataset.source} (all {len(self)} corrupt)")
        elif len(batch):
            self._since_good = 0
        return batch

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` images, float32 ``[n, C, H, W]`` in [-1, 1]; ``generator`` is unused (see the module doc)."""
        if self._it is None:
            self._start(n)
        have = sum(len(b) for b in self._buffer)
        self.consumed += n
        if not self._buffer:  # the common case: one loader batch of exactly n images
            batch = self._next_batch()
            if len(batch) == n:
                return batch
            self._buffer, have = [batch], len(batch)
        while have < n:
            batch = self._next_batch()
            self._buffer.append(batch)
            have += len(batch)
        out = torch.cat([b for b in self._buffer if len(b)])
        rest = out[n:]
        self._buffer = [rest.clone()] if len(rest) else []
        return out[:n].contiguous() if len(rest) else out

    def state_dict(self) -> dict[str, int]:
        """The stream position, so a resumed run draws exactly the images an uninterrupted one would."""
        return {"consumed": self.consumed, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.close()
        self.seed, self.consumed = int(state["seed"]), int(state["consumed"])

    def close(self) -> None:
        """Stop the worker processes (a later ``sample`` restarts the stream from its beginning)."""
        self._it = None
        self._loader = None
        self._buffer = []
        self.consumed = 0

    def __del__(self) -> None:
        self._it = None


# ---------------------------------------------------------------------------------------------- sources
class GaussianImage:
    """N(0, std^2 I) images ``[C, H, W]``."""

    def __init__(self, channels: int = 3, size: int = 32, std: float = 1.0) -> None:
        self.shape = (int(channels), int(size), int(size))
        self.std = float(std)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.std * torch.randn(n, *self.shape, generator=generator)


class NoiseUpsampled:
    """``C x low x low`` Gaussian noise upsampled (bicubic) to ``C x size x size``."""

    def __init__(self, channels: int = 3, low: int = 8, size: int = 32, std: float = 1.0) -> None:
        self.shape = (int(channels), int(size), int(size))
        self.low, self.std = int(low), float(std)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        z = self.std * torch.randn(n, self.shape[0], self.low, self.low, generator=generator)
        return F.interpolate(z, size=self.shape[1:], mode="bicubic", align_corners=False)


register_sampler("gaussian_image")(GaussianImage)
register_sampler("noise_upsampled")(NoiseUpsampled)


# ---------------------------------------------------------------------------------------------- registry
def _required(path: str | None, name: str, key: str = "path") -> str:
    if path is None:
        raise DatasetError(f"the {name!r} data source needs {key}= (e.g. data.target.{key}=DIR)")
    return path


def image_source(name: str, flip: bool = True) -> Callable[[Callable[..., ImageDataset]], Callable[..., Any]]:
    """Registers ``make_dataset(**dataset_args) -> ImageDataset`` as the sampler ``name``.

    The sampler takes the dataset's arguments plus the loader's (``flip``, default ``flip`` here;
    ``seed``, ``num_workers``, ``pin_memory``, ``loader_batch``, ``on_corrupt``); its signature lists
    both, so config keys are checked against it and ``--dry-run`` reads ``size`` from it.
    """

    def deco(make_dataset: Callable[..., ImageDataset]) -> Callable[..., Any]:
        def build(
            *dataset_args: Any,
            flip: bool = flip,
            seed: int | None = None,
            num_workers: int = 0,
            pin_memory: bool | None = None,
            loader_batch: int | None = None,
            on_corrupt: str = "skip",
            **dataset_kwargs: Any,
        ) -> ImageSampler:
            return ImageSampler(
                make_dataset(*dataset_args, **dataset_kwargs),
                flip=flip,
                seed=seed,
                num_workers=num_workers,
                pin_memory=pin_memory,
                loader_batch=loader_batch,
                on_corrupt=on_corrupt,
            )

        dataset_params = list(inspect.signature(make_dataset).parameters.values())
        loader_params = [p for p in inspect.signature(build).parameters.values() if p.kind == p.KEYWORD_ONLY]
        build.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            dataset_params + loader_params,
            return_annotation=ImageSampler,
        )
        build.__name__ = build.__qualname__ = make_dataset.__name__
        build.__doc__ = make_dataset.__doc__
        if hasattr(make_dataset, "image_shape"):
            build.image_shape = make_dataset.image_shape  # type: ignore[attr-defined]
        register_sampler(name)(build)
        return build

    return deco


@image_source("image_folder")
def image_folder(path: str | None = None, size: int = 64, channels: int = 3) -> ImageDataset:
    """PNG/JPEG files under ``path``, resized (shorter side) and centre-cropped to ``size``."""
    return ImageFolderDataset(_required(path, "image_folder"), size, channels)


@image_source("lmdb")
def lmdb_images(
    path: str | None = None,
    size: int = 256,
    channels: int = 3,
    split: str = "train",
    layout: str = "auto",
    resolution: int | None = None,
) -> ImageDataset:
    """Images in LMDB (CelebA-HQ 256 as laid out for the DDGAN code: ``path/train.lmdb``)."""
    return LMDBDataset(_required(path, "lmdb"), size, channels, split, layout, resolution)


@image_source("cifar10")
def cifar10(path: str | None = None, split: str = "train", size: int = 32) -> ImageDataset:
    """CIFAR-10 from the python batches in ``path`` (or ``path/cifar-10-batches-py``)."""
    return cifar10_dataset(_required(path, "cifar10"), split, size)


@image_source("mnist", flip=False)
def mnist(path: str | None = None, split: str = "train", size: int = 28, channels: int = 1) -> ImageDataset:
    """MNIST from idx files (raw or .gz): ``path`` is the images file or a folder holding it."""
    return mnist_dataset(_required(path, "mnist"), split, size, channels)


@image_source("digits", flip=False)
def digits(size: int = 32, channels: int = 3) -> ImageDataset:
    """scikit-learn's 8x8 digits upsampled to ``size`` (no download: the data ship with scikit-learn)."""
    return digits_dataset(size, channels)


def _outlier_dataset(
    cifar10_path: str | None = None,
    mnist_path: str | None = None,
    outlier_fraction: float = 0.01,
    split: str = "train",
) -> ImageDataset:
    """CIFAR-10 with MNIST outliers (1% of the CIFAR count by default), all 3x32x32."""
    cifar10_path = _required(cifar10_path, "cifar10_mnist_outlier", "cifar10_path")
    mnist_path = _required(mnist_path, "cifar10_mnist_outlier", "mnist_path")
    return cifar10_mnist_outlier_dataset(cifar10_path, mnist_path, outlier_fraction, split)


_outlier_dataset.image_shape = (3, 32)  # type: ignore[attr-defined]  # fixed: --dry-run reads it
cifar10_mnist_outlier = image_source("cifar10_mnist_outlier")(_outlier_dataset)


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
