"""Shuffled batches gathered straight from a read-only memory map of a local HDF5 (or NetCDF-4) file.

Why: through h5py, a chunk-aligned batch costs a direct chunk read into a scratch buffer, then the
gather from it: two memory-speed copies plus h5py's call overhead. From a mapping of the file the
batch is one fancy index over the page cache, the one copy the in-memory gather makes.

What is mapped: datasets whose stored bytes are exactly what h5py returns, so the result is
bit-identical: contiguous layout, or chunks spanning whole samples (``(k, *per-sample shape)``)
with no filter (each chunk checked: filter mask 0, stored size = chunk bytes, allocated), of a
numeric dtype whose HDF5 type equals the native type of the numpy dtype (no conversion on read).
The first and last rows are compared with h5py's read once per dataset. Anything else, remote
files and drivers other than ``sec2`` included, gets None here and is read through h5py.

Where rows are: chunk ``c`` starts at file byte ``starts[c]`` (HDF5 gives absolute offsets,
userblock included), row ``r`` at ``starts[r // k] + (r % k) * row_bytes``. Chunks written one
after another lie back to back, in runs broken where HDF5 put index nodes between them (2-3 runs
in an 80 MB file). A batch within one run, the chunk-aligned case, is one ``np.take`` from an
array view of the run. Any other batch is one fancy index at byte offsets into the file viewed as
overlapping records of ``row_bytes`` bytes, one starting at every byte (a void dtype with stride
1; no copy of the file), so scattered rows never cost a read of whole chunks.

Safety: touching a mapped page beyond the end of a file that shrank raises SIGBUS, which kills
the process. trainset's writers replace files by rename, which leaves an open reader's inode (and
mapping) intact; a file changed in place is detected before every batch by its size and mtime
(``os.fstat`` of the mapped descriptor), and raises :class:`TrainsetError` naming the file and the
fix. Its ctime is compared too while the file is still linked, so a same-size rewrite whose mtime
was put back (``rsync --inplace -t``) is seen; not once it is unlinked, because replacing a file by
rename moves the replaced inode's ctime (ext4), and that file keeps serving its unchanged bytes.
The check cannot cover a truncation during the gather itself (one batch copy); h5py, for
comparison, reads zeros past the end of a truncated file without a word. The mapping uses its own
descriptor, opened by path and checked to be the inode h5py has open. HDF5 locks files with
``flock`` where it can (Linux, macOS), per open descriptor, so the mapping's descriptor takes no
part in them; where HDF5 falls back to ``fcntl`` locks, which belong to the process, closing the
mapping's descriptor releases HDF5's lock on the file.
"""

from __future__ import annotations

import mmap
import os
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

import h5py
import numpy as np

from trainset.errors import TrainsetError

_NUMERIC = "fiuc"  # kinds whose stored bytes are the array's bytes when the HDF5 type is native
_UNSEEN = object()
Describe = Callable[[str], "tuple[h5py.Dataset, np.dtype, tuple[int, ...]] | None"]


@dataclass
class RowMap:
    """Where a dataset's rows lie in the file: chunk ``c`` (``chunk`` rows of ``row_bytes`` bytes)
    at byte ``starts[c]``; contiguous layout is one chunk of all rows.

    Chunks stored back to back form a run (``run_of[c]``, the first chunk of run ``r`` is
    ``firsts[r]``); a batch within one run, the usual chunk-aligned case, is an ``np.take`` from an
    array view of the run (``views``, made on first use).
    """

    starts: np.ndarray
    chunk: int
    size: int
    row_bytes: int
    dtype: np.dtype
    shape: tuple[int, ...]
    run_of: np.ndarray = field(init=False, repr=False)
    firsts: np.ndarray = field(init=False, repr=False)
    views: dict[int, np.ndarray] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        breaks = np.flatnonzero(np.diff(self.starts) != self.chunk * self.row_bytes) + 1
        self.firsts = np.r_[0, breaks].astype(np.int64)
        self.run_of = np.repeat(np.arange(self.firsts.size), np.diff(np.r_[self.firsts, self.starts.size]))

    def offsets(self, rows: np.ndarray) -> np.ndarray:
        """Byte offset of each row (rows in range: the caller checks)."""
        if self.starts.size == 1:
            return self.starts[0] + rows * self.row_bytes
        return self.starts[rows // self.chunk] + (rows % self.chunk) * self.row_bytes


class MappedFile:
    """A read-only mapping of one open local HDF5 file, with its size, mtime and ctime when mapped.

    Made by :func:`map_file`; one per process (a reader drops it when pickled and makes a new one
    after a fork, with its h5py handle). ``take`` gathers rows of a dataset in one copy.
    """

    def __init__(self, path: str | os.PathLike, fd: int, stat: os.stat_result) -> None:
        self.path, self._fd, self._stat = path, fd, (stat.st_size, stat.st_mtime_ns)
        self._ctime = stat.st_ctime_ns
        self._map = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        self._records: dict[int, np.ndarray] = {}
        self._rows: dict[Any, RowMap | None] = {}
        self._release = weakref.finalize(self, _release, self._map, fd)  # also when dropped unclosed

    @property
    def mapped(self) -> set[tuple[int, str]]:
        """(part, variable) pairs gathered from the mapping so far; the others are read through h5py."""
        return {key for key, found in self._rows.items() if found is not None}

    def close(self) -> None:
        """Unmap and close the descriptor (arrays already returned are copies and stay valid)."""
        self._records.clear()
        for found in self._rows.values():
            if found is not None:
                found.views.clear()
        self._release()

    def check(self) -> None:
        """Raise :class:`TrainsetError` when the file changed in place since it was mapped."""
        stat = os.fstat(self._fd)
        if (stat.st_size, stat.st_mtime_ns) != self._stat or (stat.st_nlink and stat.st_ctime_ns != self._ctime):
            raise TrainsetError(
                f"{self.path}: the file changed on disk while open for reading (size {self._stat[0]} -> "
                f"{stat.st_size} bytes, or its modification or status-change time); reading on could return mixed or "
                "missing data. Fix: open the dataset again after it is rewritten (trainset's writers "
                "replace a file by rename, which open readers do not notice)")

    def take_variables(self, part: int, rows: np.ndarray, names: list[str], describe: Describe
                       ) -> dict[str, np.ndarray] | None:
        """Variable -> rows ``rows`` (in range, any order, repeats allowed) of part ``part``, one gather
        each, after :meth:`check`; None when a variable cannot be mapped (read it through h5py).

        ``describe(name)`` gives, on a variable's first use, its dataset and the dtype and
        per-sample shape the reader promises (None: no such variable).
        """
        maps = []
        for name in names:
            found = self._rows.get((part, name), _UNSEEN)
            if found is _UNSEEN:
                found = self._rows[part, name] = self._row_map(describe, name)
            if found is None:
                return None
            maps.append(found)
        self.check()
        bounds = (int(rows.min()), int(rows.max())) if rows.size else None
        return {name: self.take(found, rows, bounds) for name, found in zip(names, maps)}

    def _row_map(self, describe: Describe, name: str) -> RowMap | None:
        try:
            described = describe(name)
            if described is None:
                return None
            ds, dtype, shape = described
            found = _row_map(ds, np.dtype(dtype), tuple(shape), len(self._map))
            return found if found is not None and self._agrees(ds, found) else None
        except (OSError, ValueError, KeyError, RuntimeError, TypeError):
            return None

    def take(self, rows_map: RowMap, rows: np.ndarray, bounds: tuple[int, int] | None = None) -> np.ndarray:
        """``ds[rows]`` for rows in range, in the order given (repeats allowed): one gather.

        ``bounds``: ``(rows.min(), rows.max())`` when the caller has them.
        """
        if not rows.size:
            return np.empty((0, *rows_map.shape), rows_map.dtype)
        lo, hi = bounds if bounds is not None else (int(rows.min()), int(rows.max()))
        run = rows_map.run_of[lo // rows_map.chunk]
        if run == rows_map.run_of[hi // rows_map.chunk]:
            first = int(rows_map.firsts[run]) * rows_map.chunk
            return np.take(self._run_view(rows_map, int(run)), rows - first if first else rows, axis=0)
        picked = self._record_view(rows_map.row_bytes)[rows_map.offsets(rows)]
        return picked.view(rows_map.dtype).reshape(rows.size, *rows_map.shape)

    def _run_view(self, rows_map: RowMap, run: int) -> np.ndarray:
        """The rows of run ``run`` as one array over the mapping."""
        view = rows_map.views.get(run)
        if view is None:
            first = int(rows_map.firsts[run])
            end = int(rows_map.firsts[run + 1]) if run + 1 < rows_map.firsts.size else rows_map.starts.size
            count = min(end * rows_map.chunk, rows_map.size) - first * rows_map.chunk
            view = np.ndarray((count, *rows_map.shape), rows_map.dtype, buffer=self._map,
                              offset=int(rows_map.starts[first]))
            rows_map.views[run] = view
        return view

    def _record_view(self, row_bytes: int) -> np.ndarray:
        """The file as overlapping records of ``row_bytes`` bytes, one starting at every byte."""
        view = self._records.get(row_bytes)
        if view is None:
            view = np.ndarray((len(self._map) - row_bytes + 1,), np.dtype((np.void, row_bytes)),
                              buffer=self._map, strides=(1,))
            self._records[row_bytes] = view
        return view

    def _agrees(self, ds: h5py.Dataset, rows_map: RowMap) -> bool:
        """First and last rows as h5py reads them: a guard against any misread of the layout."""
        ends = np.unique([0, ds.shape[0] - 1]) if ds.shape[0] else np.empty(0, np.int64)
        return all(np.array_equal(self.take(rows_map, np.array([r])).view(np.uint8),
                                  np.ascontiguousarray(ds[r:r + 1]).view(np.uint8)) for r in ends)


def _release(mapping: mmap.mmap, fd: int) -> None:
    try:
        mapping.close()
    except BufferError:  # a view of the mapping is still alive: unmapped when it goes
        pass
    os.close(fd)


def map_file(f: h5py.File, path: str | os.PathLike) -> MappedFile | None:
    """A :class:`MappedFile` of the local file ``f`` has open, or None where that is not possible
    (another HDF5 driver, an empty file, a platform without ``mmap``, or ``path`` naming another
    file now than the one h5py opened)."""
    if f.driver != "sec2":
        return None
    try:
        opened = os.fstat(f.id.get_vfd_handle())
        fd = os.open(path, os.O_RDONLY)
    except (OSError, ValueError, TypeError):
        return None
    try:
        stat = os.fstat(fd)
        if (stat.st_dev, stat.st_ino) != (opened.st_dev, opened.st_ino) or not stat.st_size:
            os.close(fd)
            return None
        return MappedFile(path, fd, stat)
    except (OSError, ValueError):
        os.close(fd)
        return None


class LazyMapping:
    """A reader's :class:`MappedFile` of the file its h5py handle has open, made on first use.

    Mapping is tried once per handle, so a file that cannot be mapped is not retried every batch;
    readers make a new one with each new handle (after a fork, on close, when pickled).
    """

    def __init__(self) -> None:
        self.file: MappedFile | None = None
        self.tried = False

    def take(self, handle: h5py.File, path: str | os.PathLike, part: int, rows: np.ndarray, names: list[str],
             describe: Describe) -> dict[str, np.ndarray] | None:
        """:meth:`MappedFile.take_variables`; None where the file or a variable cannot be mapped."""
        if not names:
            return None
        if not self.tried:
            self.file, self.tried = map_file(handle, path), True
        return None if self.file is None else self.file.take_variables(part, rows, names, describe)

    def close(self) -> None:
        """Unmap the file, if it was mapped."""
        if self.file is not None:
            self.file.close()


def _row_map(ds: h5py.Dataset, dtype: np.dtype, shape: tuple[int, ...], size: int) -> RowMap | None:
    """Where ``ds``'s rows lie in the file, when its stored bytes are the rows' bytes; else None."""
    if (ds.dtype != dtype or dtype.kind not in _NUMERIC or ds.shape[1:] != shape or not ds.ndim
            or not h5py.h5t.py_create(dtype).equal(ds.id.get_type())):
        return None
    row_bytes = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    if not row_bytes or row_bytes > size:
        return None
    plist = ds.id.get_create_plist()
    layout = plist.get_layout()
    if layout == h5py.h5d.CONTIGUOUS:
        offset = ds.id.get_offset()
        if offset is None or ds.id.get_storage_size() != ds.shape[0] * row_bytes:
            return None
        starts, chunk = np.array([offset], np.int64), max(1, ds.shape[0])
    elif layout == h5py.h5d.CHUNKED and ds.chunks[1:] == shape and not plist.get_nfilters():
        chunk = ds.chunks[0]
        starts = _chunk_starts(ds, chunk, chunk * row_bytes)
        if starts is None:
            return None
    else:
        return None
    if starts.size and (starts.min() < 0 or int(starts.max()) + chunk * row_bytes > size):
        return None  # beyond the mapped file: never index past it
    return RowMap(starts, chunk, ds.shape[0], row_bytes, dtype, shape)


def _chunk_starts(ds: h5py.Dataset, chunk: int, chunk_bytes: int) -> np.ndarray | None:
    """File offset of each chunk, in row order; None when one is missing, filtered or odd-sized."""
    count = -(-ds.shape[0] // chunk)
    starts = np.full(count, -1, np.int64)
    odd = []

    def visit(info: Any) -> None:
        first = info.chunk_offset[0]
        if (info.byte_offset is None or info.filter_mask or info.size != chunk_bytes or first % chunk
                or any(info.chunk_offset[1:])):
            odd.append(info)
        elif first // chunk < count:
            starts[first // chunk] = info.byte_offset

    if hasattr(ds.id, "chunk_iter"):
        ds.id.chunk_iter(visit)
    else:  # HDF5 < 1.14: one lookup per chunk
        for c in range(count):
            visit(ds.id.get_chunk_info_by_coord((c * chunk, *(0,) * (ds.ndim - 1))))
    return None if odd or (starts < 0).any() else starts
