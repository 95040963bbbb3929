"""Map-style torch datasets over any random-access format, fetching whole batches per call.

``MappedDataset(reader, indices)`` serves the samples ``indices`` (global numbers, e.g. one
split) of a stored collection. ``ds[i]`` is one sample dict; ``ds[[i, j, ...]]`` reads the whole
batch in one call per part (sorted, chunk by chunk) and returns stacked tensors, which is what
:func:`make_loader` uses; ``__getitems__`` serves torch's default ``DataLoader(ds,
batch_size=B)`` with the same single read.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from trainset.errors import TrainsetError
from trainset.io.base import Reader, VariableInfo
from trainset.loaders.describe import describe, features_of
from trainset.loaders.sampler import BlockShuffleSampler


class MappedDataset(Dataset):
    """Samples of a :class:`~trainset.io.base.Reader`, in the order of ``indices``.

    ``format``, ``path`` and ``split`` only label the dataset (its repr); :func:`trainset.open_dataset`
    fills them in.
    """

    def __init__(self, reader: Reader, indices: np.ndarray | None = None, variables: Sequence[str] | None = None,
                 *, format: str | None = None, path: Any = None, split: str | None = None):
        self.reader = reader
        self.format, self.split = format, split
        self.path = path if path is not None else getattr(reader, "path", None)
        total = len(reader)
        self.indices = np.arange(total, dtype=np.int64) if indices is None else np.asarray(indices, dtype=np.int64)
        if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= total):
            raise TrainsetError(f"sample indices outside 0..{total - 1}. Fix: rebuild the splits for this dataset")
        self.variables = list(variables) if variables else None
        self._all = indices is None  # position = stored index: no lookup per batch
        self._starts = reader.offsets()
        self._names = [p.name for p in reader.parts]
        # a world subset (trainset.io.subset.PartSubset): samples keep the store's index and part
        self._stored_index = getattr(reader, "stored_index", None)
        self._named = self.multi_part or bool(getattr(reader, "names_parts", False))
        self._take_valid = _take_valid(reader)

    def __len__(self) -> int:
        return int(self.indices.size)

    @property
    def features(self) -> dict[str, VariableInfo]:
        """Variable -> per-sample shape and dtype (the requested variables only), read from metadata."""
        return features_of(self.reader.parts, self.variables)

    def __repr__(self) -> str:
        fields = {"format": self.format, "path": self.path, "split": self.split, "length": len(self)}
        return describe(type(self).__name__, fields, self.reader.parts, self.variables)

    @property
    def multi_part(self) -> bool:
        return len(self._names) > 1

    def __getitem__(self, position: Any) -> Any:
        if isinstance(position, (list, tuple, np.ndarray, torch.Tensor)):
            return self.get_batch(position)
        return self._fetch([int(position)])[0]

    def __getitems__(self, positions: Sequence[int]) -> list[dict[str, Any]]:
        """One read for the whole batch; per-sample dicts for torch's default collate."""
        return self._fetch(list(positions))

    def get_batch(self, positions: Sequence[int]) -> Any:
        """Stacked tensors for a one-part dataset (one read, no per-sample objects); a list of
        sample dicts when parts differ (collate them with ``collate_mixed_worlds``)."""
        return self._batch(self._positions(positions))

    def _batch(self, positions: np.ndarray) -> Any:
        """:meth:`get_batch` of checked positions (int64, 1-D, each in 0..len-1)."""
        if self.multi_part:
            return self._fetch(positions)  # subclasses extend _fetch; it checks again (cheap)
        wanted = positions if self._all else self.indices[positions]
        block = self._take_valid(0, wanted, self.variables)  # one gather, in batch order
        batch = {var: torch.from_numpy(np.ascontiguousarray(a)) for var, a in block.items()}
        batch["index"] = torch.from_numpy(self._index(wanted))
        if self._named:
            batch["part"] = [self._names[0]] * len(wanted)
        return batch

    def _fetcher(self, sampler: BlockShuffleSampler) -> Any:
        """What a loader calls with each batch of ``sampler``: ``self[positions]``, or, when the
        sampler draws int64 arrays over exactly this dataset and the class adds nothing to
        batches, :meth:`_batch` (the positions are known valid: no second check per batch)."""
        cls = type(self)
        plain = cls.get_batch is MappedDataset.get_batch and cls.__getitem__ is MappedDataset.__getitem__
        return self._batch if plain and sampler.arrays and sampler.size == len(self) else self.__getitem__

    def _index(self, wanted: np.ndarray) -> np.ndarray:
        """The samples' global numbers in the store (a copy)."""
        return wanted.copy() if self._stored_index is None else self._stored_index(wanted)

    def _positions(self, positions: Sequence[int]) -> np.ndarray:
        """``positions`` as checked int64 positions; negative ones count from the end, as for a list."""
        n = len(self)
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        # one pass checks both ends: as uint64 a negative position is past any length
        if not positions.size or positions.view(np.uint64).max() < n:
            return positions
        if positions.min() < 0:
            positions = np.where(positions < 0, positions + n, positions)
            if positions.min() < 0:
                raise IndexError(f"position out of range 0..{n - 1}")
        if positions.max() >= n:
            raise IndexError(f"position out of range 0..{n - 1}")
        return positions

    def _fetch(self, positions: Sequence[int]) -> list[dict[str, Any]]:
        positions = self._positions(positions)
        wanted = self.indices[positions]
        part = np.searchsorted(self._starts, wanted, side="right") - 1
        stored = self._index(wanted)
        samples: list[dict[str, Any] | None] = [None] * len(positions)
        for number in np.unique(part):
            rows = np.flatnonzero(part == number)
            local = wanted[rows] - self._starts[number]
            block = self.reader.take(int(number), local, self.variables)
            tensors = {var: torch.from_numpy(np.ascontiguousarray(a)) for var, a in block.items()}
            for k, row in enumerate(rows):
                sample: dict[str, Any] = {var: t[k] for var, t in tensors.items()}
                sample["index"] = torch.tensor(stored[row], dtype=torch.int64)
                if self._named:
                    sample["part"] = self._names[number]
                samples[row] = sample
        return samples  # type: ignore[return-value]


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool = False, seed: int = 0, epoch: int = 0,
                num_workers: int = 0, window: int = 1, drop_last: bool = False, collate_fn=None,
                rank: int = 0, world: int = 1, pin_memory: bool = False) -> DataLoader:
    """A DataLoader that reads chunk-aligned batches (map-style) or streams (iterable).

    For a :class:`MappedDataset` the loader fetches each batch with one call
    (``batch_size=None`` with a :class:`BlockShuffleSampler` as sampler); for a multi-part
    dataset pass ``collate_fn=trainset.loaders.worlds.collate_mixed_worlds``. ``pin_memory``
    page-locks batches for asynchronous copies to a GPU (order and content unchanged).
    """
    if isinstance(dataset, MappedDataset):
        sampler = BlockShuffleSampler(len(dataset), batch_size, dataset.reader.block_size, shuffle, window, seed,
                                      drop_last, rank=rank, world=world, arrays=True)
        sampler.set_epoch(epoch)
        collate = collate_fn if collate_fn is not None else _as_is
        return BatchLoader(dataset, sampler=sampler, batch_size=None, num_workers=num_workers, collate_fn=collate,
                           persistent_workers=False, pin_memory=pin_memory)
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    if getattr(dataset, "batch_size", None) is not None:  # an iterable dataset that batches itself
        return StreamLoader(dataset, batch_size=None, num_workers=num_workers, pin_memory=pin_memory)
    return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, drop_last=drop_last,
                      pin_memory=pin_memory, **({"collate_fn": collate_fn} if collate_fn is not None else {}))


class BatchLoader(DataLoader):
    """The DataLoader :func:`make_loader` returns for a :class:`MappedDataset`.

    In the main process (no workers, no pinning) it iterates as a plain loop, sampler batch ->
    ``dataset[positions]`` -> collate: the same batches in the same order as DataLoader's own
    iterator, without its ~20 us of bookkeeping per batch (a fifth of an in-memory batch of 256).
    Its own sampler's positions are valid by construction, so they skip the dataset's position
    check (:meth:`MappedDataset._fetcher`). It draws from torch's random state as the iterator
    does (:func:`_draw_base_seed`). With workers or pinning it is DataLoader's iterator unchanged.
    """

    def __iter__(self):  # type: ignore[override]
        if self.num_workers or self.pin_memory or self.batch_size is not None:
            return super().__iter__()
        _draw_base_seed(self)
        return self._main_process()

    def _main_process(self) -> Any:
        dataset, collate, sampler = self.dataset, self.collate_fn, self.sampler
        fetch = dataset.__getitem__
        if isinstance(dataset, MappedDataset) and isinstance(sampler, BlockShuffleSampler):
            fetch = dataset._fetcher(sampler)
        for positions in sampler:
            yield collate(fetch(positions))


class StreamLoader(DataLoader):
    """The DataLoader :func:`make_loader` returns for a streamed dataset that batches itself.

    In the main process (no workers, no pinning) it iterates the dataset and converts each batch
    as DataLoader's iterator does (``collate_fn``, numpy -> tensors), without the iterator's
    ~70 us of bookkeeping per batch (a quarter of a WebDataset batch of 256 read from a memory
    map). It draws from torch's random state as the iterator does (:func:`_draw_base_seed`).
    With workers or pinning it is DataLoader's iterator unchanged.
    """

    def __iter__(self):  # type: ignore[override]
        if self.num_workers or self.pin_memory:
            return super().__iter__()
        _draw_base_seed(self)
        convert = self.collate_fn
        return (convert(batch) for batch in self.dataset)


def _draw_base_seed(loader: DataLoader) -> None:
    """Advance torch's random state as DataLoader's iterator does when it starts (it draws its
    workers' base seed, even with none): training that draws random numbers between epochs then
    gets the same ones whichever path the loader takes (workers, pinning or neither)."""
    torch.empty((), dtype=torch.int64).random_(generator=loader.generator)


def _take_valid(reader: Reader) -> Any:
    """The reader's ``take_valid`` (its ``take`` without the row check, for rows a
    :class:`MappedDataset` has checked) where the class that defines its ``take`` defines that
    ``take_valid`` too; else its ``take``, so a subclass overriding ``take`` alone is obeyed."""
    owner = next((cls for cls in type(reader).__mro__ if "take" in vars(cls)), None)
    return reader.take_valid if owner is not None and "take_valid" in vars(owner) else reader.take


def _as_is(batch: Any) -> Any:
    return batch
