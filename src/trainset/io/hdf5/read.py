"""Block reads of a stored HDF5 dataset (h5py directly: xarray costs 0.2-1 ms a sample)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

if TYPE_CHECKING:  # annotations only: xarray is imported by load_part, the one function that builds it
    import xarray as xr

from trainset.errors import TrainsetError
from trainset.io.base import PartInfo, Reader, Splits, VariableInfo, gather_chunks, scratch_buffer
from trainset.io.hdf5.check import FileInfo, StoredPart
from trainset.io.hdf5.encoding import decode, reason
from trainset.io.hdf5.mapped import LazyMapping
from trainset.io.hdf5.refs import open_contained
from trainset.io.remote import RemoteFile, local_or_remote

_ROW_COST_BYTES = 384 << 10  # slice bytes read in the time HDF5 spends selecting one sparse row


def read_rows(ds: h5py.Dataset, rows: np.ndarray, out: np.ndarray) -> None:
    """Fill ``out`` with rows ``rows`` (sorted, unique) of ``ds``, reading each touched chunk once.

    Rows are cut into segments at gaps that cross a chunk boundary, so a segment lies in one chunk
    or continues contiguously into the next. A contiguous segment is one direct read (the
    aligned-block case); otherwise the slice covering the segment is read and the rows taken,
    unless the data are uncompressed and the rows so sparse that reading the slice costs more
    than HDF5's per-row selection (~50 us a row, about the time to read 384 KB of a slice,
    measured): those rows of all segments then go into one selection, in which HDF5 visits each
    touched chunk once.
    """
    if not rows.size:
        return
    chunk = ds.chunks[0] if ds.chunks else 1
    row_bytes = out.itemsize * int(np.prod(out.shape[1:]))
    cut = np.flatnonzero((np.diff(rows) > 1) & (np.diff(rows // chunk) > 0)) + 1
    sparse = []
    for s, e in zip(np.r_[0, cut], np.r_[cut, rows.size]):
        lo, hi = int(rows[s]), int(rows[e - 1]) + 1
        if hi - lo == e - s:
            ds.read_direct(out, np.s_[lo:hi], np.s_[s:e])
        elif ds.compression or (hi - lo) * row_bytes <= (e - s) * _ROW_COST_BYTES:
            out[s:e] = ds[lo:hi][rows[s:e] - lo]
        else:
            sparse.append(np.arange(s, e))
    if sparse:
        where = np.concatenate(sparse)
        out[where] = ds[rows[where]]


def take_chunks(ds: h5py.Dataset, rows: np.ndarray, out: np.ndarray) -> bool:
    """Fill ``out[i] = ds[rows[i]]`` (rows in any order, repeats allowed) from whole raw chunks.

    A shuffled batch of a chunk-aligned sampler touches one or two chunks: each is read once with
    HDF5's direct chunk read into a buffer, and the rows are gathered from it straight into ``out``
    (one copy, no per-row selection). Only for unfiltered chunks whose stored dtype is ``out``'s
    and whose chunk spans whole samples, when the touched chunks hold at most twice the rows
    wanted; returns False (``out`` untouched or partly filled) for the caller's general path.
    """
    chunks = ds.chunks
    if (not rows.size or chunks is None or chunks[1:] != ds.shape[1:] or ds.dtype != out.dtype
            or ds.id.get_create_plist().get_nfilters()):
        return False
    chunk = chunks[0]
    which = rows // chunk
    touched = np.unique(which)
    if touched.size * chunk > 2 * rows.size:
        return False  # sparse rows: whole chunks would read mostly unwanted samples
    zeros = (0,) * (ds.ndim - 1)

    def read_chunk(c: int, raw: np.ndarray) -> bool:
        mask, got = ds.id.read_direct_chunk((c * chunk, *zeros), out=raw)
        return not mask and len(got) == raw.size

    return gather_chunks(read_chunk, rows, which, touched, scratch_buffer((chunk, *ds.shape[1:]), ds.dtype), out)


def read_whole(ds: h5py.Dataset, dtype: str) -> np.ndarray:
    values = ds.asstr()[()] if np.dtype(dtype).kind in "UO" else ds[()]
    return decode(np.asarray(values, dtype=object) if isinstance(values, str) else values, dtype)


class HDF5Reader(Reader):
    """Block reads of a stored HDF5 dataset; opens the file on first use and again after a fork.

    Metadata (parts, attrs, splits, the presplit row order) is gathered and checked when the
    reader is made, so a bad file fails there with every problem listed. The reader pickles
    without its file handle, so DataLoader workers can receive it before opening.
    """

    def __init__(self, path: str | os.PathLike, info: FileInfo, opener: RemoteFile | None = None) -> None:
        self.path, self._info, self.block_size = local_or_remote(path) if opener else Path(path), info, info.block_size
        self._opener = opener
        self._parts = [PartInfo(p.name, p.size, {v["name"]: VariableInfo(tuple(v["shape"]), np.dtype(v["dtype"]))
                                                 for v in p.variables}) for p in info.parts]
        self._file: h5py.File | None = None
        self._pid: int | None = None
        self._datasets: dict[tuple[str, str], h5py.Dataset] = {}
        self._mapping = LazyMapping()

    @property
    def parts(self) -> list[PartInfo]:
        return self._parts

    @property
    def attrs(self) -> dict[str, Any]:
        return json.loads(json.dumps(self._info.attrs))

    @property
    def foreign(self) -> bool:
        """The file has no trainset metadata (the guide's h5py layouts): seed-001 auto-split applies."""
        return self._info.foreign

    @property
    def splits(self) -> Splits | None:
        return None if self._info.splits is None else {k: v.copy() for k, v in self._info.splits.items()}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_file": None, "_pid": None, "_datasets": {}, "_mapping": LazyMapping()}

    def close(self) -> None:
        """Close the file handle and mapping of this process (reopened on the next read)."""
        if self._pid == os.getpid():
            self._mapping.close()
            if self._file is not None:
                self._file.close()
        self._file, self._pid, self._datasets, self._mapping = None, None, {}, LazyMapping()

    def _handle(self) -> h5py.File:
        """This process's h5py handle (opened on first use, and anew in a forked worker)."""
        if self._pid != os.getpid():
            self._file, self._pid, self._datasets = open_contained(self.path, self._opener), os.getpid(), {}
            self._mapping = LazyMapping()
        return self._file

    def _dataset(self, group: str, name: str) -> h5py.Dataset:
        handle = self._handle()
        if (group, name) not in self._datasets:
            self._datasets[group, name] = handle[group][name]
        return self._datasets[group, name]

    def read(self, part: int, local: np.ndarray, variables: list[str] | None = None) -> dict[str, np.ndarray]:
        """Rows ``local`` (sorted, unique) of part number ``part``: variable -> stacked array."""
        if not 0 <= part < len(self._info.parts):
            raise TrainsetError(f"{self.path}: part number {part} outside 0..{len(self._info.parts) - 1}")
        meta = self._info.parts[part]
        local = np.asarray(local, dtype=np.int64).reshape(-1)
        if local.size and (local[0] < 0 or local[-1] >= meta.size or np.any(np.diff(local) <= 0)):
            raise TrainsetError(f"{self.path}: part {meta.name!r}: indices must be sorted, unique and within "
                                f"0..{meta.size - 1}. Fix: sort and deduplicate them (np.unique)")
        names = [v["name"] for v in meta.variables] if variables is None else list(variables)
        unknown = sorted(set(names) - {v["name"] for v in meta.variables})
        if unknown:
            raise TrainsetError(f"{self.path}: part {meta.name!r} has no variable(s) {unknown}. "
                                f"Fix: use {[v['name'] for v in meta.variables]}")
        pieces = self._pieces(meta, local)
        try:
            return {name: self._read(meta, name, pieces, local.size) for name in names}
        except (OSError, ValueError, KeyError, RuntimeError) as error:
            raise TrainsetError(f"{self.path}: part {meta.name!r}: read failed ({reason(error)}). "
                                "Fix: the file is damaged; run check() and rewrite it") from None

    def take(self, part: int, rows: np.ndarray, variables: list[str] | None = None) -> dict[str, np.ndarray]:
        """Rows in the order given: one gather from the mapped file where :mod:`trainset.io.hdf5.mapped`
        applies (a local file, unfiltered data), else whole raw chunks gathered in one pass where
        :func:`take_chunks` applies, else sorted reads reordered."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if self._info.order is not None or not 0 <= part < len(self._info.parts) or self._opener is not None:
            return super().take(part, rows, variables)
        meta = self._info.parts[part]
        if rows.size and (rows.min() < 0 or rows.max() >= meta.size):
            return super().take(part, rows, variables)  # read() names the problem
        names = [v["name"] for v in meta.variables] if variables is None else list(variables)
        mapped = self._take_mapped(part, meta, rows, names)
        if mapped is not None:
            return mapped
        out = {}
        for name in names:
            var = next((v for v in meta.variables if v["name"] == name), None)
            if var is None or np.dtype(var["dtype"]).kind in "MmUOS":
                return super().take(part, rows, variables)
            out[name] = np.empty((rows.size, *var["shape"]), dtype=np.dtype(var["dtype"]))
            try:
                done = take_chunks(self._dataset(meta.groups[0], name), rows, out[name])
            except (OSError, ValueError, KeyError, RuntimeError):
                done = False
            if not done:
                return super().take(part, rows, variables)
        return out

    def _take_mapped(self, part: int, meta: StoredPart, rows: np.ndarray,
                     names: list[str]) -> dict[str, np.ndarray] | None:
        """:meth:`take` as one gather per variable from this process's mapping of the local file
        (:mod:`trainset.io.hdf5.mapped`); None where the file or a variable cannot be mapped."""
        if self._opener is not None:
            return None  # a remote file: nothing to map
        try:
            handle = self._handle()
        except OSError:
            return None  # read() names the problem
        return self._mapping.take(handle, self.path, part, rows, names, lambda name: self._described(meta, name))

    def _described(self, meta: StoredPart, name: str) -> tuple[h5py.Dataset, np.dtype, tuple[int, ...]] | None:
        var = next((v for v in meta.variables if v["name"] == name), None)
        if var is None:
            return None
        return self._dataset(meta.groups[0], name), np.dtype(var["dtype"]), tuple(var["shape"])

    def _pieces(self, meta: StoredPart, local: np.ndarray) -> list[tuple[str, np.ndarray | None, np.ndarray]]:
        """(group, positions in the output or None for all, sorted rows of that group) per touched group."""
        if self._info.order is None:
            return [(meta.groups[0], None, local)]
        group_of, row_of = self._info.order
        which, rows = group_of[local], row_of[local]
        if not local.size or (which == which[0]).all():  # one group: its rows are sorted too
            return [(meta.groups[int(which[0]) if local.size else 0], None, rows)]
        return [(meta.groups[k], sel, rows[sel]) for k in np.unique(which) for sel in [np.flatnonzero(which == k)]]

    def _read(self, meta: StoredPart, name: str, pieces: list, size: int) -> np.ndarray:
        var = meta.variable(name)
        dtype = np.dtype(var["dtype"])
        out = np.empty((size, *var["shape"]), dtype=np.int64 if dtype.kind in "Mm" else dtype)
        for group, sel, rows in pieces:
            buf = out if sel is None else np.empty((sel.size, *out.shape[1:]), out.dtype)
            read_rows(self._dataset(group, name), rows, buf)
            if sel is not None:
                out[sel] = buf
        return decode(out, var["dtype"])


def load_part(f: h5py.File, part: StoredPart, order: tuple[np.ndarray, np.ndarray] | None) -> xr.Dataset:
    import xarray as xr  # here, not at module level: jobs that only read arrays skip its import

    def gather(meta: dict[str, Any], prefix: str, per_sample: bool) -> xr.Variable:
        pieces = [read_whole(f[g][prefix + meta["name"]], meta["dtype"]) for g in part.groups[:1 if not per_sample
                                                                                                 else None]]
        values = pieces[0]
        if order is not None and per_sample:
            values = np.empty((part.size, *pieces[0].shape[1:]), dtype=pieces[0].dtype)
            for number, piece in enumerate(pieces):
                values[order[0] == number] = piece
        return xr.Variable(meta["dims"], values, meta["attrs"])

    data = {m["name"]: gather(m, "", True) for m in part.variables}
    coords = {m["name"]: gather(m, "coords/", m["per_sample"]) for m in part.coords}
    return xr.Dataset(data, coords=coords, attrs=part.attrs)
