"""PyTorch IterableDataset over a ``-wds`` folder (see :mod:`trainset.io.wds`).

Shards are the unit of parallelism: each DataLoader worker (and each DDP rank, when
``torch.distributed`` is initialised) reads its own subset of the shards that hold samples of the
split, so every sample is yielded exactly once per epoch. Without shuffling and with one
worker, samples come in stored (global index) order. With ``shuffle=True`` the shard order is a
permutation drawn from ``(seed, epoch)`` and samples then pass a shuffle buffer seeded from
``(seed, epoch, worker)``: the order is reproducible for a fixed ``(seed, epoch, num_workers)``
and changes with the epoch. Call :meth:`WdsDataset.set_epoch` before each epoch; the epoch
lives in shared memory, so it also reaches persistent workers.

Samples are dicts of tensors (``index`` an int64 tensor, ``part`` a str for multi-part data),
which torch's default collate batches. ``len()`` is the size of the split over all ranks; with
DDP the ranks get whole shards, so their counts differ by up to a shard: use
``samples_per_shard`` small enough (or drop the last uneven batches) to keep ranks in step.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from trainset.errors import TrainsetError
from trainset.io.base import VariableInfo
from trainset.io.wds.read import WdsSource
from trainset.loaders.describe import describe, features_of

logger = logging.getLogger(__name__)

__all__ = ["NotIndexable", "WdsDataset"]


class NotIndexable(TrainsetError, TypeError):
    """``ds[i]`` on a streamed dataset (a TypeError too, as for any object without indexing)."""


def consumer() -> tuple[int, int]:
    """(this consumer's number, number of consumers) over DDP ranks x DataLoader workers."""
    rank, world = 0, 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    info = get_worker_info()
    worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
    return rank * workers + worker, world * workers


def shuffle_buffer(samples: Iterator[Any], size: int, rng: np.random.Generator) -> Iterator[Any]:
    """Reservoir-style shuffle: keep ``size`` items, emit a random one for each arrival."""
    buffer: list[Any] = []
    for sample in samples:
        if len(buffer) < size:
            buffer.append(sample)
            continue
        slot = int(rng.integers(size))
        buffer[slot], sample = sample, buffer[slot]
        yield sample
    for slot in rng.permutation(len(buffer)):
        yield buffer[slot]


def to_torch(sample: dict[str, Any]) -> dict[str, Any]:
    """Numpy sample -> tensors (the arrays are writable views, so no copy is made)."""
    return {key: value if key == "part" else torch.from_numpy(np.asarray(value)) for key, value in sample.items()}


class WdsDataset(IterableDataset):
    """Stream one split of a ``-wds`` dataset as sample dicts of tensors.

    Parameters
    ----------
    source : WdsSource or path
        The stored dataset (``WebDatasetFormat().reader(path)``) or its folder.
    split : str, optional
        Split to stream (default: every sample).
    variables : list of str, optional
        Variables to decode; others are skipped unread.
    shuffle : bool
        Permute shards per epoch and pass samples through a shuffle buffer.
    seed : int
        Base seed of the shuffling.
    shuffle_buffer : int
        Samples held by the shuffle buffer (memory ~ this many samples).
    batch_size : int, optional
        Yield whole batches (dicts of stacked tensors) built from the stored blocks with
        vectorised gathers, instead of single samples: with several samples per tar member
        this is many times faster than collating sample by sample. One-part datasets only;
        use ``DataLoader(ds, batch_size=None)`` (as :func:`~trainset.loaders.mapped.make_loader`
        does).

    Attributes
    ----------
    reader : WdsSource
        The stored dataset's reader (as :attr:`MappedDataset.reader <trainset.loaders.mapped.MappedDataset>`).
    """

    def __init__(self, source: WdsSource | str | os.PathLike, split: str | None = None,
                 variables: list[str] | None = None, shuffle: bool = False, seed: int = 0,
                 shuffle_buffer: int = 1000, batch_size: int | None = None) -> None:
        super().__init__()
        self.reader = source if isinstance(source, WdsSource) else WdsSource(source)
        if seed < 0 or shuffle_buffer < 1:
            raise TrainsetError(f"WdsDataset: seed must be >= 0 and shuffle_buffer >= 1 "
                                f"(got {seed}, {shuffle_buffer})")
        self.split, self.variables = split, variables
        self.shuffle, self.seed, self.buffer = shuffle, int(seed), int(shuffle_buffer)
        self.batch_size = batch_size
        if batch_size is not None and len(self.reader.parts) > 1:
            raise TrainsetError("WdsDataset: batch_size works on one-part datasets only; parts differ in shape. "
                                "Fix: leave batch_size unset and collate with collate_mixed_worlds")
        mask = self.reader.split_mask(split)
        self._length = len(self.reader) if mask is None else int(mask.sum())
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def set_epoch(self, epoch: int) -> None:
        """Select the shuffle of ``epoch``; call before iterating each epoch."""
        if int(epoch) < 0:
            raise TrainsetError(f"WdsDataset: epoch must be >= 0, got {epoch}")
        self._epoch.fill_(int(epoch))

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, position: Any) -> Any:
        """Refused: shards are streamed, so a sample has no address to read it from."""
        raise NotIndexable(f"{type(self).__name__} is streamed (WebDataset shards read in order): it has no ds[i]. "
                        "Fix: iterate it (for sample in ds, or trainset.loaders.mapped.make_loader(ds, ...)), "
                        "or open a map-style copy of the dataset (netcdf, hdf5 or zarr) for indexing")

    @property
    def features(self) -> dict[str, VariableInfo]:
        """Variable -> per-sample shape and dtype (the requested variables only), from ``index.json``."""
        return features_of(self.reader.parts, self.variables)

    def __repr__(self) -> str:
        fields = {"format": "webdataset", "path": self.reader.path, "split": self.split, "length": len(self),
                  "shuffle": self.shuffle}
        return describe(type(self).__name__, fields, self.reader.parts, self.variables)

    def shard_order(self) -> list[int]:
        """Shards holding split samples, permuted by ``(seed, epoch)`` when shuffling."""
        shards = self.reader.shards_with(self.reader.split_mask(self.split))
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(shards))
            shards = [shards[i] for i in order]
        return shards

    def __iter__(self) -> Iterator[dict[str, Any]]:
        me, consumers = consumer()
        shards = self.shard_order()[me::consumers]
        if not shards:
            logger.warning("WdsDataset: consumer %d of %d has no shard (%d shards); write smaller shards",
                           me, consumers, len(self.reader.shards))
        if self.batch_size is not None:
            rng = np.random.default_rng([self.seed, self.epoch, me, consumers])
            yield from self._batches(shards, rng)
            return
        samples = self.reader.iter_samples(self.split, self.variables, shards=shards)
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch, me, consumers])
            samples = shuffle_buffer(samples, self.buffer, rng)
        for sample in samples:
            yield to_torch(sample)

    def _blocks(self, shards: list[int]) -> Iterator[dict[str, np.ndarray]]:
        """Stored blocks of the split as {var: rows, "index": global indices}."""
        mask = self.reader.split_mask(self.split)
        for shard in shards:
            for first, _, count, block in self.reader.iter_shard(shard, self.variables):
                index = np.arange(first, first + count, dtype=np.int64)
                keep = slice(None) if mask is None else mask[first:first + count]
                if mask is not None and not keep.any():
                    continue
                yield {**{var: rows[keep] for var, rows in block.items()}, "index": index[keep]}

    def _batches(self, shards: list[int], rng: np.random.Generator) -> Iterator[dict[str, torch.Tensor]]:
        """Whole batches: in stored order, or shuffled within windows of ``shuffle_buffer`` samples.

        A window is filled block by block, concatenated once, permuted with the consumer's
        generator and cut into batches, so each sample is copied about twice whatever the
        buffer size (a per-batch reservoir would re-copy the whole buffer for every batch).
        """
        size = int(self.batch_size)
        window = max(self.buffer, size) if self.shuffle else size
        pending: list[dict[str, np.ndarray]] = []
        held = 0
        for block in self._blocks(shards):
            pending.append(block)
            held += len(block["index"])
            if held >= window:
                yield from self._emit(pending, size, rng, final=False)
                held = len(pending[0]["index"]) if pending else 0
        yield from self._emit(pending, size, rng, final=True)

    def _emit(self, pending: list[dict[str, np.ndarray]], size: int, rng: np.random.Generator,
              final: bool) -> Iterator[dict[str, torch.Tensor]]:
        """Yield batches from the pending blocks; keep an incomplete tail unless ``final``."""
        if not pending:
            return
        pool = {k: np.concatenate([b[k] for b in pending]) for k in pending[0]}
        pending.clear()
        n = len(pool["index"])
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        stop = n if final else (n // size) * size  # a short batch only at the very end
        for begin in range(0, stop, size):
            take = order[begin:begin + size]
            yield {k: torch.from_numpy(v[take]) for k, v in pool.items()}
        if stop < n:
            pending.append({k: v[order[stop:]] for k, v in pool.items()})
