"""Reading a ``-wds`` folder: :class:`WdsSource`, a streaming reader over its shards."""

from __future__ import annotations

import mmap
import os
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from trainset.errors import TrainsetError
from trainset.io.base import Block, PartInfo, Reader, Splits, VariableInfo
from trainset.io.wds.index import REWRITE, SPLITS_FILE, read_index
from trainset.io.wds.members import ShardLayout, shard_file_problem, walk_handle, walk_shard
from trainset.splits import read_splits


_VERIFIED: dict[int, set[tuple]] = {}
"""Process id -> shards whose sha256 that process checked, keyed on (device, inode, size, mtime_ns,
ctime_ns, expected sha256). Shared by every reader and epoch of the process, so a shard is hashed
once per process, not per epoch; any rewrite, touch or chmod of it moves ctime and makes it hashed
again. A forked worker starts with an empty set (it verifies for itself)."""


MAPPED_SHARDS = 48
"""Mapped shards a reader keeps between epochs (least recently used evicted). Each holds two file
descriptors (its handle, and the one mmap duplicates), per process and DataLoader worker: 96 at
the cap, well inside the usual limit of 1024. Evicting only costs a re-walk of the shard's headers
(its sha256 stays verified in :data:`_VERIFIED`)."""


class WdsSource(Reader):
    """Streaming, lazily opened reader of a ``-wds`` folder (what :meth:`WebDatasetFormat.reader` returns).

    Tar shards are read front to back, so there is no :meth:`read` of arbitrary rows
    (``random_access`` is False): blocks stream in stored order with :meth:`iter_blocks`, or
    shard by shard with :meth:`iter_shard` (what the loaders' workers share out).

    Parameters
    ----------
    path : str or PathLike
        The ``TS_<name>-wds`` folder.
    verify : bool
        Check each shard's size and sha256 against ``index.json`` once per process before reading
        it (one extra pass over the shard, from the page cache); ``False`` skips it.

    Notes
    -----
    Nothing is opened until first use; pickling keeps only the path, so DataLoader workers
    re-read ``index.json`` and open their own shard handles.
    """

    random_access = False

    def __init__(self, path: str | os.PathLike, verify: bool = True) -> None:
        self.path, self.verify = Path(path), verify
        self._meta: dict[str, Any] | None = None
        self._splits: dict[str, Splits | None] = {}  # cache: "stored" -> splits.json content
        self._verified: dict[int, tuple] = {}
        self._maps: dict[int, MappedShard] = {}  # shard -> its current mapping (local shards only)
        self._pid = os.getpid()

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "verify": self.verify}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["verify"])

    @property
    def meta(self) -> dict[str, Any]:
        """The parsed ``index.json`` (read on first use, and again after a fork)."""
        if self._meta is None or self._pid != os.getpid():
            self._meta, self._pid, self._verified, self._splits = read_index(self.path), os.getpid(), {}, {}
            self._maps = {}
        return self._meta

    @property
    def parts(self) -> list[PartInfo]:
        return [PartInfo(p["name"], p["size"], {v: VariableInfo(tuple(s["shape"]), np.dtype(s["dtype"]))
                                                 for v, s in p["variables"].items()}) for p in self.meta["parts"]]

    @property
    def attrs(self) -> dict[str, Any]:
        return self.meta["attrs"]

    @property
    def splits(self) -> Splits | None:
        self.meta  # noqa: B018 - (re)reads index.json, resetting the caches after a fork
        if "stored" not in self._splits:
            file = self.path / SPLITS_FILE
            self._splits["stored"] = read_splits(file, n=len(self)) if file.exists() else None
        return self._splits["stored"]

    @property
    def shards(self) -> list[dict[str, Any]]:
        """Per shard: file, sha256, bytes, samples, members, first, last."""
        return self.meta["shards"]

    @property
    def block_size(self) -> int:
        return int(self.meta["samples_per_member"])

    def __len__(self) -> int:
        return int(self.meta["samples"])

    def split_mask(self, split: str | None) -> np.ndarray | None:
        """Boolean mask over global indices of ``split`` (``None``: every sample)."""
        if split is None:
            return None
        splits = self.splits or self._beside_splits()  # checked
        if split not in splits:
            raise TrainsetError(f"{self.path}: no split {split!r} (has {sorted(splits)}). "
                                "Fix: pick a stored split or write the dataset with splits")
        mask = np.zeros(len(self), dtype=bool)
        mask[splits[split]] = True
        return mask

    def _beside_splits(self) -> Splits:
        """The workflow's splits artifact beside the folder, as open_dataset reads it ({} if none)."""
        beside = self.path.parent / SPLITS_FILE
        return read_splits(beside, n=len(self)) if beside.exists() else {}

    def shards_with(self, mask: np.ndarray | None) -> list[int]:
        """Shard numbers holding at least one sample of ``mask``."""
        return [s for s, rec in enumerate(self.shards)
                if mask is None or mask[rec["first"]:rec["last"] + 1].any()]

    def iter_samples(self, split: str | None = None, variables: list[str] | None = None,
                     shards: list[int] | None = None) -> Iterator[dict[str, Any]]:
        """Sample dicts ``{var: ndarray, "index": int64, ("part": name)}`` in stored order.

        Parameters
        ----------
        split : str, optional
            Yield only this split's samples.
        variables : list of str, optional
            Variables to decode; members of the others are skipped unread.
        shards : list of int, optional
            Shard numbers to read, in this order (default: all).
        """
        mask, several = self.split_mask(split), len(self.meta["parts"]) > 1
        names = [p["name"] for p in self.meta["parts"]]
        for shard in self.shards_with(mask) if shards is None else shards:
            for start, part, n, block in self.iter_shard(shard, variables):
                rows = range(n) if mask is None else np.flatnonzero(mask[start:start + n]).tolist()
                for row in rows:
                    sample = {var: array[row, ...] for var, array in block.items()}
                    sample["index"] = np.int64(start + row)
                    if several:
                        sample["part"] = names[part]
                    yield sample

    def read(self, part: int, local: np.ndarray, variables: list[str] | None = None) -> dict[str, np.ndarray]:
        """Refused: tar shards are streamed, not read by row."""
        raise TrainsetError(f"{self.path}: a WebDataset is streamed in stored order, not read by row "
                            "(random_access is False). Fix: use iter_blocks(), or the NetCDF, HDF5 or Zarr copy")

    def iter_blocks(self, indices: np.ndarray | None = None, variables: list[str] | None = None,
                    rows: int | list[int] | None = None) -> Iterator[Block]:
        """The samples ``indices`` (None: all) in stored order, streamed from the shards that hold them.

        Without ``rows`` each block is one member group (its selected rows); with ``rows`` the
        groups are re-cut into the same blocks :meth:`Reader.iter_blocks` gives a map-style
        reader, so the two agree block for block.
        """
        wanted = check_variables(self.meta, variables, self.path)
        mask = None
        if indices is not None:
            mask = np.zeros(len(self), dtype=bool)
            mask[np.asarray(indices, dtype=np.int64)] = True
        order = None if variables is None else list(dict.fromkeys(variables))
        groups = self._groups(mask, sorted(wanted) if wanted is not None else None, order)
        yield from groups if rows is None else _recut(groups, lambda part: self._block_rows(rows, part))

    def _groups(self, mask: np.ndarray | None, names: list[str] | None, order: list[str] | None) -> Iterator[Block]:
        """The member groups of the shards holding ``mask``, cut down to its rows (empty ones skipped)."""
        firsts = self.offsets()
        for shard in self.shards_with(mask):
            for first, part, n, arrays in self.iter_shard(shard, names):
                keep = np.arange(n) if mask is None else np.flatnonzero(mask[first:first + n])
                if keep.size:
                    keys = arrays if order is None else [v for v in order if v in arrays]
                    yield Block(part, first + keep - firsts[part], {v: arrays[v][keep] for v in keys})

    def iter_shard(self, shard: int, variables: list[str] | None = None
                   ) -> Iterator[tuple[int, int, int, dict[str, np.ndarray]]]:
        """(first global index, part number, samples, {var: block}) of each member group of a shard.

        Blocks always have a leading sample dimension (of length 1 for one sample per member).
        """
        meta, layout = self.meta, ShardLayout(self.meta)
        if not 0 <= shard < len(meta["shards"]):
            raise TrainsetError(f"{self.path}: no shard number {shard} (has {len(meta['shards'])})")
        wanted = check_variables(meta, variables, self.path)
        rec = meta["shards"][shard]
        with self._shard_file(shard, rec) as file:
            for event in walk_shard(file, rec, layout, wanted):
                if isinstance(event, str):
                    raise TrainsetError(f"{self._named(rec)}: {event}. {REWRITE}")
                yield event

    def mapped_shard(self, shard: int) -> MappedShard:
        """The shard's member groups (every variable) as read-only views of the verified file, mapped.

        The mapping and its walked, checked groups are kept while the file keeps the (device,
        inode, size, mtime, ctime) it was verified with, so later epochs neither hash nor walk it
        again; :meth:`MappedShard.check` tells whether it still does before its bytes are used.
        """
        meta = self.meta
        if not 0 <= shard < len(meta["shards"]):
            raise TrainsetError(f"{self.path}: no shard number {shard} (has {len(meta['shards'])})")
        rec = meta["shards"][shard]
        own = self.path / rec["file"] if isinstance(self.path, Path) else None  # None: a remote copy
        kept = self._maps.pop(shard, None)
        if kept is not None and kept.unchanged(own):
            self._maps[shard] = kept  # now the most recently used
            return kept
        with self._shard_file(shard, rec) as file:  # a remote shard's temporary copy stays mapped when removed
            local = file == own
            mapped = MappedShard(file, rec, ShardLayout(meta), self._named(rec),
                                 _VERIFIED.get(os.getpid(), set()) if local and self.verify else None, watch=local)
        if local:
            if len(self._maps) >= MAPPED_SHARDS:  # the least recently used goes (unmapped once no window holds it)
                self._maps.pop(next(iter(self._maps)))
            self._maps[shard] = mapped
        return mapped

    @contextmanager
    def _shard_file(self, shard: int, rec: dict[str, Any]) -> Iterator[Path]:
        """The shard as a local file, verified (when :attr:`verify`) before it is read."""
        file = self.path / rec["file"]
        if self.verify:
            self._verify(shard, file, rec)
        yield file

    def _named(self, rec: dict[str, Any]) -> Any:
        """How messages name a shard."""
        return self.path / rec["file"]

    def _verify(self, shard: int, file: Path, rec: dict[str, Any]) -> None:
        """Size and sha256 against index.json, once per (process, file state)."""
        try:
            stat = file.stat()
        except OSError as error:
            raise TrainsetError(f"{file}: shard missing or unreadable ({error}). {REWRITE}") from error
        key = (*_stat_key(stat), rec["sha256"])
        verified = _VERIFIED.setdefault(os.getpid(), set())
        if key in verified:
            return
        problem = shard_file_problem(file, rec)
        if problem:
            raise TrainsetError(f"{file}: {problem}. {REWRITE}")
        if len(verified) > 65536:
            verified.clear()
        verified.add(key)


class MappedShard:
    """A shard mapped read-only into memory, its member groups walked and checked as views into it.

    Parameters
    ----------
    file : Path
        The shard, already verified (when verifying) by the reader.
    rec, layout : dict, ShardLayout
        Its index.json record and the dataset's member layout.
    name : Any
        How messages name the shard.
    verified : set of tuple, optional
        The process's verified (device, inode, size, mtime_ns, ctime_ns, sha256) keys: the opened
        file must have one of them, so a file swapped in after the check is never mapped.
    watch : bool
        Whether :meth:`check` compares the file with its state when mapped (False for a private
        temporary copy, which nothing else can reach once it is removed, and its removal moves ctime).

    Attributes
    ----------
    groups : list of (first global index, part, samples, {var: read-only view})
    buffer : mmap.mmap or bytes
        The mapped bytes the views point into.

    Notes
    -----
    Touching a mapped page past the end of a file that shrank raises SIGBUS, which kills the
    process. :meth:`check` (one ``fstat``) turns a file truncated or rewritten in place between
    two uses into a :class:`TrainsetError`, so readers call it before and after each use of the
    bytes; a truncation *during* one use (one batch gather, or the walk of the headers here)
    cannot be caught and still kills the process. trainset's writers replace files by rename,
    which never cuts the mapped inode (check() still refuses it: the replaced file's ctime moves).
    """

    def __init__(self, file: Path, rec: dict[str, Any], layout: ShardLayout, name: Any,
                 verified: set[tuple] | None, watch: bool = True) -> None:
        self.name, self.sha256, self.watch = name, rec["sha256"], watch
        # kept open: check() fstat-s the mapped inode (mmap's own duplicate descriptor is not reachable)
        self._handle = open(file, "rb")
        weakref.finalize(self, self._handle.close)
        self.stat = _stat_key(os.fstat(self._handle.fileno()))
        if verified is not None and (*self.stat, self.sha256) not in verified:
            self._handle.close()
            raise TrainsetError(f"{name}: shard changed between its sha256 check and its mapping. {REWRITE}")
        self.buffer: Any = self._map()
        self.groups = self._walk(rec, layout)

    def _map(self) -> Any:
        """The whole file, mapped read-only (``b""`` for an empty one, which mmap refuses)."""
        try:
            size = self.stat[2]
            return mmap.mmap(self._handle.fileno(), size, access=mmap.ACCESS_READ) if size else b""
        except (OSError, ValueError) as error:
            raise TrainsetError(f"{self.name}: cannot map the shard into memory ({error}). Fix: copy the dataset "
                                "to a local file system, or stream it sample by sample (no batch_size)") from error

    def _walk(self, rec: dict[str, Any], layout: ShardLayout) -> list[tuple]:
        """Every member group, checked as :func:`walk_handle` checks them, as views into :attr:`buffer`."""
        groups = []
        for event in walk_handle(self._handle, rec, layout, None, mapped=self.buffer):
            if isinstance(event, str):
                raise TrainsetError(f"{self.name}: {event}. {REWRITE}")
            groups.append(event)
        return groups

    def unchanged(self, path: Path | None) -> bool:
        """Whether ``path`` still names the mapped file, unchanged since it was mapped."""
        try:
            return path is not None and _stat_key(path.stat()) == self.stat
        except OSError:
            return False

    def check(self) -> None:
        """Refuse to use the mapped bytes once the file changed (size, mtime or ctime moved)."""
        if self.watch and _stat_key(os.fstat(self._handle.fileno())) != self.stat:
            raise TrainsetError(f"{self.name}: shard changed while it was being read (its bytes are no longer "
                                f"the verified ones); do not rewrite a dataset while it is read. {REWRITE}")


def _stat_key(stat: os.stat_result) -> tuple[int, int, int, int, int]:
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def check_variables(meta: dict[str, Any], variables: list[str] | None, path: Path) -> set[str] | None:
    """The requested variables as a set; an error names unknown ones."""
    if variables is None:
        return None
    known = {v for p in meta["parts"] for v in p["variables"]}
    unknown = sorted(set(variables) - known)
    if unknown:
        raise TrainsetError(f"{path}: no variable(s) {unknown} (has {sorted(known)}). Fix: request stored variables")
    return set(variables)


def _recut(groups: Iterator[Block], size_of: Any) -> Iterator[Block]:
    """Blocks of ``size_of(part)`` consecutive rows of each part (the last one short) from smaller groups."""
    buffers: dict[int, list[Block]] = {}
    held: dict[int, int] = {}

    def cut(part: int, final: bool) -> Iterator[Block]:
        pieces, held[part] = buffers.pop(part, []), 0
        if not pieces:
            return
        local = np.concatenate([p.local for p in pieces])
        arrays = {v: np.concatenate([p.arrays[v] for p in pieces]) for v in pieces[0].arrays}
        size, start = size_of(part), 0
        while local.size - start >= size or (final and start < local.size):
            yield Block(part, local[start:start + size], {v: a[start:start + size] for v, a in arrays.items()})
            start += size
        if start < local.size:
            buffers[part] = [Block(part, local[start:], {v: a[start:] for v, a in arrays.items()})]
            held[part] = local.size - start

    current = None
    for group in groups:
        if current is not None and group.part != current:
            yield from cut(current, final=True)
        current = group.part
        buffers.setdefault(group.part, []).append(group)
        held[group.part] = held.get(group.part, 0) + group.local.size
        if held[group.part] >= size_of(group.part):
            yield from cut(group.part, final=False)
    for part in sorted(buffers):
        yield from cut(part, final=True)
