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
from typing import Any, Iterator, NamedTuple

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
        one copy per sample, as for an array in memory (plus one more for the samples of a batch
        that lie outside the shard most of it lies in, see :meth:`_Window._takes`).
        """
        size, mask = int(self.batch_size), self.reader.split_mask(self.split)
        limit = max(self.buffer, size) if self.shuffle else size
        window = _Window(size, rng if self.shuffle else None, self.variables)
        whole: dict[int, np.ndarray] = {}  # count -> arange(count), the rows of a group kept whole (never written)
        for shard in shards:
            mapped = self.reader.mapped_shard(shard)
            for first, _, count, views in mapped.groups:
                keep = None if mask is None else mask[first:first + count]
                if keep is not None and not keep.any():
                    continue
                if keep is None and count not in whole:
                    whole[count] = np.arange(count)
                window.add(mapped, first, views, whole[count] if keep is None else np.flatnonzero(keep))
                if window.held >= limit:
                    yield from window.emit(final=False)
        yield from window.emit(final=True)


@dataclass
class _Lying:
    """Where one variable's held samples lie: per sample, a source number (see :class:`_Window`)
    and the byte offset of its row in that source."""

    offsets: np.ndarray
    sources: np.ndarray


def _select(lying: dict[str, _Lying], which: Any) -> dict[str, _Lying]:
    """``where[which]`` of every variable; variables that share one sources array still do (so a
    window's variables lying in the same sources share one :func:`_layout`)."""
    done: dict[int, np.ndarray] = {}
    out = {}
    for var, where in lying.items():
        if id(where.sources) not in done:
            done[id(where.sources)] = where.sources[which]
        out[var] = _Lying(where.offsets[which], done[id(where.sources)])
    return out


class _Take(NamedTuple):
    """How one batch gathers one variable (see :meth:`_Window._takes`): ``rows[offsets]`` (``rows``
    a row view of the source most of the batch lies in, None for rows of zero bytes), then for
    each other source ``(its rows, batch positions, offsets)`` written over those positions."""

    rows: np.ndarray | None
    offsets: np.ndarray
    fixes: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]


class _Layout(NamedTuple):
    """Which sources the batches of a window read (see :func:`_layout`). Sources are named by
    their place in ``used``; positions are the window's (permuted) sample positions."""

    used: list[int]  # source numbers, ascending
    major: list[int]  # per batch: the source most of its samples lie in
    present: list[tuple[int, ...]]  # per batch: the numbers of every source it reads, ascending
    minor: np.ndarray | None  # positions of the samples outside their batch's major source
    stand_in: np.ndarray | None  # for each, the position of a sample of its batch's major source
    others: np.ndarray | None  # the minor positions grouped by (batch, source), ascending in each group
    groups: list[tuple[int, int, int, int]]  # (batch, source, lo, hi): others[lo:hi] lie in that source


def _layout(sources: np.ndarray, size: int) -> _Layout:
    """The :class:`_Layout` of batches cut every ``size`` samples from samples lying in ``sources``,
    worked out for the whole window with a few vectorised passes instead of per batch."""
    n = len(sources)
    starts = np.arange(0, n, size)
    used, code = np.unique(sources, return_inverse=True)  # code: each sample's source as its place in used
    if len(used) <= 1:
        return _Layout(used.tolist(), [0] * len(starts), [tuple(used.tolist())] * len(starts), None, None, None, [])
    code = code.reshape(-1)
    width, batch = len(used), np.arange(n) // size
    counts = np.bincount(batch * width + code, minlength=len(starts) * width).reshape(len(starts), width)
    major = counts.argmax(axis=1)
    outside = code != major[batch]
    minor, inside = np.flatnonzero(outside), np.flatnonzero(~outside)
    stand_in = inside[np.searchsorted(inside, starts)][batch[minor]]  # every batch has a major sample
    others = minor if width == 2 else minor[np.argsort(batch[minor] * width + code[minor], kind="stable")]
    rest = counts.copy()
    rest[np.arange(len(starts)), major] = 0
    bounds = np.concatenate([[0], np.cumsum(rest.ravel())]).tolist()
    groups = [(g // width, g % width, bounds[g], bounds[g + 1]) for g in np.flatnonzero(rest.ravel()).tolist()]
    numbers, present_in = used.tolist(), [()] * len(starts)
    for b, c in zip(*(axis.tolist() for axis in np.nonzero(counts))):
        present_in[b] += (numbers[c],)
    return _Layout(numbers, major.tolist(), present_in, minor, stand_in, others, groups)


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
        self._bases: dict[int, int] = {}  # number -> address of the source's first byte
        self._ids: dict[int, int] = {}  # id(owner) -> number
        self._next = 0
        self._views: dict[tuple[int, int], np.ndarray] = {}  # (source, row bytes) -> row view
        self.specs: dict[str, np.dtype] = {}  # variables in member order -> one sample's (sub)array dtype
        self.groups: list[tuple[int, np.ndarray, dict[str, tuple[int, int, int]]]] = []  # added since the last emit
        self.tail: tuple[np.ndarray, dict[str, _Lying]] | None = None  # global indices, where vars lie
        self.held = 0

    def add(self, mapped: Any, first: int, views: dict[str, np.ndarray], rows: np.ndarray) -> None:
        """Add the samples ``rows`` (local, kept) of a member group whose blocks are ``views``: per
        variable, its source and the byte offset and stride of its rows there (arrays are built
        for the whole window at :meth:`emit`)."""
        where, mapped_source = {}, None  # the mapping's source number, once a C-ordered member needs it
        for var, view in views.items():
            if self.variables is not None and var not in self.variables:
                continue
            if var not in self.specs:
                self.specs[var] = np.dtype((view.dtype, view.shape[1:]))
            if view.flags.c_contiguous:
                if mapped_source is None:
                    mapped_source = self._source(mapped, mapped)
                source = mapped_source
            else:  # a Fortran-ordered member: copied once, a source of its own
                mapped.check()  # the copy reads the mapping: never from a changed or cut file
                view = np.ascontiguousarray(view)
                source = self._source(view, mapped)
            where[var] = (source, view.ctypes.data - self._bases[source], view.strides[0] if len(view) > 1 else 0)
        self.groups.append((first, rows, where))
        self.held += len(rows)

    def emit(self, final: bool) -> Iterator[dict[str, torch.Tensor]]:
        """Batches of the window in permuted (or stored) order; keep the tail unless ``final``.

        Where each batch's rows lie is worked out for the whole window at once (:meth:`_plans`),
        so a batch costs its gathers and its shard checks, not per-batch bookkeeping.
        """
        n = self.held
        if n == 0:
            return
        index, lying = self._pool()
        order = self.rng.permutation(n) if self.rng is not None else np.arange(n)
        stop = n if final else (n // self.size) * self.size  # a short batch only at the very end
        index, lying = index[order], _select(lying, order)  # batch k: [k*size, (k+1)*size)
        plans, shards = self._plans(_select(lying, slice(None, stop)), -(-stop // self.size))
        for k, begin in enumerate(range(0, stop, self.size)):
            yield self._batch(index[begin:begin + self.size], {var: plan[k] for var, plan in plans.items()}, shards[k])
        self.held = n - stop
        self.tail = (index[stop:], _select(lying, slice(stop, None))) if self.held else None
        self._forget()

    def _pool(self) -> tuple[np.ndarray, dict[str, _Lying]]:
        """The held samples in pool order, the tail then the groups' kept rows: their global
        indices and where each variable's rows lie."""
        groups, self.groups = self.groups, []
        counts = [len(rows) for _, rows, _ in groups]
        rows = np.concatenate([rows for _, rows, _ in groups] + [np.zeros(0, np.int64)])
        index = np.repeat(np.asarray([first for first, _, _ in groups], dtype=np.int64), counts) + rows
        head, there = self.tail if self.tail is not None else (None, {})
        lying, shared = {}, {}  # shared: (the tail's sources, the groups' sources) -> one array for every var
        for var in self.specs:
            start, step, numbers = (np.repeat(np.asarray([where[var][k] for _, _, where in groups], dtype=np.int64),
                                              counts) for k in (1, 2, 0))
            offsets = start + rows * step
            key = (id(there[var].sources) if var in there else None, tuple(where[var][0] for _, _, where in groups))
            if key not in shared:
                shared[key] = numbers if var not in there else np.concatenate([there[var].sources, numbers])
            lying[var] = _Lying(offsets if var not in there else np.concatenate([there[var].offsets, offsets]),
                                shared[key])
        return (index if head is None else np.concatenate([head, index])), lying

    def _plans(self, lying: dict[str, _Lying], batches: int) -> tuple[dict[str, list[_Take]], list[tuple[Any, ...]]]:
        """Per variable the :class:`_Take` of each of the ``batches`` batches, and per batch the
        mapped shards all its bytes come from (each once; none when no variable is read, the
        batches then hold ``index`` alone). Variables lying in the same sources (all of them,
        unless some members were copied) share one :func:`_layout`."""
        layouts: dict[int, _Layout] = {}  # id(sources) -> its layout
        plans = {}
        for var, where in lying.items():
            if id(where.sources) not in layouts:
                layouts[id(where.sources)] = _layout(where.sources, self.size)
            plans[var] = self._takes(var, where.offsets, layouts[id(where.sources)])
        known: dict[tuple[int, ...], tuple[Any, ...]] = {}  # source numbers -> their shards
        shards = []
        every = [layout.present for layout in layouts.values()] or [[()] * batches]
        for numbers in every[0] if len(every) == 1 else (sum(batch, ()) for batch in zip(*every)):
            if numbers not in known:
                known[numbers] = tuple({id(self.shards[n]): self.shards[n] for n in numbers}.values())
            shards.append(known[numbers])
        return plans, shards

    def _takes(self, var: str, offsets: np.ndarray, layout: _Layout) -> list[_Take]:
        """How each batch gathers ``var`` (rows at byte ``offsets``). A batch whose samples lie in
        several sources is gathered whole from its major source (the others' positions pointed
        at one of its rows), then only the other sources' rows are written over: one copy of the
        batch and one of its minority, instead of a gather per source into a temporary and a
        scatter of each (two copies of everything)."""
        row, size = self.specs[var].itemsize, self.size
        views = [self._rows(source, row) for source in layout.used]
        starts = range(0, len(offsets), size)
        if layout.minor is None:
            return [_Take(views[0], offsets[begin:begin + size], ()) for begin in starts]
        fixed = offsets.copy()
        fixed[layout.minor] = offsets[layout.stand_in]
        local, moved = layout.others % size, offsets[layout.others]
        fixes: list[list[tuple]] = [[] for _ in starts]
        for b, c, lo, hi in layout.groups:
            fixes[b].append((views[c], local[lo:hi], moved[lo:hi]))
        return [_Take(views[layout.major[b]], fixed[begin:begin + size], tuple(fixes[b]))
                for b, begin in enumerate(starts)]

    def _batch(self, index: np.ndarray, takes: dict[str, _Take], shards: tuple[Any, ...]) -> dict[str, torch.Tensor]:
        """One batch: each variable's rows gathered as its :class:`_Take` says, between two checks
        of the ``shards`` they lie in (see the class docstring)."""
        for shard in shards:
            shard.check()
        batch = {var: torch.from_numpy(self._gather(var, take)) for var, take in takes.items()}
        batch["index"] = torch.from_numpy(index)
        for shard in shards:
            shard.check()
        return batch

    def _gather(self, var: str, take: _Take) -> np.ndarray:
        """Rows of ``var`` as ``take`` says: one fancy index of the major source, then the others' rows."""
        if take.rows is None:  # rows of zero bytes
            return np.empty((len(take.offsets), *self.specs[var].shape), self.specs[var].base)
        rows = take.rows[take.offsets]
        for source_rows, positions, offsets in take.fixes:
            rows[positions] = source_rows[offsets]
        return rows.view(self.specs[var])  # [n] opaque rows -> [n, *sample shape]

    def _forget(self) -> None:
        """Drop the sources no held sample lies in (a remote shard's copy is then freed)."""
        held = set() if self.tail is None else {
            int(i) for where in self.tail[1].values() for i in np.unique(where.sources)}
        for number in set(self.sources) - held:
            owner = self.sources.pop(number)
            self.shards.pop(number)
            self._bases.pop(number)
            self._ids.pop(id(owner), None)
            self._views = {key: view for key, view in self._views.items() if key[0] != number}

    def _source(self, owner: Any, shard: Any) -> int:
        """The number of a mapped shard or array in :attr:`sources` (added on first use, with the
        shard its bytes come from)."""
        key = id(owner)
        if key not in self._ids or self.sources.get(self._ids[key]) is not owner:
            number = self._ids[key] = self._next
            self._next += 1
            self.sources[number], self.shards[number] = owner, shard
            flat = self._flat(number)
            self._bases[number] = flat.ctypes.data if flat.size else 0
        return self._ids[key]

    def _flat(self, source: int) -> np.ndarray:
        owner = self.sources[source]
        return np.frombuffer(owner.buffer if not isinstance(owner, np.ndarray) else owner, dtype=np.uint8)

    def _rows(self, source: int, row: int) -> np.ndarray | None:
        """A read-only view of a source whose element ``k`` is its bytes ``k..k+row`` (one opaque
        row); None for rows of zero bytes."""
        if row == 0:
            return None
        key = (source, row)
        if key not in self._views:
            flat = self._flat(source)
            self._views[key] = np.ndarray((max(flat.size - row + 1, 0),), dtype=np.dtype((np.void, row)),
                                          buffer=flat, strides=(1,))
        return self._views[key]
