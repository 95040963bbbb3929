"""Writing a collection into an open HDF5 file in the single or presplit layout."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

if TYPE_CHECKING:  # annotations only
    import xarray as xr

from trainset.collection import SAMPLE, Collection
from trainset.errors import TrainsetError
from trainset.io.base import ChunkShare, Splits
from trainset.io.hdf5.encoding import COMPRESSIONS, LAYOUTS, OPTIONS, VERSION, dumps, encode, variable_meta
from trainset.io.hdf5.scales import name_axes
from trainset.splits import check_splits
from trainset.versions import VERSION_ATTR

_RESERVED = ("coords", "splits", "parts", "index")
_SLAB_BYTES = 16 << 20  # a few chunks per write call: bounded memory at any dataset size


def checked_layout(collection: Collection, splits: Splits | None, options: dict[str, Any],
                    path: Path) -> tuple[str, int, str | None, Splits | None]:
    """Options and splits checked as :meth:`HDF5Format.write` checks them."""
    layout, chunk, compression = _options(options)
    splits = None if splits is None else check_splits(splits, len(collection))
    _check_names(collection, splits, layout, path)
    if layout == "presplit":
        _check_presplit(collection, splits, path)
    return layout, chunk, compression, splits


def _options(options: dict[str, Any]) -> tuple[str, int, str | None]:
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise TrainsetError(f"hdf5 format: unknown option(s) {sorted(unknown)}. Fix: use {sorted(OPTIONS)}")
    opts = {**OPTIONS, **options}
    if opts["layout"] not in LAYOUTS:
        raise TrainsetError(f"hdf5 format: layout {opts['layout']!r}. Fix: use 'single' or 'presplit'")
    if isinstance(opts["chunk"], bool) or not isinstance(opts["chunk"], (int, np.integer)) or opts["chunk"] < 1:
        raise TrainsetError(f"hdf5 format: chunk {opts['chunk']!r}. Fix: a positive number of samples per chunk")
    if opts["compression"] not in COMPRESSIONS:
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
    variables = [variable_meta(str(n), v, f"{where} variable {n!r}") for n, v in part.data_vars.items()]
    coords = [{**variable_meta(str(n), v, f"{where} coordinate {n!r}"), "per_sample": v.dims[:1] == (SAMPLE,)}
              for n, v in part.coords.items()]
    group.attrs["trainset_size"] = size
    group.attrs["trainset_variables"] = dumps(variables, where)
    group.attrs["trainset_coords"] = dumps(coords, where)
    for meta in variables:
        _write_variable(group, meta["name"], part[meta["name"]], rows, chunk, compression, where, share)
    if coords:
        box = group.create_group("coords", track_times=False)
        for meta in coords:
            values = part.coords[meta["name"]].values
            values = encode(values[rows] if meta["per_sample"] and rows is not None else values, where)
            text = h5py.string_dtype() if values.dtype.kind == "O" else None
            box.create_dataset(meta["name"], data=values, dtype=text, track_times=False)
            box[meta["name"]].attrs["per_sample"] = meta["per_sample"]
    named = [(group[m["name"]], m["dims"]) for m in variables]
    named += [(group["coords"][m["name"]], m["dims"]) for m in coords]
    name_axes(group, named, _RESERVED)


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
        ds[lo:hi] = encode(np.asarray(var.isel({SAMPLE: take}).values), f"{where} variable {name!r}")


def write_file(f: h5py.File, collection: Collection, splits: Splits | None, layout: str, chunk: int,
               compression: str | None, share: ChunkShare | None = None) -> None:
    f.attrs[VERSION_ATTR] = VERSION
    f.attrs["trainset_layout"] = layout
    f.attrs["trainset_parts"] = dumps(list(collection.parts), "part names")
    f.attrs["trainset_attrs"] = dumps(collection.attrs, "collection attrs")
    if splits:
        f.attrs["trainset_split_names"] = dumps(list(splits), "split names")
    several = len(collection.parts) > 1
    box = f.create_group("parts", track_times=False) if several else f
    for name, part in collection.parts.items():
        group = box.create_group(name, track_times=False) if several else f
        group.attrs["trainset_part_attrs"] = dumps(part.attrs, f"part {name!r} attrs")
        if layout == "presplit":
            for split, rows in splits.items():
                rows_group = f.create_group(split, track_times=False)
                _write_rows(rows_group, part, rows, chunk, compression, f"split {split!r}", share)
                index = rows_group.create_dataset("index", data=rows, dtype=np.int64, track_times=False)
                if SAMPLE in rows_group:  # the global numbers of the group's samples, along them
                    index.dims[0].attach_scale(rows_group[SAMPLE])
        else:
            _write_rows(group, part, None, chunk, compression, f"part {name!r}", share)
    if splits and layout == "single":
        box = f.create_group("splits", track_times=False)
        for split, rows in splits.items():
            box.create_dataset(split, data=rows, dtype=np.int64, track_times=False)
