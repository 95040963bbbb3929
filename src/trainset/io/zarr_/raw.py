"""Shuffled rows of an uncompressed zarr array gathered straight from its chunk files.

Why: trainset's default ``compression: none`` writes each chunk file as the chunk's array bytes
(zarr's ``bytes`` codec, little-endian), so row ``r`` of chunk ``c`` is ``row_bytes`` bytes at
offset ``(r % chunk) * row_bytes`` of file ``c/<c>/0/...``. Through zarr-python a batch costs its
async layer (~0.3 ms per chunk) and two copies (the chunk, then the gather). Here it is one
``preadv`` per chunk whose buffers are the rows' places in the output batch: the kernel copies
each stored row once, from the page cache into the batch (rows of a chunk the batch skips go to
one junk row; a run of skipped rows longer than :data:`GAP_BYTES` starts a new read instead).
``os.preadv`` takes the rows as memoryview slices of the batch, so every write the kernel makes
is bounds-checked by Python (libc's ``preadv`` through ctypes, with an array of raw addresses,
was a tenth faster per batch, but a wrong address there would corrupt memory silently). Rows
smaller than :data:`SCATTER_MIN_ROW_BYTES` (labels) are read as one span into a scratch buffer and
gathered from it, fewer Python objects than one buffer per row. A row wanted twice is read once
and copied. Reading never maps a file (a file cut while mapped would kill the process with SIGBUS).

What is read here: only what :meth:`ZarrReader._raw` accepts (the one raw codec chain, trainset's
chunk grid, ``/``-separated default chunk keys, the manifest's dtype; rows of zero bytes need no
file). A chunk file is opened with ``O_NOFOLLOW | O_NONBLOCK`` and must be a regular file of exactly
the chunk's size; any other case (a FIFO or device, which ``O_NONBLOCK`` keeps from blocking the
open, a link as the file itself, an I/O error, a short read) gives None and the caller reads through
zarr-python, which reads or names the problem. Links: every link inside the store is refused when
the store is opened, and ``O_NOFOLLOW`` refuses the chunk file itself being one later; a link to a
folder made inside the store after it was opened (``c/3 -> elsewhere``) is followed, here as by
zarr-python.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

import numpy as np

from trainset.io.base import gather_rows, scratch_buffer

SCATTER_MIN_ROW_BYTES = 512
"""Rows at least this long are read straight into the batch (one buffer each); shorter rows (a
label's 8 bytes) cost more as Python buffer objects than as a second copy."""
GAP_BYTES = 1 << 16
"""Skipped rows between two wanted rows of a chunk are read into the junk row up to this many
bytes (a copy within the cache costs less than another system call); a longer gap splits the read."""
try:
    IOV_MAX = max(16, os.sysconf("SC_IOV_MAX"))  # buffers per call (1024 on Linux and macOS; POSIX promises 16)
except (AttributeError, ValueError, OSError):
    IOV_MAX = 16
READ_MAX = 1 << 30
"""Bytes per ``preadv`` call at most (Linux returns at most ~2 GiB per call; a shorter read falls back)."""
_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
"""``O_NONBLOCK``: opening a FIFO for reading would otherwise wait for a writer (no effect on regular files)."""


@dataclass(eq=False)
class ChunkRows:
    """The rows of a batch that lie in one chunk, and where they go in the batch: the same for every
    variable of a part (all share the chunk grid), so a batch groups its rows once."""

    chunk: int
    """The chunk's number."""
    local: np.ndarray
    """Rows within the chunk, in batch order."""
    positions: np.ndarray
    """Their places in the batch."""
    low: int
    """``local.min()``: reads start at this row."""
    high: int
    """``local.max() + 1``."""
    _dest: np.ndarray | None = field(default=None, init=False, repr=False)

    @property
    def dest(self) -> np.ndarray:
        """For each row ``low..high-1`` of the chunk, its place in the batch (-1: not wanted); a row
        wanted twice has one of its places (the reader copies it to the others)."""
        if self._dest is None:
            self._dest = np.full(self.high - self.low, -1, dtype=np.int64)
            self._dest[self.local - self.low] = self.positions
        return self._dest

    @property
    def dense(self) -> bool:
        """Whether every row ``low..high-1`` is wanted exactly once (no junk, no repeats)."""
        return self.local.size == self.high - self.low and bool(self.dest.min() >= 0)


def group_rows(rows: np.ndarray, chunk: int) -> list[ChunkRows]:
    """``rows`` (int64, not empty, in range) by chunk of ``chunk`` rows: one group for a chunk-aligned batch."""
    first, last = int(rows.min()), int(rows.max())
    if first // chunk == last // chunk:
        c = first // chunk
        return [ChunkRows(c, rows - c * chunk, np.arange(rows.size), first - c * chunk, last + 1 - c * chunk)]
    which = rows // chunk
    order = np.argsort(which, kind="stable")  # by chunk, batch order kept within each
    groups = []
    for positions in np.split(order, np.flatnonzero(np.diff(which[order])) + 1):
        c = int(which[positions[0]])
        local = rows[positions] - c * chunk
        groups.append(ChunkRows(c, local, positions, int(local.min()), int(local.max()) + 1))
    return groups


@dataclass(eq=False)
class RawArray:
    """One raw zarr array on trainset's chunk grid: where its chunk files are and how rows lie in them.

    Parameters
    ----------
    folder : str
        The array's chunk folder (``<store>/<world>/<variable>/c``).
    chunk : int
        Rows per chunk file.
    dtype, shape
        The per-sample dtype and shape (a row is one sample).
    """

    folder: str
    chunk: int
    dtype: np.dtype
    shape: tuple[int, ...]
    row_bytes: int = field(init=False)
    _suffix: str = field(init=False, repr=False)
    _junk: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.row_bytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        self._suffix = "/0" * len(self.shape)  # per-sample dims are whole: chunk (c, 0, ..., 0)
        self._junk = np.empty(max(self.row_bytes, 1), dtype=np.uint8)  # skipped rows land here

    def take(self, groups: list[ChunkRows], n: int) -> np.ndarray | None:
        """The batch of ``n`` rows grouped as ``groups`` (:func:`group_rows`); None when a chunk file
        is missing, not a regular file, of the wrong size, or read short."""
        out = np.empty((n, *self.shape), dtype=self.dtype)
        if not self.row_bytes:
            return out
        for rows in groups:
            if not self._chunk(rows, out):
                return None
        return out

    def _chunk(self, rows: ChunkRows, out: np.ndarray) -> bool:
        """The rows of one chunk into their places in ``out``; False on any problem, an I/O error
        included (zarr-python then reads the chunk, or raises an error naming its file)."""
        try:
            fd = os.open(f"{self.folder}/{rows.chunk}{self._suffix}", _FLAGS)
        except OSError:
            return False
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size != self.chunk * self.row_bytes:
                return False
            if self.row_bytes < SCATTER_MIN_ROW_BYTES:
                return self._span(fd, rows, out)
            return self._scatter(fd, rows, out)
        except OSError:
            return False
        finally:
            os.close(fd)

    def _span(self, fd: int, rows: ChunkRows, out: np.ndarray) -> bool:
        """Read rows ``low..high-1`` into a scratch buffer, then gather from it."""
        buf = scratch_buffer((self.chunk, *self.shape), self.dtype)[:rows.high - rows.low]
        if not _read(fd, [buf.reshape(-1).view(np.uint8).data], rows.low * self.row_bytes):
            return False
        whole = rows.positions.size == out.shape[0]  # the only group: its places are 0..n-1 in order
        gather_rows(buf, rows.local - rows.low, out, None if whole else rows.positions)
        return True

    def _scatter(self, fd: int, rows: ChunkRows, out: np.ndarray) -> bool:
        """Read each wanted row straight into its place in ``out``; then copy rows wanted twice."""
        dest, size = rows.dest, self.row_bytes
        if rows.dense:  # the chunk-aligned batch: a permutation of rows low..high-1
            return self._into(fd, out, dest, rows.low * size, True)
        for start, stop in _runs(dest, max(1, GAP_BYTES // size)):
            if not self._into(fd, out, dest[start:stop], (rows.low + start) * size, False):
                return False
        got = dest[rows.local - rows.low]
        again = got != rows.positions
        if again.any():
            out[rows.positions[again]] = out[got[again]]
        return True

    def _into(self, fd: int, out: np.ndarray, dest: np.ndarray, offset: int, dense: bool) -> bool:
        """Consecutive rows of the file from byte ``offset``, row ``i`` into ``out[dest[i]]`` (the
        junk row where ``dest[i]`` is -1; ``dense``: none is)."""
        size = self.row_bytes
        view = out.reshape(-1).view(np.uint8).data
        junk = self._junk.data
        starts = (dest * size).tolist()
        buffers = [view[s:s + size] for s in starts] if dense else [view[s:s + size] if s >= 0 else junk
                                                                        for s in starts]
        return _read(fd, buffers, offset, size)


def _runs(dest: np.ndarray, gap: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges of ``dest`` to read, each from a wanted row (``>= 0``) to a wanted
    row, cut where more than ``gap`` unwanted rows lie between two wanted ones."""
    wanted = np.flatnonzero(dest >= 0)
    cuts = np.flatnonzero(np.diff(wanted) > gap + 1) + 1
    return [(int(run[0]), int(run[-1]) + 1) for run in np.split(wanted, cuts)]


def _read_at(fd: int, buffers: list, offset: int) -> int:
    """``os.preadv`` where the platform has it, else a seek and ``os.readv``."""
    if hasattr(os, "preadv"):
        return os.preadv(fd, buffers, offset)
    os.lseek(fd, offset, os.SEEK_SET)
    return os.readv(fd, buffers)


def _read(fd: int, buffers: list, offset: int, size: int | None = None) -> bool:
    """Fill ``buffers`` in turn with the file's bytes from ``offset``; False on a short read.

    ``size``: every buffer's length (rows), else each is measured. At most :data:`IOV_MAX` buffers
    per call; rows of ``size`` bytes are also cut at about :data:`READ_MAX` bytes per call. Measured
    buffers (one span) are not cut: one over ~2 GiB reads short on Linux, and the caller falls back.
    """
    lengths = None if size is not None else [len(b) for b in buffers]
    per_call = IOV_MAX if size is None else max(1, min(IOV_MAX, READ_MAX // max(size, 1)))
    for start in range(0, len(buffers), per_call):
        group = buffers[start:start + per_call]
        want = len(group) * size if lengths is None else sum(lengths[start:start + per_call])  # type: ignore[operator]
        if _read_at(fd, group, offset) != want:
            return False
        offset += want
    return True
