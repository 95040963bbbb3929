"""Inspecting an HDF5 file: every structural problem (with its fix), and what a reader needs."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from trainset.collection import SAMPLE
from trainset.errors import TrainsetError
from trainset.io.base import Splits
from trainset.io.hdf5.encoding import LAYOUTS, OPTIONS, reason, stored_ok
from trainset.io.hdf5.refs import outside_references
from trainset.io.remote import RemoteFile, local_or_remote
from trainset.splits import check_splits
from trainset.versions import VERSION_ATTR, check_version

logger = logging.getLogger(__name__)


@dataclass
class StoredPart:
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
class FileInfo:
    """Everything a reader needs, gathered from metadata, indices and splits only."""

    layout: str
    attrs: dict[str, Any]
    parts: list[StoredPart]
    split_names: list[str] = field(default_factory=list)
    splits: Splits | None = None
    order: tuple[np.ndarray, np.ndarray] | None = None  # presplit: group and row of each sample
    block_size: int = 256
    foreign: bool = False  # no trainset metadata: written by plain h5py in the guide's layouts


class _Inspector:
    """Walk a file's structure, collect every problem (with its fix) and build :class:`FileInfo`."""

    def __init__(self, f: h5py.File, path: Path) -> None:
        self.f, self.path, self.problems = f, path, []
        self.own = VERSION_ATTR in f.attrs

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
            self.add(key, f"not JSON ({reason(error)})", "rewrite the file with trainset")
            return [] if default is None else default

    def run(self) -> FileInfo | None:
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

    def _own(self) -> FileInfo | None:
        try:
            check_version("hdf5", self.f.attrs[VERSION_ATTR], self.path)
        except TrainsetError as error:
            self.problems.append(str(error))
            return None
        layout = str(self.f.attrs.get("trainset_layout", "single"))
        if layout not in LAYOUTS:
            self.add("/", f"layout {layout!r} unknown to this trainset", "upgrade trainset")
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
        parts = [StoredPart(name, self.json(self.f[home], "trainset_part_attrs", {}), rows,
                       [int(self.f[g].attrs.get("trainset_size", 0)) for g in rows],
                       self.json(self.f[rows[0]], "trainset_variables", None),
                       self.json(self.f[rows[0]], "trainset_coords", None)) for name, home, rows in homes]
        if not parts:
            self.add("/", "no part holds any rows", "rewrite the file with trainset")
            return None
        return FileInfo(layout, attrs, parts, split_names)

    def _exists(self, key: str, what: str) -> bool:
        if isinstance(self.f.get(key), h5py.Group):
            return True
        self.add(f"/{key}", f"{what} missing (the metadata lists it)", "the file was edited or damaged; rewrite it")
        return False

    def _foreign(self) -> FileInfo | None:
        """A file without trainset metadata, in one of the guide's two layouts."""
        roots = [k for k, v in self.f.items() if isinstance(v, h5py.Dataset)]
        groups = sorted((k for k, v in self.f.items() if isinstance(v, h5py.Group)
                         and isinstance(v.get("data"), h5py.Dataset)), key=_split_rank)
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
        return FileInfo("single" if roots else "presplit", {}, [StoredPart("all", {}, paths, sizes, variables)],
                        [] if roots else groups, foreign=True)

    def _group(self, path: str, size: int, part: StoredPart) -> None:
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
            if list(ds.shape) != wanted or not stored_ok(ds.dtype, meta["dtype"]):
                self.add(key, f"{ds.dtype} {list(ds.shape)}, metadata says {meta['dtype']} {wanted}",
                         "rewrite the file with trainset")

    def _dataset(self, ds: h5py.Dataset, key: str, meta: dict[str, Any]) -> None:
        if not stored_ok(ds.dtype, meta["dtype"]):
            self.add(key, f"dtype {ds.dtype}, but the metadata says {meta['dtype']}",
                     f"store it as {meta['dtype']} (trainset keeps dtypes exactly; rewrite the file from its source)")
        if list(ds.shape[1:]) != meta["shape"]:
            self.add(key, f"per-sample shape {list(ds.shape[1:])}, but the metadata says {meta['shape']}",
                     "rewrite the file from its source")
        try:
            if ds.shape[0]:
                ds[:1], ds[-1:]
        except Exception as error:  # noqa: BLE001 - any failure to read is a damaged file
            self.add(key, f"unreadable ({reason(error)})", "the file is damaged; rewrite it")

    def _order(self, part: StoredPart, info: FileInfo) -> tuple[np.ndarray, np.ndarray]:
        """Group and row of every global sample, from each split group's ``index``.

        A foreign file (the guide's h5py code) whose split groups hold no ``index`` at all is
        numbered by row order: the groups' rows one after another, in the order ``train``,
        ``val``, ``test``, then any other group by name. trainset's own files always need it.
        """
        indexed = [isinstance(self.f[path].get("index"), h5py.Dataset) for path in part.groups]
        if not self.own and not any(indexed):
            return self._row_order(part, info)
        if not self.own and not all(indexed):
            self.add("/", f"split groups {[p for p, i in zip(part.groups, indexed) if not i]} have no 'index' but "
                     f"{[p for p, i in zip(part.groups, indexed) if i]} do",
                     "give every split group an int64 'index' (global sample numbers) or none (row order)")
            return np.zeros(part.size, dtype=np.int32), np.zeros(part.size, dtype=np.int64)
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

    def _row_order(self, part: StoredPart, info: FileInfo) -> tuple[np.ndarray, np.ndarray]:
        """Row order is the index: each group's rows numbered on from the previous group's."""
        starts = np.cumsum([0, *part.sizes])
        info.splits = {path.strip("/"): np.arange(lo, hi, dtype=np.int64)
                       for path, lo, hi in zip(part.groups, starts[:-1], starts[1:])}
        group_of = np.repeat(np.arange(len(part.groups), dtype=np.int32), part.sizes)
        row_of = np.concatenate([np.arange(size, dtype=np.int64) for size in part.sizes]) if part.sizes \
            else np.zeros(0, dtype=np.int64)
        return group_of, row_of

    def _splits(self, info: FileInfo) -> Splits | None:
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
            return check_splits(splits, n, "/splits") if len(splits) == len(info.split_names or splits) else None
        except TrainsetError as error:  # duplicates or overlaps: the message names the split and the fix
            self.problems.append(f"{self.path}: {error}")
            return None


_SPLIT_RANK = {"train": 0, "val": 1, "test": 2}


def _split_rank(name: str) -> tuple[int, str]:
    """The guide's split groups first (train, val, test), then the others by name."""
    return _SPLIT_RANK.get(name, len(_SPLIT_RANK)), name


def inspect_file(path: str | os.PathLike, opener: RemoteFile | None = None) -> tuple[FileInfo | None, list[str]]:
    """``(info, problems)``; never raises on a bad file. ``opener``: the file is an object of an
    fsspec filesystem, read through file objects (``path`` is its URL)."""
    path = local_or_remote(path) if opener else Path(path)
    if not (opener.exists() if opener else path.is_file()):
        return None, [f"{path}: no such file. Fix: check the path, or write the dataset first"]
    inspector = None
    try:
        with h5py.File(opener() if opener else path, "r") as f:
            outside = outside_references(f, path)  # before any data is read: they would be read from outside
            if outside:
                return None, outside
            inspector = _Inspector(f, path)
            return inspector.run(), inspector.problems
    except Exception as error:  # noqa: BLE001 - check() reports, it never raises
        logger.debug("inspecting %s failed", path, exc_info=True)
        return None, [*(inspector.problems if inspector else []),
                      f"{path}: not a readable HDF5 dataset ({reason(error)}). "
                      "Fix: the file is truncated or damaged; rewrite it (rerun the rule that made it)"]


def checked_info(path: str | os.PathLike, opener: RemoteFile | None = None) -> FileInfo:
    info, problems = inspect_file(path, opener)
    if problems or info is None:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise TrainsetError(f"{len(problems)} problem(s) in HDF5 dataset {path}:\n{listed}")
    return info
