"""HDF5 adapter (format ``hdf5``, suffix ``.h5``) in the layouts of the sequence-task guide (seed 001).

The guide's users open these files with plain h5py (``f["data"]``, ``f["train/labels"]``), so
trainset keeps those keys and adds only what the old files lacked: the global ``index`` of
pre-split rows (so sample order survives), splits, coordinates and attributes, and the metadata
that lets :meth:`HDF5Format.check` tell a damaged file from a sound one.

On disk
-------
Root attributes: ``trainset_format_version`` (1), ``trainset_layout`` (``single``/``presplit``),
``trainset_parts`` (JSON list of part names, in order), ``trainset_attrs`` (JSON collection
attrs) and, with splits, ``trainset_split_names`` (JSON list, in order).

``layout="single"`` (default), one part::

    /data, /labels, ...     every data variable, samples first, chunks (chunk, *per-sample shape)
    /coords/<name>          coordinates; text as variable-length UTF-8, datetimes as int64
    /splits/<name>          int64 global indices of each split (when splits are given)

``layout="single"``, several parts (worlds): ``/parts/<name>/<variable>``,
``/parts/<name>/coords/<coord>`` and ``/splits/<name>``.

``layout="presplit"`` (one part; the splits must cover every sample): ``/<split>/<variable>``
(that split's rows in global order), ``/<split>/index`` (int64 global indices of those rows) and
``/<split>/coords/<coord>`` (per-sample coordinates sliced, the others whole).

A group holding rows has attributes ``trainset_size`` and ``trainset_variables`` /
``trainset_coords`` (JSON lists of name, dims, dtype, per-sample shape, attrs; coordinates also
``per_sample``, repeated as an attribute of each coordinate dataset); a part's group (the root
for one part) has ``trainset_part_attrs``.

Options of :meth:`HDF5Format.write`: ``layout``, ``chunk`` (samples per chunk, default 256; chunks
are ``(chunk, *per-sample shape)``, so a 256-sample block is one chunk) and ``compression`` (None,
``"gzip"`` level 4 or ``"lzf"``, both with the shuffle filter). Compression saves little on float
noise (gzip 84 %, lzf 92 % of the raw size) and cuts block reads ~5x, so it is off by default.

Determinism: no timestamps (``track_times=False`` on the file, every group and dataset), a fixed
creation order and key-sorted JSON, so equal input gives byte-identical files.

Reading uses h5py directly (xarray costs 0.2-1 ms a sample); :func:`read_rows` reads each touched
chunk once per call. Files are opened with HDF5's default locking; on file systems without locks
(some NFS/Lustre mounts) set ``HDF5_USE_FILE_LOCKING=FALSE``.

Files written by plain h5py in the guide's layouts are read too: root datasets become one part
(dims ``sample, <name>_dim1, ...``); split groups are read only if each holds an ``index``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np
import xarray as xr

from trainset.collection import SAMPLE, Collection
from trainset.errors import TrainsetError
from trainset.io.base import ChunkShare, Format, PartInfo, Reader, Splits, VariableInfo, register
from trainset.provenance import atomic_path
from trainset.splits import check_splits

logger = logging.getLogger(__name__)

VERSION = 1
OPTIONS = {"layout": "single", "chunk": 256, "compression": None}
_RESERVED = ("coords", "splits", "parts", "index")
_SLAB_BYTES = 16 << 20  # a few chunks per write call: bounded memory at any dataset size
_ROW_COST_BYTES = 384 << 10  # slice bytes read in the time HDF5 spends selecting one sparse row
_MAGIC = b"\x89HDF\r\n\x1a\n"


# ---------------------------------------------------------------- encoding

def _dumps(obj: Any, what: str) -> str:
    """Key-sorted compact JSON; numpy scalars and arrays become plain numbers and lists."""
    def plain(value: Any) -> Any:
        if isinstance(value, (np.generic, np.ndarray)):
            return value.tolist()
        raise TypeError(f"{type(value).__name__} is not JSON-able")
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=plain)
    except (TypeError, ValueError) as error:
        raise TrainsetError(f"{what}: {error}. Fix: keep attrs to numbers, text, lists and dicts") from error


def _encode(values: np.ndarray, what: str) -> np.ndarray:
    """Storage form: text -> object str (vlen UTF-8), datetimes -> int64, the rest unchanged."""
    kind = values.dtype.kind
    if kind in "Mm":
        return values.view(np.int64)
    if kind == "U":
        return values.astype(object)
    if kind == "O" and not all(isinstance(v, str) for v in values.ravel()):
        raise TrainsetError(f"{what} holds objects that are not text. Fix: convert them to str or numbers")
    return values


def _decode(values: np.ndarray, dtype: str) -> np.ndarray:
    """Inverse of :func:`_encode`, given the dtype recorded in the metadata."""
    wanted = np.dtype(dtype)
    if wanted.kind in "Mm":
        return values.view(wanted)
    if wanted.kind == "U":
        return np.asarray(values).astype(wanted)
    return np.asarray(values, dtype=object) if wanted.kind == "O" else values


def _stored_ok(stored: np.dtype, dtype: str) -> bool:
    """Whether a dataset's HDF5 dtype is the storage form of metadata dtype ``dtype``."""
    wanted = np.dtype(dtype)
    if wanted.kind in "UO":
        return h5py.check_string_dtype(stored) is not None
    return stored == (np.dtype(np.int64) if wanted.kind in "Mm" else wanted)


def _meta(name: str, var: xr.DataArray, what: str) -> dict[str, Any]:
    if SAMPLE in var.dims[1:]:
        raise TrainsetError(f"{what}: dimension '{SAMPLE}' must come first, got {var.dims}. Fix: transpose it")
    return {"name": name, "dims": list(var.dims), "dtype": str(var.dtype), "attrs": json.loads(_dumps(var.attrs, what)),
            "shape": list(var.shape[1:] if var.dims[:1] == (SAMPLE,) else var.shape)}


# ---------------------------------------------------------------- writing

def _options(options: dict[str, Any]) -> tuple[str, int, str | None]:
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise TrainsetError(f"hdf5 format: unknown option(s) {sorted(unknown)}. Fix: use {sorted(OPTIONS)}")
    opts = {**OPTIONS, **options}
    if opts["layout"] not in ("single", "presplit"):
        raise TrainsetError(f"hdf5 format: layout {opts['layout']!r}. Fix: use 'single' or 'presplit'")
    if isinstance(opts["chunk"], bool) or not isinstance(opts["chunk"], (int, np.integer)) or opts["chunk"] < 1:
        raise TrainsetError(f"hdf5 format: chunk {opts['chunk']!r}. Fix: a positive number of samples per chunk")
    if opts["compression"] not in (None, "gzip", "lzf"):
        raise TrainsetError(f"hdf5 format: compression {opts['compression']!r}. Fix: use None, 'gzip' or 'lzf'")
    return opts["layout"], int(opts["chunk"]), opts["compression"]


def _check_names(collection: Collection, splits: Splits | None, layout: str, path: Path) -> None:
    def bad(name: str) -> bool:
        return not name or "/" in name or name in (".", "..")
    for part, ds in collection.parts.items():
        names = [part, *map(str, ds.data_vars), *map(str, ds.coords)]
        wrong = [n for n in names if bad(n)] + [n for n in map(str, ds.data_vars) if n in _RESERVED]
        if wrong:
            raise TrainsetError(f"{path}: part {part!r}: names {wrong} cannot be HDF5 keys here. Fix: rename them "
                                f"(no '/', not {list(_RESERVED)})")
        text = [n for n, v in ds.data_vars.items() if v.dtype.kind in "OUS"]
        if text:
            raise TrainsetError(f"{path}: part {part!r}: variables {text} hold text; samples hold numbers only. "
                                "Fix: make them coordinates")
    wrong = [n for n in splits or {} if bad(n) or (layout == "presplit" and n in _RESERVED)]
    if wrong:
        raise TrainsetError(f"{path}: split names {wrong} cannot be HDF5 group names. Fix: rename the splits")


def _check_presplit(collection: Collection, splits: Splits | None, path: Path) -> None:
    if len(collection.parts) > 1:
        raise TrainsetError(f"{path}: layout='presplit' holds one part, got {len(collection.parts)} "
                            f"({list(collection.parts)}). Fix: use layout='single' (parts under /parts/<name>)")
    if not splits:
        raise TrainsetError(f"{path}: layout='presplit' needs splits. Fix: pass splits=... or use layout='single'")
    uncovered = len(collection) - sum(len(ix) for ix in splits.values())
    if uncovered:
        raise TrainsetError(f"{path}: layout='presplit' stores only split rows, but {uncovered} of "
                            f"{len(collection)} samples are in no split. Fix: assign every sample to a split "
                            "or use layout='single'")


def _chunks(shape: tuple[int, ...], itemsize: int, chunk: int) -> tuple[int, ...] | None:
    """(chunk, *per-sample shape), at most ~1 GB; None (contiguous) for empty arrays."""
    if 0 in shape:
        return None
    per_sample = itemsize * int(np.prod(shape[1:]))
    return (max(1, min(chunk, shape[0], (1 << 30) // per_sample)), *shape[1:])


def _write_rows(group: h5py.Group, part: xr.Dataset, rows: np.ndarray | None, chunk: int,
                compression: str | None, where: str, share: ChunkShare | None = None) -> None:
    """Write the rows ``rows`` (None: all) of every variable and coordinate of ``part`` into ``group``."""
    size = part.sizes[SAMPLE] if rows is None else len(rows)
    variables = [_meta(str(n), v, f"{where} variable {n!r}") for n, v in part.data_vars.items()]
    coords = [{**_meta(str(n), v, f"{where} coordinate {n!r}"), "per_sample": v.dims[:1] == (SAMPLE,)}
              for n, v in part.coords.items()]
    group.attrs["trainset_size"] = size
    group.attrs["trainset_variables"] = _dumps(variables, where)
    group.attrs["trainset_coords"] = _dumps(coords, where)
    for meta in variables:
        _write_variable(group, meta["name"], part[meta["name"]], rows, chunk, compression, where, share)
    if coords:
        box = group.create_group("coords", track_times=False)
        for meta in coords:
            values = part.coords[meta["name"]].values
            values = _encode(values[rows] if meta["per_sample"] and rows is not None else values, where)
            text = h5py.string_dtype() if values.dtype.kind == "O" else None
            box.create_dataset(meta["name"], data=values, dtype=text, track_times=False)
            box[meta["name"]].attrs["per_sample"] = meta["per_sample"]


def _write_variable(group: h5py.Group, name: str, var: xr.DataArray, rows: np.ndarray | None, chunk: int,
                    compression: str | None, where: str, share: ChunkShare | None = None) -> None:
    """Create a chunked dataset and fill it in chunk-aligned slabs (bounded memory for lazy input).

    ``share`` (dataset path, chunk count) -> sample chunks limits the filling to those chunks
    (a parallel job's share); the others stay unallocated.
    """
    size = var.shape[0] if rows is None else len(rows)
    storage = np.dtype(np.int64) if var.dtype.kind in "Mm" else var.dtype
    shape = (size, *var.shape[1:])
    chunks = _chunks(shape, storage.itemsize, chunk)
    squeeze = dict(compression=compression, shuffle=True) if compression and chunks else {}
    ds = group.create_dataset(name, shape=shape, dtype=storage, chunks=chunks, track_times=False, **squeeze)
    slab = chunks[0] * max(1, _SLAB_BYTES // (storage.itemsize * int(np.prod(chunks)))) if chunks else max(size, 1)
    first, stop = 0, size
    if share is not None and chunks:
        mine = share(ds.name, -(-size // chunks[0]))
        first, stop = min(mine.start * chunks[0], size), min(mine.stop * chunks[0], size)
    for lo in range(first, stop, slab):
        hi = min(stop, lo + slab)
        take = slice(lo, hi) if rows is None else rows[lo:hi]
        ds[lo:hi] = _encode(np.asarray(var.isel({SAMPLE: take}).values), f"{where} variable {name!r}")


def _write(f: h5py.File, collection: Collection, splits: Splits | None, layout: str, chunk: int,
           compression: str | None, share: ChunkShare | None = None) -> None:
    f.attrs["trainset_format_version"] = VERSION
    f.attrs["trainset_layout"] = layout
    f.attrs["trainset_parts"] = _dumps(list(collection.parts), "part names")
    f.attrs["trainset_attrs"] = _dumps(collection.attrs, "collection attrs")
    if splits:
        f.attrs["trainset_split_names"] = _dumps(list(splits), "split names")
    several = len(collection.parts) > 1
    box = f.create_group("parts", track_times=False) if several else f
    for name, part in collection.parts.items():
        group = box.create_group(name, track_times=False) if several else f
        group.attrs["trainset_part_attrs"] = _dumps(part.attrs, f"part {name!r} attrs")
        if layout == "presplit":
            for split, rows in splits.items():
                rows_group = f.create_group(split, track_times=False)
                _write_rows(rows_group, part, rows, chunk, compression, f"split {split!r}", share)
                rows_group.create_dataset("index", data=rows, dtype=np.int64, track_times=False)
        else:
            _write_rows(group, part, None, chunk, compression, f"part {name!r}", share)
    if splits and layout == "single":
        box = f.create_group("splits", track_times=False)
        for split, rows in splits.items():
            box.create_dataset(split, data=rows, dtype=np.int64, track_times=False)


# ---------------------------------------------------------------- inspection

@dataclass
class _Part:
    """A stored part: its attrs, the groups holding its rows, and variable/coordinate metadata."""

    name: str
    attrs: dict[str, Any]
    groups: list[str]
    sizes: list[int]
    variables: list[dict[str, Any]]
    coords: list[dict[str, Any]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(self.sizes)

    def variable(self, name: str) -> dict[str, Any]:
        return next(v for v in self.variables if v["name"] == name)


@dataclass
class _Info:
    """Everything a reader needs, gathered from metadata, indices and splits only."""

    layout: str
    attrs: dict[str, Any]
    parts: list[_Part]
    split_names: list[str] = field(default_factory=list)
    splits: Splits | None = None
    order: tuple[np.ndarray, np.ndarray] | None = None  # presplit: group and row of each sample
    block_size: int = 256


def _reason(error: BaseException) -> str:
    """First line of an error, without traceback text."""
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]


class _Inspector:
    """Walk a file's structure, collect every problem (with its fix) and build :class:`_Info`."""

    def __init__(self, f: h5py.File, path: Path) -> None:
        self.f, self.path, self.problems = f, path, []
        self.own = "trainset_format_version" in f.attrs

    def add(self, key: str, problem: str, fix: str) -> None:
        self.problems.append(f"{self.path}: {key}: {problem}. Fix: {fix}")

    def json(self, group: h5py.Group, name: str, default: Any) -> Any:
        """A JSON attribute; a trainset file missing it, or holding bad JSON, is a problem."""
        key = f"{group.name} attribute {name}"
        if name not in group.attrs:
            if default is None:
                self.add(key, "missing", "the file was not completely written by trainset; rewrite it")
            return [] if default is None else default
        try:
            return json.loads(group.attrs[name])
        except (TypeError, ValueError) as error:
            self.add(key, f"not JSON ({_reason(error)})", "rewrite the file with trainset")
            return [] if default is None else default

    def run(self) -> _Info | None:
        info = self._own() if self.own else self._foreign()
        if info is None:
            return None
        for part in info.parts:
            for group, size in zip(part.groups, part.sizes):
                self._group(group, size, part)
        if info.layout == "presplit":
            info.order = self._order(info.parts[0], info)
        else:
            info.splits = self._splits(info)
        first = info.parts[0]
        ds = self.f.get(f"{first.groups[0]}/{first.variables[0]['name']}") if first.variables and first.groups else None
        info.block_size = int(ds.chunks[0]) if isinstance(ds, h5py.Dataset) and ds.chunks else OPTIONS["chunk"]
        return info

    def _own(self) -> _Info | None:
        version = int(self.f.attrs["trainset_format_version"])
        layout = str(self.f.attrs.get("trainset_layout", "single"))
        if version > VERSION or layout not in ("single", "presplit"):
            self.add("/", f"format version {version}, layout {layout!r} unknown to this trainset", "upgrade trainset")
            return None
        attrs, names = self.json(self.f, "trainset_attrs", {}), self.json(self.f, "trainset_parts", None)
        split_names = self.json(self.f, "trainset_split_names", None if layout == "presplit" else [])
        if layout == "presplit":
            rows = ["/" + s for s in split_names if self._exists(s, "split group")]
            homes = [(names[0] if names else "all", "/", rows)] if rows and len(names) == 1 else []
        elif len(names) == 1:
            homes = [(names[0], "/", ["/"])]
        else:
            homes = [(n, f"/parts/{n}", [f"/parts/{n}"]) for n in names if self._exists(f"parts/{n}", "part group")]
        parts = [_Part(name, self.json(self.f[home], "trainset_part_attrs", {}), rows,
                       [int(self.f[g].attrs.get("trainset_size", 0)) for g in rows],
                       self.json(self.f[rows[0]], "trainset_variables", None),
                       self.json(self.f[rows[0]], "trainset_coords", None)) for name, home, rows in homes]
        if not parts:
            self.add("/", "no part holds any rows", "rewrite the file with trainset")
            return None
        return _Info(layout, attrs, parts, split_names)

    def _exists(self, key: str, what: str) -> bool:
        if isinstance(self.f.get(key), h5py.Group):
            return True
        self.add(f"/{key}", f"{what} missing (the metadata lists it)", "the file was edited or damaged; rewrite it")
        return False

    def _foreign(self) -> _Info | None:
        """A file without trainset metadata, in one of the guide's two layouts."""
        roots = [k for k, v in self.f.items() if isinstance(v, h5py.Dataset)]
        groups = [k for k, v in self.f.items() if isinstance(v, h5py.Group) and isinstance(v.get("data"), h5py.Dataset)]
        if not roots and not groups:
            self.add("/data", "missing (no trainset metadata, no root 'data', no train/val/test groups)",
                     "store data [N, T, D] at the root or in split groups, or write the file with trainset")
            return None
        box = self.f if roots else self.f[groups[0]]
        keys = sorted((k for k, v in box.items() if isinstance(v, h5py.Dataset) and k != "index"),
                      key=lambda k: (k != "data", k != "labels", k))
        if "data" not in keys:
            self.add("/data", "missing; the guide's files keep inputs under 'data'",
                     "store the inputs as 'data' [N, T, D]")
        variables = [{"name": k, "dims": [SAMPLE, *(f"{k}_dim{i}" for i in range(1, box[k].ndim))][:box[k].ndim],
                      "dtype": str(box[k].dtype), "shape": list(box[k].shape[1:]), "attrs": {}} for k in keys]
        paths = ["/"] if roots else ["/" + g for g in groups]
        sizes = [int(self.f[p][keys[0]].shape[0]) if keys and self.f[p][keys[0]].ndim else 0 for p in paths]
        return _Info("single" if roots else "presplit", {}, [_Part("all", {}, paths, sizes, variables)],
                     [] if roots else groups)

    def _group(self, path: str, size: int, part: _Part) -> None:
        group = self.f[path]
        counts = {}
        for meta in part.variables:
            key = f"{path.rstrip('/')}/{meta['name']}"
            ds = group.get(meta["name"])
            if not isinstance(ds, h5py.Dataset):
                self.add(key, "missing (the metadata lists it)" if self.own else "missing",
                         f"store {meta['name']!r} {meta['dtype']} with one row per sample, or rewrite the file")
            elif ds.ndim == 0 or meta["dims"][:1] != [SAMPLE]:
                self.add(key, f"not sample-first (shape {ds.shape}, dims {meta['dims']})",
                         "store it with the sample axis first")
            else:
                self._dataset(ds, key, meta)
                counts[meta["name"]] = int(ds.shape[0])
        if any(n != size for n in counts.values()):
            self.add(path, f"inconsistent sample counts between variables {counts} (expected {size})",
                     "every variable needs exactly one row per sample; rewrite the file from its source")
        for meta in part.coords:
            key = f"{path.rstrip('/')}/coords/{meta['name']}"
            ds = group.get(f"coords/{meta['name']}")
            if not isinstance(ds, h5py.Dataset):
                self.add(key, "missing (the metadata lists it)", "rewrite the file with trainset")
                continue
            wanted = ([size] if meta["per_sample"] else []) + meta["shape"]
            if list(ds.shape) != wanted or not _stored_ok(ds.dtype, meta["dtype"]):
                self.add(key, f"{ds.dtype} {list(ds.shape)}, metadata says {meta['dtype']} {wanted}",
                         "rewrite the file with trainset")

    def _dataset(self, ds: h5py.Dataset, key: str, meta: dict[str, Any]) -> None:
        if not _stored_ok(ds.dtype, meta["dtype"]):
            self.add(key, f"dtype {ds.dtype}, but the metadata says {meta['dtype']}",
                     f"store it as {meta['dtype']} (trainset keeps dtypes exactly; rewrite the file from its source)")
        if list(ds.shape[1:]) != meta["shape"]:
            self.add(key, f"per-sample shape {list(ds.shape[1:])}, but the metadata says {meta['shape']}",
                     "rewrite the file from its source")
        try:
            if ds.shape[0]:
                ds[:1], ds[-1:]
        except Exception as error:  # noqa: BLE001 - any failure to read is a damaged file
            self.add(key, f"unreadable ({_reason(error)})", "the file is damaged; rewrite it")

    def _order(self, part: _Part, info: _Info) -> tuple[np.ndarray, np.ndarray]:
        """Group and row of every global sample, from each split group's ``index``."""
        group_of, row_of = np.full(part.size, -1, dtype=np.int32), np.zeros(part.size, dtype=np.int64)
        info.splits = {}
        for number, (path, size) in enumerate(zip(part.groups, part.sizes)):
            key, ds = f"{path}/index", self.f[path].get("index")
            if not isinstance(ds, h5py.Dataset):
                self.add(key, "missing: a pre-split group needs the global sample numbers of its rows",
                         "add an int64 'index' dataset per split group, or rewrite with layout='presplit'")
                continue
            index = ds[()]
            if ds.dtype.kind not in "iu" or index.ndim != 1 or len(index) != size:
                self.add(key, f"{ds.dtype} {list(ds.shape)}, expected int64 [{size}]", "rewrite the file")
            elif size and (index.min() < 0 or index.max() >= part.size):
                self.add(key, f"indices outside 0..{part.size - 1}", "rewrite the file (indices are global)")
            elif np.any(np.diff(index) <= 0) or np.any(group_of[index] >= 0):
                self.add(key, "indices not increasing or shared with another split", "rewrite the file")
            else:
                group_of[index], row_of[index] = number, np.arange(size)
                info.splits[path.strip("/")] = index.astype(np.int64)
        if not self.problems and (group_of < 0).any():
            self.add("/", f"{int((group_of < 0).sum())} of {part.size} samples are in no split group",
                     "rewrite the file with splits covering every sample")
        return group_of, row_of

    def _splits(self, info: _Info) -> Splits | None:
        box = self.f.get("splits")
        if not info.split_names and not isinstance(box, h5py.Group):
            return None
        n, splits = sum(p.size for p in info.parts), {}
        for name in info.split_names or list(box):
            ds = box.get(name) if isinstance(box, h5py.Group) else None
            if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "iu" or ds.ndim != 1:
                self.add(f"/splits/{name}", "missing or not a 1-d integer dataset", "rewrite the file with its splits")
                continue
            index = ds[()]
            outside = int(((index < 0) | (index >= n)).sum())
            if outside:
                self.add(f"/splits/{name}", f"{outside} indices outside 0..{n - 1}",
                         "rewrite the splits (global sample numbers, in part order)")
                continue
            splits[name] = index.astype(np.int64)
        try:
            return check_splits(splits, n) if len(splits) == len(info.split_names or splits) else None
        except TrainsetError as error:
            self.add("/splits", str(error), "rewrite the splits so that they are disjoint")
            return None


def _inspect(path: str | os.PathLike) -> tuple[_Info | None, list[str]]:
    """``(info, problems)``; never raises on a bad file."""
    path = Path(path)
    if not path.is_file():
        return None, [f"{path}: no such file. Fix: check the path, or write the dataset first"]
    inspector = None
    try:
        with h5py.File(path, "r") as f:
            inspector = _Inspector(f, path)
            return inspector.run(), inspector.problems
    except Exception as error:  # noqa: BLE001 - check() reports, it never raises
        logger.debug("inspecting %s failed", path, exc_info=True)
        return None, [*(inspector.problems if inspector else []),
                      f"{path}: not a readable HDF5 dataset ({_reason(error)}). "
                      "Fix: the file is truncated or damaged; rewrite it (rerun the rule that made it)"]


def _checked(path: str | os.PathLike) -> _Info:
    info, problems = _inspect(path)
    if problems or info is None:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise TrainsetError(f"{len(problems)} problem(s) in HDF5 dataset {path}:\n{listed}")
    return info


# ---------------------------------------------------------------- reading

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


def _read_whole(ds: h5py.Dataset, dtype: str) -> np.ndarray:
    values = ds.asstr()[()] if np.dtype(dtype).kind in "UO" else ds[()]
    return _decode(np.asarray(values, dtype=object) if isinstance(values, str) else values, dtype)


class HDF5Reader(Reader):
    """Block reads of a stored HDF5 dataset; opens the file on first use and again after a fork.

    Metadata (parts, attrs, splits, the presplit row order) is gathered and checked when the
    reader is made, so a bad file fails there with every problem listed. The reader pickles
    without its file handle, so DataLoader workers can receive it before opening.
    """

    def __init__(self, path: str | os.PathLike, info: _Info) -> None:
        self.path, self._info, self.block_size = Path(path), info, info.block_size
        self._parts = [PartInfo(p.name, p.size, {v["name"]: VariableInfo(tuple(v["shape"]), np.dtype(v["dtype"]))
                                                 for v in p.variables}) for p in info.parts]
        self._file: h5py.File | None = None
        self._pid: int | None = None
        self._datasets: dict[tuple[str, str], h5py.Dataset] = {}

    @property
    def parts(self) -> list[PartInfo]:
        return self._parts

    @property
    def attrs(self) -> dict[str, Any]:
        return json.loads(json.dumps(self._info.attrs))

    @property
    def splits(self) -> Splits | None:
        return None if self._info.splits is None else {k: v.copy() for k, v in self._info.splits.items()}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_file": None, "_pid": None, "_datasets": {}}

    def close(self) -> None:
        """Close the file handle of this process (reopened on the next read)."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file, self._pid, self._datasets = None, None, {}

    def _dataset(self, group: str, name: str) -> h5py.Dataset:
        if self._pid != os.getpid():
            self._file, self._pid, self._datasets = h5py.File(self.path, "r"), os.getpid(), {}
        if (group, name) not in self._datasets:
            self._datasets[group, name] = self._file[group][name]
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
            raise TrainsetError(f"{self.path}: part {meta.name!r}: read failed ({_reason(error)}). "
                                "Fix: the file is damaged; run check() and rewrite it") from None

    def _pieces(self, meta: _Part, local: np.ndarray) -> list[tuple[str, np.ndarray | None, np.ndarray]]:
        """(group, positions in the output or None for all, sorted rows of that group) per touched group."""
        if self._info.order is None:
            return [(meta.groups[0], None, local)]
        group_of, row_of = self._info.order
        which, rows = group_of[local], row_of[local]
        if not local.size or (which == which[0]).all():  # one group: its rows are sorted too
            return [(meta.groups[int(which[0]) if local.size else 0], None, rows)]
        return [(meta.groups[k], sel, rows[sel]) for k in np.unique(which) for sel in [np.flatnonzero(which == k)]]

    def _read(self, meta: _Part, name: str, pieces: list, size: int) -> np.ndarray:
        var = meta.variable(name)
        dtype = np.dtype(var["dtype"])
        out = np.empty((size, *var["shape"]), dtype=np.int64 if dtype.kind in "Mm" else dtype)
        for group, sel, rows in pieces:
            buf = out if sel is None else np.empty((sel.size, *out.shape[1:]), out.dtype)
            read_rows(self._dataset(group, name), rows, buf)
            if sel is not None:
                out[sel] = buf
        return _decode(out, var["dtype"])


def _load_part(f: h5py.File, part: _Part, order: tuple[np.ndarray, np.ndarray] | None) -> xr.Dataset:
    def gather(meta: dict[str, Any], prefix: str, per_sample: bool) -> xr.Variable:
        pieces = [_read_whole(f[g][prefix + meta["name"]], meta["dtype"]) for g in part.groups[:1 if not per_sample
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


# ---------------------------------------------------------------- the format

# ---------------------------------------------------------------- parallel jobs

JOB_FILE = "part.h5"
"""The file a parallel job writes in its folder."""


def _checked_layout(collection: Collection, splits: Splits | None, options: dict[str, Any],
                    path: Path) -> tuple[str, int, str | None, Splits | None]:
    """Options and splits checked as :meth:`HDF5Format.write` checks them."""
    layout, chunk, compression = _options(options)
    splits = None if splits is None else check_splits(splits, len(collection))
    _check_names(collection, splits, layout, path)
    if layout == "presplit":
        _check_presplit(collection, splits, path)
    return layout, chunk, compression, splits


def write_hdf5_job(collection: Collection, path: str | os.PathLike, job: int, jobs: int,
                   splits: Splits | None = None, **options: Any) -> None:
    """Job ``job`` of ``jobs``: ``path/part.h5`` with the whole structure and its share of data chunks.

    Each chunked data variable gets a contiguous, balanced range of its sample chunks (the
    expensive part: reading the source, and compressing). :func:`gather_hdf5` copies the raw
    chunks into one file.
    """
    if not 0 <= job < jobs:
        raise TrainsetError(f"hdf5: job {job} is not in 0..{jobs - 1}")
    path = Path(path)
    layout, chunk, compression, splits = _checked_layout(collection, splits, options, path)
    with atomic_path(path) as tmp:
        tmp.mkdir(parents=True)
        with h5py.File(tmp / JOB_FILE, "w", track_times=False) as f:
            _write(f, collection, splits, layout, chunk, compression,
                   lambda name, n: range(job * n // jobs, (job + 1) * n // jobs))


def gather_hdf5(collection: Collection, job_folders: list[str | os.PathLike], path: str | os.PathLike,
                splits: Splits | None = None, **options: Any) -> None:
    """One ``.h5`` file: metadata, coordinates and splits written here, data chunks copied raw.

    Chunks are copied with HDF5's direct chunk read/write (no decompression or re-encoding),
    dataset by dataset in chunk order, so the file is byte-identical for any number of jobs.
    """
    path = Path(path)
    layout, chunk, compression, splits = _checked_layout(collection, splits, options, path)
    sources = [h5py.File(Path(folder) / JOB_FILE, "r") for folder in job_folders]
    try:
        with atomic_path(path) as tmp, h5py.File(tmp, "w", track_times=False) as f:
            _write(f, collection, splits, layout, chunk, compression, lambda name, n: range(0))
            _copy_chunks(f, sources, path)
    finally:
        for source in sources:
            source.close()
    logger.info("gathered %d jobs into %s", len(job_folders), path)


def _copy_chunks(target: h5py.File, sources: list[h5py.File], path: Path) -> None:
    """Copy every chunk of every chunked dataset of ``target`` from the job file that holds it."""
    names: list[str] = []
    target.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) and obj.chunks else None)
    for name in names:
        dataset = target[name]
        holder: dict[tuple[int, ...], h5py.Dataset] = {}
        for source in sources:
            chunks = source[name].id
            for i in range(chunks.get_num_chunks()):
                offset = chunks.get_chunk_info(i).chunk_offset
                if offset in holder:
                    raise TrainsetError(f"{path}: chunk {offset} of /{name} written by two jobs. "
                                        "Fix: rerun every hdf5 job with the same options")
                holder[offset] = source[name]
        expected = -(-dataset.shape[0] // dataset.chunks[0])
        if len(holder) != expected:
            raise TrainsetError(f"{path}: {len(holder)} of {expected} chunks of /{name} came from the jobs. "
                                "Fix: rerun every hdf5 job with the same options")
        for offset in sorted(holder):
            mask, data = holder[offset].id.read_direct_chunk(offset)
            dataset.id.write_direct_chunk(offset, data, mask)


class HDF5Format(Format):
    """``hdf5``: the seed-001 layouts, chunked per block of samples, byte-deterministic."""

    name = "hdf5"
    suffix = ".h5"

    def write(self, collection: Collection, path: str | os.PathLike, splits: Splits | None = None,
              **options: Any) -> None:
        """Write ``collection`` (and ``splits``) atomically.

        Parameters
        ----------
        collection : Collection
            The parts to store.
        path : path-like
            Target ``.h5`` file.
        splits : dict of str to ndarray, optional
            Global indices per split: stored under ``/splits``, or as the groups of ``presplit``.
        **options
            ``layout`` ("single" or "presplit"), ``chunk`` (samples per chunk, default 256) and
            ``compression`` (None, "gzip" (level 4, with shuffle) or "lzf").
        """
        path = Path(path)
        layout, chunk, compression, splits = _checked_layout(collection, splits, options, path)
        with atomic_path(path) as tmp, h5py.File(tmp, "w", track_times=False) as f:
            _write(f, collection, splits, layout, chunk, compression)
        logger.info("wrote %s (%d samples, %d part(s), layout %s)", path, len(collection), len(collection.parts),
                    layout)

    def reader(self, path: str | os.PathLike) -> HDF5Reader:
        """A :class:`HDF5Reader`; raises :class:`TrainsetError` listing every problem of a bad file."""
        return HDF5Reader(path, _checked(path))

    def load(self, path: str | os.PathLike) -> tuple[Collection, Splits | None]:
        """The whole stored collection and its splits (None when there are none)."""
        info = _checked(path)
        try:
            with h5py.File(path, "r") as f:
                parts = {p.name: _load_part(f, p, info.order) for p in info.parts}
        except (OSError, ValueError, KeyError, RuntimeError) as error:
            raise TrainsetError(f"{path}: read failed ({_reason(error)}). "
                                "Fix: the file is damaged; rewrite it") from None
        return Collection(parts, dict(info.attrs)), info.splits

    def guess_can_open(self, path: str | os.PathLike) -> bool:
        """By suffix (.h5, .hdf5, .hdf, .he5), else by the HDF5 signature (never for NetCDF names)."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix in (".h5", ".hdf5", ".hdf", ".he5"):
            return True
        if suffix in (".nc", ".nc4", ".cdf") or not path.is_file():
            return False
        with open(path, "rb") as handle:
            return handle.read(8) == _MAGIC

    def check(self, path: str | os.PathLike) -> list[str]:
        """Every structural problem of the file (each naming the key and the fix); [] when sound."""
        return _inspect(path)[1]


register(HDF5Format())
