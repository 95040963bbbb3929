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
from trainset.io.base import Reader
from trainset.loaders.sampler import BlockShuffleSampler


class MappedDataset(Dataset):
    """Samples of a :class:`~trainset.io.base.Reader`, in the order of ``indices``."""

    def __init__(self, reader: Reader, indices: np.ndarray | None = None, variables: Sequence[str] | None = None):
        self.reader = reader
        total = len(reader)
        self.indices = np.arange(total, dtype=np.int64) if indices is None else np.asarray(indices, dtype=np.int64)
        if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= total):
            raise TrainsetError(f"sample indices outside 0..{total - 1}. Fix: rebuild the splits for this dataset")
        self.variables = list(variables) if variables else None
        self._starts = reader.offsets()
        self._names = [p.name for p in reader.parts]
        # a world subset (trainset.io.subset.PartSubset): samples keep the store's index and part
        self._stored_index = getattr(reader, "stored_index", None)
        self._named = self.multi_part or bool(getattr(reader, "names_parts", False))

    def __len__(self) -> int:
        return int(self.indices.size)

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
        wanted = self.indices[positions]
        unique, inverse = np.unique(wanted, return_inverse=True)
        block = self.reader.read(0, unique, self.variables)
        same = unique.size == wanted.size and np.array_equal(unique, wanted)
        batch = {var: torch.from_numpy(np.ascontiguousarray(a if same else a[inverse])) for var, a in block.items()}
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
        positions = np.where(positions < 0, positions + n, positions)
        if positions.size and (positions.min() < 0 or positions.max() >= n):
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
            unique, inverse = np.unique(local, return_inverse=True)
            block = self.reader.read(int(number), unique, self.variables)
            tensors = {var: torch.from_numpy(np.ascontiguousarray(a[inverse])) for var, a in block.items()}
            for k, row in enumerate(rows):
                sample: dict[str, Any] = {var: t[k] for var, t in tensors.items()}
                sample["index"] = torch.tensor(stored[row], dtype=torch.int64)
                if self._named:
                    sample["part"] = self._names[number]
                samples[row] = sample
        return samples  # type: ignore[return-value]


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool = False, seed: int = 0, epoch: int = 0,
                num_workers: int = 0, window: int = 1, drop_last: bool = False, collate_fn=None,
                rank: int = 0, world: int = 1) -> DataLoader:
    """A DataLoader that reads chunk-aligned batches (map-style) or streams (iterable).

    For a :class:`MappedDataset` the loader fetches each batch with one call
    (``batch_size=None`` with a :class:`BlockShuffleSampler` as sampler); for a multi-part
    dataset pass ``collate_fn=trainset.loaders.worlds.collate_mixed_worlds``.
    """
    if isinstance(dataset, MappedDataset):
        sampler = BlockShuffleSampler(len(dataset), batch_size, dataset.reader.block_size, shuffle, window, seed,
                                      drop_last, rank=rank, world=world)
        sampler.set_epoch(epoch)
        collate = collate_fn if collate_fn is not None else _as_is
        return DataLoader(dataset, sampler=sampler, batch_size=None, num_workers=num_workers, collate_fn=collate,
                          persistent_workers=False)
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    if getattr(dataset, "batch_size", None) is not None:  # an iterable dataset that batches itself
        return DataLoader(dataset, batch_size=None, num_workers=num_workers)
    return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, drop_last=drop_last,
                      **({"collate_fn": collate_fn} if collate_fn is not None else {}))


def _as_is(batch: Any) -> Any:
    return batch
