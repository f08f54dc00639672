"""The image datasets registered as samplers: each config name opens a dataset and streams it.

A registered sampler takes the dataset's arguments plus the loader's and returns an
:class:`~fastot.data.loader.ImageSampler`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from fastot.data.datasets import (
    ImageDataset,
    ImageFolderDataset,
    LMDBDataset,
    cifar10_dataset,
    cifar10_mnist_outlier_dataset,
    digits_dataset,
    digits_outlier_dataset,
    mnist_dataset,
)
from fastot.data.formats import DatasetError
from fastot.data.loader import ImageSampler
from fastot.data.registry import register_sampler

# The sampler names this module registers.
DATASET_SAMPLERS = (
    "image_folder",
    "lmdb",
    "cifar10",
    "mnist",
    "digits",
    "digits_outlier",
    "cifar10_mnist_outlier",
)


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
def digits(size: int = 32, channels: int = 3, split: str = "all") -> ImageDataset:
    """scikit-learn's 8x8 digits of ``split`` ('all', 'train', 'test') upsampled to ``size`` (no
    download: the data ship with scikit-learn)."""
    return digits_dataset(size, channels, split)


@image_source("digits_outlier", flip=False)
def digits_outlier(
    size: int = 16, channels: int = 1, outlier_fraction: float = 0.01, outlier_seed: int = 0
) -> ImageDataset:
    """The train digits plus 1% (``outlier_fraction``) grey photo patches: outliers at digits scale."""
    return digits_outlier_dataset(size, channels, outlier_fraction, outlier_seed)


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
