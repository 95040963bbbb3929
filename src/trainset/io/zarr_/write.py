"""Writing a collection as a Zarr v3 store: the manifest, one group per world, chunked arrays."""

from __future__ import annotations

import asyncio
import json
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

if TYPE_CHECKING:  # annotations only: the collection handed in brings xarray
    import xarray as xr

from trainset.collection import SAMPLE, Collection
from trainset.errors import TrainsetError
from trainset.io.base import ChunkShare, Splits
from trainset.io.zarr_.store import (
    COMPRESSIONS,
    COORDS,
    FORMAT_VERSION,
    MANIFEST,
    MANIFEST_ATTR,
    PRIVATE,
    SPLITS_FILE,
    check_name,
    compressors,
    open_store,
)
from trainset.provenance import code_version, creation_date, json_sha256
from trainset.provenance import jsonable as _jsonable
from trainset.splits import check_splits, splits_to_json
from trainset.versions import KEY

_SLAB_BYTES = 16 << 20  # a few chunks per write call: bounded memory at any dataset size
_WORLD_KEYS = ("param_names", "param_bounds", "param_priors", "seeds")


def _names(part: xr.Dataset, dim: str, attr: str) -> list[str] | None:
    """Shock or variable names: the dimension coordinate, else the part attribute."""
    if dim in part.coords and part.coords[dim].ndim == 1:
        return [str(v) for v in part.coords[dim].values]
    return _jsonable(part.attrs[attr], attr) if attr in part.attrs else None


def _array_entry(name: str, var: xr.Variable, per_sample: bool) -> dict[str, Any]:
    shape = var.shape[1:] if per_sample else var.shape
    return {"name": name, "dims": list(var.dims), "shape": list(shape), "dtype": var.dtype.str}


def _manifest(collection: Collection, chunk: int, splits: Splits | None, compression: str) -> dict[str, Any]:
    """The manifest: provenance, chunking and the per-world structure (metadata only)."""
    attrs = collection.attrs
    worlds = []
    for (name, part), offset in zip(collection.parts.items(), collection.offsets.values()):
        world = {"name": name, "n_samples": int(part.sizes[SAMPLE]), "offset": offset,
                 "variables": [_array_entry(v, part[v].variable, True) for v in part.data_vars],
                 "coords": [_array_entry(str(c), part.coords[c].variable, False) for c in part.coords],
                 "shock_names": _names(part, "shock", "shock_names"),
                 "variable_names": _names(part, "variable", "variable_names")}
        world.update({key: _jsonable(part.attrs[key], key) for key in _WORLD_KEYS if key in part.attrs})
        worlds.append(world)
    config_hash = attrs.get("config_hash") or json_sha256(attrs.get("config", {}))
    return {"format": "trainset-zarr", KEY: FORMAT_VERSION, "creation_date": creation_date(),
            "code_version": code_version(), "chunk": chunk, "compression": compression,
            "config_hash": config_hash, "seed": _jsonable(attrs.get("seed"), "seed"),
            "n_samples": len(collection), "split_names": None if splits is None else list(splits),
            "worlds": worlds}


def _write_array(group: zarr.Group, name: str, var: xr.Variable, chunk: int, where: str,
                 compression: str = "none", chunk_range: range | None = None) -> None:
    """One variable as a zarr array, chunked along its first (sample) dim, written in slabs.

    ``chunk_range`` (sample chunks) writes only those chunks: the array's metadata is complete,
    the other chunk files are left to other jobs (see :func:`write_zarr_job`).
    """
    private = {"dtype": var.dtype.str}
    if var.dtype.kind == "O" and not all(isinstance(v, str) for v in np.asarray(var.values).ravel()):
        raise TrainsetError(f"{where}: object array holds non-strings. Fix: store numbers or str only")
    if PRIVATE in var.attrs:
        raise TrainsetError(f"{where}: attribute {PRIVATE!r} is reserved. Fix: rename it")
    dtype = str if var.dtype.kind in "UO" else var.dtype
    chunks = tuple(max(1, s) for s in var.shape)
    if var.dims and var.dims[0] == SAMPLE:
        chunks = (min(chunk, chunks[0]), *chunks[1:])
    array = group.create_array(name, shape=var.shape, chunks=chunks, dtype=dtype,
                               compressors=compressors(compression),
                               config={"write_empty_chunks": True}, dimension_names=list(var.dims),
                               attributes={**_jsonable(dict(var.attrs), where), PRIVATE: private})
    if not var.shape:
        array[...] = np.asarray(var.values)
        return
    row_bytes = max(1, var.dtype.itemsize * math.prod(var.shape[1:]))
    slab = chunks[0] * max(1, _SLAB_BYTES // (chunks[0] * row_bytes))
    rows = range(var.shape[0]) if chunk_range is None else range(
        min(chunk_range.start * chunks[0], var.shape[0]), min(chunk_range.stop * chunks[0], var.shape[0]))
    for start in range(rows.start, rows.stop, slab):
        stop = min(start + slab, rows.stop)
        array[start:stop] = np.asarray(var[start:stop].values)  # lazy sources read one slab


def check_options(options: dict[str, Any], compression: str, chunk: int) -> None:
    if options:
        raise TrainsetError(f"zarr write: unknown options {sorted(options)}. Fix: use 'chunk' and 'compression'")
    if compression not in COMPRESSIONS:
        raise TrainsetError(f"zarr write: compression {compression!r} unknown. Fix: use one of {list(COMPRESSIONS)}")
    if int(chunk) < 1:
        raise TrainsetError(f"zarr write: chunk={chunk} must be >= 1")


def write_store(collection: Collection, folder: Path, target: Path, splits: Splits | None, chunk: int,
                 compression: str, share: ChunkShare) -> None:
    """The whole store in ``folder`` (the caller's temporary path for ``target``, which messages
    name); data variables get only the sample chunks ``share`` gives.

    On failure, zarr's pending writes are awaited before the error reaches the caller, whose
    cleanup would otherwise race them (see :func:`settle_writes`).
    """
    try:
        _write_store(collection, folder, target, splits, chunk, compression, share)
    except BaseException:
        settle_writes()
        raise


def settle_writes(timeout: float = 60.0) -> None:
    """Wait until zarr's I/O loop runs no task (at most ``timeout`` seconds).

    A chunk write that fails (a full disk) fails the array assignment at once, while the writes
    started with it go on in zarr's I/O thread; they would recreate chunk files in a temporary
    folder after its cleanup removed it.
    """
    from zarr.core.sync import loop, sync

    if loop[0] is None or loop[0].is_closed():
        return

    async def pending() -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            tasks = asyncio.all_tasks() - {asyncio.current_task()}
            left = deadline - asyncio.get_running_loop().time()
            if not tasks or left <= 0:
                return
            await asyncio.wait(tasks, timeout=left)

    sync(pending())


def _write_store(collection: Collection, folder: Path, target: Path, splits: Splits | None, chunk: int,
                 compression: str, share: ChunkShare) -> None:
    if splits is not None:
        splits = check_splits(splits, len(collection))
    manifest = _manifest(collection, chunk, splits, compression)
    if MANIFEST_ATTR in collection.attrs:
        raise TrainsetError(f"{target}: dataset attribute {MANIFEST_ATTR!r} is reserved for the zarr manifest. "
                            "Fix: rename it")
    attrs = {**_jsonable(collection.attrs, f"{target}: dataset attrs"), MANIFEST_ATTR: manifest}
    root = zarr.create_group(open_store(folder, False), zarr_format=3, attributes=attrs)
    for (name, part), offset in zip(collection.parts.items(), collection.offsets.values()):
        chunks = share(name, math.ceil(int(part.sizes[SAMPLE]) / chunk))
        _write_part(root, folder, name, part, chunk, offset, splits, compression, chunks)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    consolidate(folder)


def consolidate(folder: Path) -> None:
    """Consolidated metadata in the root ``zarr.json``: ``xr.open_zarr`` then opens the store
    without listing it, so it warns neither about a slow open nor about the JSON files zarr
    does not own (``manifest.json``, ``splits.json``). trainset's reader never uses it."""
    with warnings.catch_warnings():  # zarr's notes on v3 consolidation and on those JSON files
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        warnings.filterwarnings("ignore", message="Object at .* is not recognized as a component")
        zarr.consolidate_metadata(open_store(folder, False), zarr_format=3)


def _write_part(root: zarr.Group, folder: Path, name: str, part: xr.Dataset, chunk: int, offset: int,
                splits: Splits | None, compression: str, chunks: range) -> None:
    check_name(name, "part")
    group = root.create_group(name, attributes=_jsonable(dict(part.attrs), f"part {name!r} attrs"))
    for var in part.data_vars:
        check_name(str(var), f"part {name!r} variable", (COORDS,))
        _write_array(group, str(var), part[var].variable, chunk, f"part {name!r} variable {var!r}", compression,
                     chunks)
    coords = group.create_group(COORDS)
    for coord in part.coords:
        check_name(str(coord), f"part {name!r} coordinate")
        _write_array(coords, str(coord), part.coords[coord].variable, chunk, f"part {name!r} coord {coord!r}")
    if splits is not None:
        n = int(part.sizes[SAMPLE])
        local = {k: ix[(ix >= offset) & (ix < offset + n)] - offset for k, ix in splits.items()}
        (folder / name / SPLITS_FILE).write_text(json.dumps(splits_to_json(local, world=name), indent=2) + "\n")
