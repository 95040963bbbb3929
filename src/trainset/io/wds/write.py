"""Writing shards: the layout of samples in shards and members, deterministic tar members, index.json."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

if TYPE_CHECKING:  # annotations only: the collection handed in brings xarray
    import xarray as xr

from trainset.collection import SAMPLE, Collection
from trainset.errors import TrainsetError
from trainset.io.base import Splits
from trainset.io.wds.index import COORDS, FORMAT_ID, INDEX, OPTIONS, RESERVED, SPLITS_FILE, VAR_NAME, VERSION
from trainset.provenance import code_version, file_sha256
from trainset.provenance import jsonable as _jsonable
from trainset.splits import check_splits, write_splits
from trainset.versions import KEY


def _coord_array(values: np.ndarray, where: str) -> tuple[np.ndarray, str]:
    """(array np.save can store without pickle, the dtype to restore on load)."""
    if values.dtype != object:
        return values, values.dtype.str
    if not all(isinstance(v, str) for v in values.ravel()):
        raise TrainsetError(f"{where}: object coordinate with non-string values cannot be stored "
                            "without pickle. Fix: convert it to numbers or strings")
    return np.asarray(values, dtype=str), "object"


def _part_meta(name: str, part: xr.Dataset, first: int, number: int) -> tuple[dict, dict]:
    """(index.json entry of one part, coordinate file name -> array)."""
    variables, files = {}, {}
    for var, array in part.data_vars.items():
        if not isinstance(var, str) or not VAR_NAME.match(var) or var in RESERVED:
            raise TrainsetError(f"part {name!r}: variable name {var!r} cannot be a tar member name. "
                                "Fix: rename it to letters, digits, '_' or '-' (not 'index'/'part')")
        if array.dtype.hasobject:
            raise TrainsetError(f"part {name!r}, variable {var!r}: object dtype needs pickle. "
                                "Fix: convert it to a numeric or fixed-width string dtype")
        variables[var] = {"dims": list(array.dims), "shape": list(array.shape[1:]),
                          "dtype": array.dtype.str, "attrs": _jsonable(array.attrs, f"{name}/{var}")}
    coords = []
    for j, (cname, coord) in enumerate(part.coords.items()):
        values, dtype = _coord_array(np.asarray(coord.values), f"part {name!r}, coordinate {cname!r}")
        file = f"{COORDS}/p{number:03d}_c{j:03d}.npy"
        files[file] = values
        coords.append({"name": str(cname), "dims": list(coord.dims), "dtype": dtype, "file": file,
                       "attrs": _jsonable(coord.attrs, f"{name}/{cname}")})
    meta = {"name": name, "size": int(part.sizes.get(SAMPLE, 0)), "first": first,
            "attrs": _jsonable(part.attrs, f"part {name}"), "variables": variables, "coords": coords}
    return meta, files


def _layout(sizes: list[int], per_shard: int, per_member: int) -> list[list[tuple[int, int]]]:
    """Per shard, the (start, stop) global ranges of its members; blocks never cross parts."""
    total, bounds = sum(sizes), set(np.cumsum(sizes).tolist())
    shards = []
    for first in range(0, total, per_shard):
        last = min(first + per_shard, total)
        cuts = sorted({first, last, *(b for b in bounds if first < b < last)})
        shards.append([(a, min(a + per_member, stop)) for start, stop in zip(cuts[:-1], cuts[1:])
                       for a in range(start, stop, per_member)])
    return shards


def _add_npy(tar: tarfile.TarFile, name: str, array: np.ndarray) -> None:
    """Append ``array`` as an ``.npy`` member with fixed metadata (deterministic bytes)."""
    buffer = io.BytesIO()
    array = np.asarray(array)  # np.ascontiguousarray would turn a 0-d sample into shape (1,)
    np.lib.format.write_array(buffer, array if array.flags.c_contiguous else array.copy(), allow_pickle=False)
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = buffer.tell(), 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    buffer.seek(0)
    tar.addfile(info, buffer)


def _write_shard(file: Path, blocks: list[tuple[int, int]], collection: Collection, firsts: np.ndarray,
                 per_member: int, width: int) -> int:
    """Write one shard; return its number of members.

    The shard's rows are read part by part in one slice each (lazily opened sources read just
    that slice), so memory holds one shard, whatever the dataset's size.
    """
    parts = list(collection.parts.values())
    numbers = np.searchsorted(firsts, [b[0] for b in blocks], side="right") - 1
    slabs = {}
    for number in np.unique(numbers):
        mine = [block for block, n in zip(blocks, numbers) if n == number]  # in order
        lo, hi = mine[0][0] - int(firsts[number]), mine[-1][1] - int(firsts[number])
        part = parts[number].isel({SAMPLE: slice(lo, hi)})
        slabs[number] = (lo, {var: np.asarray(part[var].values) for var in part.data_vars})
    members = 0
    with open(file, "wb") as handle, tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for (start, stop), number in zip(blocks, numbers):
            lo, arrays = slabs[number]
            local = start - int(firsts[number]) - lo
            key = f"b{start:0{width}d}" if per_member > 1 else f"{start:0{width}d}"
            if per_member > 1:
                _add_npy(tar, f"{key}.index.npy", np.arange(start, stop, dtype=np.int64))
                members += 1
            for var, values in arrays.items():
                block = values[local:local + stop - start]
                _add_npy(tar, f"{key}.{var}.npy", block if per_member > 1 else block[0, ...])
                members += 1
    return members


@dataclass(frozen=True)
class ShardPlan:
    """Where every sample goes: computed from metadata alone, identically by every job."""

    per_member: int
    per_shard: int
    width: int
    metas: list[dict[str, Any]]
    coord_files: dict[str, np.ndarray]
    layout: list[list[tuple[int, int]]]

    @property
    def firsts(self) -> np.ndarray:
        return np.asarray([m["first"] for m in self.metas], dtype=np.int64)

    def job_shards(self, job: int, jobs: int) -> range:
        """Shard numbers written by job ``job`` of ``jobs`` (checked by :meth:`Format.write_job`): a
        contiguous, balanced range."""
        n = len(self.layout)
        return range(job * n // jobs, (job + 1) * n // jobs)


def plan_shards(collection: Collection, options: dict[str, Any]) -> ShardPlan:
    """Check the writer options and lay the samples out in shards and members."""
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise TrainsetError(f"webdataset: unknown option(s) {sorted(unknown)}. Fix: use {sorted(OPTIONS)}")
    per_member = int(_given(options, "samples_per_member"))  # 0 is refused below, never read as the default
    per_shard = _samples_per_shard(collection, options)
    if per_member < 1 or per_shard < 1:
        raise TrainsetError(f"webdataset: samples_per_member and the shard size must be >= 1, got {per_member} "
                            f"and {per_shard}. Fix: give samples_per_member / samples_per_shard of 1 or more")
    total = len(collection)
    metas, coord_files = [], {}
    for number, (name, part) in enumerate(collection.parts.items()):
        meta, files = _part_meta(name, part, collection.offsets[name], number)
        metas.append(meta)
        coord_files.update(files)
    layout = _layout([m["size"] for m in metas], per_shard, per_member)
    return ShardPlan(per_member, per_shard, max(9, len(str(max(total - 1, 0)))), metas, coord_files, layout)


def write_shards(collection: Collection, plan: ShardPlan, folder: Path, numbers: Iterable[int]) -> list[dict]:
    """Write shards ``numbers`` into ``folder``; return their index.json records."""
    records = []
    for number in numbers:
        blocks = plan.layout[number]
        file = folder / f"shard-{number:06d}.tar"
        members = _write_shard(file, blocks, collection, plan.firsts, plan.per_member, plan.width)
        first, last = blocks[0][0], blocks[-1][1] - 1
        records.append({"file": file.name, "sha256": file_sha256(file), "bytes": file.stat().st_size,
                        "samples": last - first + 1, "members": members, "first": first, "last": last})
    return records


def write_index(collection: Collection, plan: ShardPlan, folder: Path, shards: list[dict],
                splits: Splits | None) -> None:
    """The side files of a ``-wds`` folder: coordinates, ``index.json`` and ``splits.json``."""
    expected = [f"shard-{n:06d}.tar" for n in range(len(plan.layout))]
    if [rec["file"] for rec in shards] != expected:
        missing = sorted(set(expected) - {rec["file"] for rec in shards})[:5]
        raise TrainsetError(f"{folder}: the jobs wrote {len(shards)} shards, not the {len(expected)} the layout asks "
                            f"for (missing e.g. {missing}). Fix: rerun every shard job with the same options")
    (folder / COORDS).mkdir(parents=True, exist_ok=True)
    for file, values in plan.coord_files.items():
        np.save(folder / file, values, allow_pickle=False)
    index = {"format": FORMAT_ID, KEY: VERSION, "trainset_version": code_version(),
             "samples": len(collection), "samples_per_member": plan.per_member, "samples_per_shard": plan.per_shard,
             "key_width": plan.width, "attrs": _jsonable(collection.attrs, "dataset"),
             "parts": plan.metas, "shards": shards}
    (folder / INDEX).write_text(json.dumps(index, indent=1) + "\n")
    if splits is not None:
        write_splits(check_splits(splits, len(collection)), folder / SPLITS_FILE)


def _samples_per_shard(collection: Collection, options: dict[str, Any]) -> int:
    """Shard size in samples, from ``samples_per_shard`` or ``shard_size_mb``."""
    if options.get("samples_per_shard") is not None and options.get("shard_size_mb") is not None:
        raise TrainsetError("webdataset: give samples_per_shard or shard_size_mb, not both")
    if options.get("shard_size_mb") is not None:
        if not float(options["shard_size_mb"]) > 0:
            raise TrainsetError(f"webdataset: shard_size_mb must be > 0, got {options['shard_size_mb']}")
        per_sample = max(sum(int(a.dtype.itemsize * np.prod(a.shape[1:])) for a in p.data_vars.values())
                         for p in collection.parts.values())
        return max(1, int(float(options["shard_size_mb"]) * 1e6 // max(per_sample, 1)))
    return int(_given(options, "samples_per_shard"))


def _given(options: dict[str, Any], key: str) -> Any:
    """The option as given, its default only when absent or None (a 0 must reach the >= 1 check)."""
    value = options.get(key)
    return OPTIONS[key] if value is None else value
