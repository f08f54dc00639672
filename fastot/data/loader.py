"""Streams a dataset as a trainer data source: :class:`ImageSampler` over endless shuffled epochs.

``sample(n)`` returns ``[n, C, H, W]`` float32 in [-1, 1], drawn from a ``DataLoader`` (optional
worker processes, pinned memory under CUDA). The order and the random horizontal flips come from
the sampler's own ``seed`` (the ``generator`` argument of ``sample`` is not used), and are drawn in
the main process, so a seed gives the same batches whatever ``num_workers`` is. Without a ``seed``
it derives from ``torch.initial_seed()`` (the trainer seeds torch with the run's seed before
building the data) and the dataset's location. Corrupt files are skipped with a warning and
counted (``.skipped``), or raise with ``on_corrupt="error"``.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from fastot.data.datasets import ImageDataset
from fastot.data.formats import CorruptImageError, DatasetError
from fastot.data.transforms import to_signed_unit

ON_CORRUPT = ("skip", "error")


class CorruptImageWarning(UserWarning):
    """A corrupt image was skipped."""


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
