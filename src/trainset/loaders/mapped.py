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
        positions = self._positions(positions)
        if self.multi_part:
            return self._fetch(positions)
        wanted = positions if self._all else self.indices[positions]
        block = self.reader.take(0, wanted, self.variables)  # one gather, in batch order
        batch = {var: torch.from_numpy(np.ascontiguousarray(a)) for var, a in block.items()}
        batch["index"] = torch.from_numpy(self._index(wanted))
        if self._named:
            batch["part"] = [self._names[0]] * len(wanted)
        return batch

    def _index(self, wanted: np.ndarray) -> np.ndarray:
        """The samples' global numbers in the store (a copy)."""
        return wanted.copy() if self._stored_index is None else self._stored_index(wanted)

    def _positions(self, positions: Sequence[int]) -> np.ndarray:
        n = len(self)
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        if not positions.size:
            return positions
        if positions.min() < 0:  # counted from the end, as for a list
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
        return DataLoader(dataset, batch_size=None, num_workers=num_workers, pin_memory=pin_memory)
    return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, drop_last=drop_last,
                      pin_memory=pin_memory, **({"collate_fn": collate_fn} if collate_fn is not None else {}))


class BatchLoader(DataLoader):
    """The DataLoader :func:`make_loader` returns for a :class:`MappedDataset`.

    In the main process (no workers, no pinning) it iterates as a plain loop, sampler batch ->
    ``dataset[positions]`` -> collate: the same batches in the same order as DataLoader's own
    iterator, without its ~20 us of bookkeeping per batch (a fifth of an in-memory batch of 256).
    With workers or pinning it is DataLoader's iterator unchanged.
    """

    def __iter__(self):  # type: ignore[override]
        if self.num_workers or self.pin_memory or self.batch_size is not None:
            return super().__iter__()
        return self._main_process()

    def _main_process(self) -> Any:
        dataset, collate = self.dataset, self.collate_fn
        for positions in self.sampler:
            yield collate(dataset[positions])


def _as_is(batch: Any) -> Any:
    return batch
