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
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from trainset.errors import TrainsetError
from trainset.io.base import VariableInfo
from trainset.io.wds.read import WdsSource, check_variables
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

    Notes
    -----
    With ``batch_size`` the shards are memory-mapped: a shard changed on disk (rewritten, touched
    or truncated in place) between two batches raises :class:`TrainsetError` at the next batch,
    and no batch gathered while its shard changed is yielded; but a shard truncated *during* a
    gather kills the process with SIGBUS (see :class:`~trainset.io.wds.read.MappedShard`). Do not
    rewrite a dataset while it is read.
    """

    def __init__(self, source: WdsSource | str | os.PathLike, split: str | None = None,
                 variables: list[str] | None = None, shuffle: bool = False, seed: int = 0,
                 shuffle_buffer: int = 1000, batch_size: int | None = None) -> None:
        super().__init__()
        self.reader = source if isinstance(source, WdsSource) else WdsSource(source)
        if seed < 0 or shuffle_buffer < 1:
            raise TrainsetError(f"WdsDataset: seed must be >= 0 and shuffle_buffer >= 1 "
                                f"(got {seed}, {shuffle_buffer})")
        check_variables(self.reader.meta, variables, self.reader.path)  # refused here, for both paths
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

    def _batches(self, shards: list[int], rng: np.random.Generator) -> Iterator[dict[str, torch.Tensor]]:
        """Whole batches: in stored order, or shuffled within windows of ``shuffle_buffer`` samples.

        A window is the incomplete tail of the previous one followed by member groups until it
        holds ``shuffle_buffer`` samples; it is permuted with the consumer's generator and cut
        into batches (a per-batch reservoir would re-copy the whole buffer for every batch).
        The shards are memory-mapped (:meth:`WdsSource.mapped_shard`), so a window holds only
        where its samples lie, and each batch is one gather per variable from the page cache:
        one copy per sample, as for an array in memory.
        """
        size, mask = int(self.batch_size), self.reader.split_mask(self.split)
        limit = max(self.buffer, size) if self.shuffle else size
        window = _Window(size, rng if self.shuffle else None, self.variables)
        for shard in shards:
            mapped = self.reader.mapped_shard(shard)
            for first, _, count, views in mapped.groups:
                keep = None if mask is None else mask[first:first + count]
                if keep is not None and not keep.any():
                    continue
                window.add(mapped, first, views, np.arange(count) if keep is None else np.flatnonzero(keep))
                if window.held >= limit:
                    yield from window.emit(final=False)
        yield from window.emit(final=True)


@dataclass
class _Lying:
    """Where one variable's held samples lie: per sample, a source number (see :class:`_Window`)
    and the byte offset of its row in that source."""

    offsets: np.ndarray
    sources: np.ndarray

    def __getitem__(self, which: Any) -> _Lying:
        return _Lying(self.offsets[which], self.sources[which])

    @classmethod
    def join(cls, pieces: list[_Lying]) -> _Lying:
        return cls(np.concatenate([p.offsets for p in pieces]), np.concatenate([p.sources for p in pieces]))


class _Window:
    """A shuffle window as addresses: for each sample, which mapped shard and where in it.

    Pool positions are the previous window's tail then the kept samples of its groups in stored
    order, exactly the samples the loader once concatenated, so the batches are unchanged; only
    the gathering differs: each variable's rows are copied straight from the mapped shards,
    through a byte view of each shard whose row ``k`` is its bytes ``k..k+row size`` (so any
    row offset is one fancy index).

    Integrity: every source (a mapping, or the C-ordered copy of a Fortran-ordered member)
    remembers the :class:`MappedShard` its bytes came from, and each batch checks those shards
    before its gather (a file cut since the last batch would crash the gather with SIGBUS) and
    after it, before the batch is yielded (bytes written during the gather are never yielded).
    """

    def __init__(self, size: int, rng: np.random.Generator | None, variables: list[str] | None) -> None:
        self.size, self.rng, self.variables = size, rng, variables
        self.sources: dict[int, Any] = {}  # number -> MappedShard, or a C-ordered copy of a member
        self.shards: dict[int, Any] = {}  # number -> the MappedShard whose bytes the source holds
        self._ids: dict[int, int] = {}  # id(owner) -> number
        self._next = 0
        self._views: dict[tuple[int, int], np.ndarray] = {}  # (source, row bytes) -> row view
        self.specs: dict[str, tuple[np.dtype, tuple]] = {}  # variables in member order
        self.pieces: list[tuple[np.ndarray, dict[str, _Lying]]] = []  # per group: global indices, where vars lie
        self.held = 0

    def add(self, mapped: Any, first: int, views: dict[str, np.ndarray], rows: np.ndarray) -> None:
        """Add the samples ``rows`` (local, kept) of a member group whose blocks are ``views``."""
        lying = {}
        for var, view in views.items():
            if self.variables is not None and var not in self.variables:
                continue
            self.specs.setdefault(var, (view.dtype, view.shape[1:]))
            owner = mapped
            if not view.flags.c_contiguous:  # a Fortran-ordered member: copied once, a source of its own
                mapped.check()  # the copy reads the mapping: never from a changed or cut file
                view = owner = np.ascontiguousarray(view)
            source = self._source(owner, mapped)
            start = view.ctypes.data - self._base(source)
            step = view.strides[0] if len(view) > 1 else 0
            lying[var] = _Lying(start + rows * step, np.full(len(rows), source, dtype=np.int64))
        self.pieces.append((first + rows, lying))
        self.held += len(rows)

    def emit(self, final: bool) -> Iterator[dict[str, torch.Tensor]]:
        """Batches of the window in permuted (or stored) order; keep the tail unless ``final``."""
        n = self.held
        if n == 0:
            return
        index = np.concatenate([indices for indices, _ in self.pieces])
        lying = {var: _Lying.join([where[var] for _, where in self.pieces]) for var in self.specs}
        self.pieces.clear()
        order = self.rng.permutation(n) if self.rng is not None else np.arange(n)
        stop = n if final else (n // self.size) * self.size  # a short batch only at the very end
        used = {var: np.unique(where.sources).tolist() for var, where in lying.items()}
        batch_lying = {var: where[order] for var, where in lying.items()}  # batch k: [k*size, (k+1)*size)
        for begin in range(0, stop, self.size):
            batch = slice(begin, begin + self.size)
            yield self._batch(index[order[batch]], {var: where[batch] for var, where in batch_lying.items()}, used)
        self.held = n - stop
        if self.held:
            self.pieces.append((index[order[stop:]], {var: where[stop:] for var, where in batch_lying.items()}))
        self._forget()

    def _batch(self, index: np.ndarray, lying: dict[str, _Lying], used: dict[str, list[int]]
               ) -> dict[str, torch.Tensor]:
        """One batch: each variable's rows gathered from where they lie, between two checks of
        the shards they lie in (see the class docstring)."""
        parts = {var: _split(where.sources, used[var]) for var, where in lying.items()}
        shards = list({id(shard): shard for var_parts in parts.values()
                       for shard in (self.shards[source] for source, _ in var_parts)}.values())
        for shard in shards:
            shard.check()
        batch = {var: torch.from_numpy(self._gather(var, where.offsets, parts[var])) for var, where in lying.items()}
        batch["index"] = torch.from_numpy(index)
        for shard in shards:
            shard.check()
        return batch

    def _forget(self) -> None:
        """Drop the sources no held sample lies in (a remote shard's copy is then freed)."""
        held = {int(i) for _, lying in self.pieces for where in lying.values() for i in np.unique(where.sources)}
        for number in set(self.sources) - held:
            owner = self.sources.pop(number)
            self.shards.pop(number)
            self._ids.pop(id(owner), None)
            self._views = {key: view for key, view in self._views.items() if key[0] != number}

    def _gather(self, var: str, offsets: np.ndarray, parts: list[tuple]) -> np.ndarray:
        """Rows of ``var`` at byte ``offsets``: one fancy index per source in ``parts`` (see :func:`_split`)."""
        dtype, shape = self.specs[var]
        row = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
        if row == 0:
            return np.empty((len(offsets), *shape), dtype)
        if parts[0][1] is None:
            rows = self._rows(parts[0][0], row)[offsets]
        else:
            rows = np.empty(len(offsets), dtype=np.dtype((np.void, row)))
            for source, where in parts:
                rows[where] = self._rows(source, row)[offsets[where]]
        return rows.view(dtype).reshape((len(offsets), *shape))

    def _source(self, owner: Any, shard: Any) -> int:
        """The number of a mapped shard or array in :attr:`sources` (added on first use, with the
        shard its bytes come from)."""
        key = id(owner)
        if key not in self._ids or self.sources.get(self._ids[key]) is not owner:
            self._ids[key], self._next = self._next, self._next + 1
            self.sources[self._ids[key]], self.shards[self._ids[key]] = owner, shard
        return self._ids[key]

    def _flat(self, source: int) -> np.ndarray:
        owner = self.sources[source]
        return np.frombuffer(owner.buffer if not isinstance(owner, np.ndarray) else owner, dtype=np.uint8)

    def _base(self, source: int) -> int:
        flat = self._flat(source)
        return flat.ctypes.data if flat.size else 0

    def _rows(self, source: int, row: int) -> np.ndarray:
        """A read-only view of a source whose element ``k`` is its bytes ``k..k+row`` (one opaque row)."""
        key = (source, row)
        if key not in self._views:
            flat = self._flat(source)
            self._views[key] = np.ndarray((max(flat.size - row + 1, 0),), dtype=np.dtype((np.void, row)),
                                          buffer=flat, strides=(1,))
        return self._views[key]


def _split(lying: np.ndarray, used: list[int]) -> list[tuple[int, np.ndarray | None]]:
    """(source, batch positions) of each source a batch's samples lie in; [(source, None)] for one."""
    if len(used) > 1:
        here = [(source, np.flatnonzero(lying == source)) for source in used]
        here = [(source, where) for source, where in here if where.size]
        if len(here) > 1:
            return here
        used = [here[0][0]]
    return [(used[0], None)]
