"""Zarr v3 adapter (seed 003): one group per world, chunked along samples, with a manifest.

Layout of ``TS_<name>.zarr/``::

    zarr.json                    root group; its attributes are the dataset attrs
    manifest.json                format version, date, code version, chunk, config hash, seed,
                                 split names and, per world in order: sample count, offset,
                                 variables (dims, per-sample shape, dtype), coords, parameter
                                 names/bounds/priors, shock and variable names, seeds
    <world>/zarr.json            world group; its attributes are the part attrs
    <world>/<variable>/          e.g. theta [n, P], irfs [n, S, H+1, V]: chunks of ``chunk``
                                 samples (per-sample dims whole), zstd level 3 with checksum
    <world>/coords/<coord>/      per-sample and dimension coordinates, same chunking
    <world>/splits.json          split name -> LOCAL row indices of that world (if splits given)

The manifest, not the zarr group listing, is the source of truth for part and variable order:
zarr lists members alphabetically and warns about the JSON files it does not own.

Choices. Strings are stored with zarr's variable-length UTF-8 ``string`` data type, and the
original numpy dtype (``<U6``, ``object``) is kept in the array attribute ``_trainset`` so the
reader restores it exactly: the fixed-length UTF-32 type would round-trip without help but
zarr 3.1 flags it ``UnstableSpecificationWarning`` (no v3 spec yet), and strings as JSON
attributes would not be chunked. Every chunk is written even when it equals the fill value
(``write_empty_chunks``), so a missing chunk file is always an error, never silent zeros;
zstd checksums make a corrupted chunk fail loudly. Nothing in the metadata is a timestamp and
the manifest date is the day only (``SOURCE_DATE_EPOCH`` honoured), so two writes of the same
collection are byte-identical file by file.

Reading: :class:`ZarrReader` groups the requested rows by chunk and reads each touched chunk
once with one slice (zarr costs ~1 ms per call, so per-sample reads are never done).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr
from zarr.codecs import BloscCodec, ZstdCodec
from zarr.storage import LocalStore

from trainset.collection import SAMPLE, Collection
from trainset.errors import TrainsetError
from trainset.io.base import ChunkShare, Format, PartInfo, Reader, Splits, VariableInfo, register
from trainset.provenance import atomic_path, code_version, creation_date, json_sha256, link_file
from trainset.provenance import jsonable as _jsonable
from trainset.splits import check_splits, read_splits, splits_to_json

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_CHUNK", "FORMAT_VERSION", "ZarrFormat", "ZarrReader", "gather_zarr", "write_zarr_job"]

FORMAT_VERSION = 1
DEFAULT_CHUNK = 256
MANIFEST, SPLITS_FILE, COORDS, PRIVATE = "manifest.json", "splits.json", "coords", "_trainset"
ZSTD_LEVEL = 3
COMPRESSIONS = ("none", "lz4", "zstd")


def _compressors(compression: str) -> Any:
    """Codec of a compression name: none reads fastest, lz4 is cheap, zstd smallest (+ checksum)."""
    if compression == "zstd":
        return ZstdCodec(level=ZSTD_LEVEL, checksum=True)
    if compression == "lz4":
        return BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")
    return None


_SLAB_BYTES = 16 << 20  # a few chunks per write call: bounded memory at any dataset size
_WORLD_KEYS = ("param_names", "param_bounds", "param_priors", "seeds")
REWRITE = "Fix: rewrite the dataset with trainset (FORMATS['zarr'].write) from its source"




def _check_name(name: str, where: str, reserved: tuple[str, ...] = ()) -> None:
    """Refuse names that are not one zarr node below a group."""
    if (not name or "/" in name or "\\" in name or name.startswith("__") or name in (".", "..")
            or name.endswith(".json") or name in reserved):
        raise TrainsetError(f"{where} name {name!r} cannot be a zarr node (no '/', no leading '__', "
                            f"not {['.json files', *reserved]}). Fix: rename it")


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
    return {"format": "trainset-zarr", "format_version": FORMAT_VERSION, "creation_date": creation_date(),
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
                               compressors=_compressors(compression),
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


def _store(path: Path, read_only: bool = True) -> LocalStore:
    """A local-folder zarr store (read-only unless writing)."""
    return LocalStore(path, read_only=read_only)


def _chunk_file(base: Path, index: tuple[int, ...]) -> Path:
    """Where zarr's default v3 key encoding puts chunk ``index`` of the array at ``base``."""
    return base.joinpath("c", *map(str, index))


def _read_json(file: Path, what: str) -> Any:
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError) as error:
        raise TrainsetError(f"{file}: missing or unreadable {what} ({error}). {REWRITE}") from error


class ZarrReader(Reader):
    """Lazy, fork-safe random access to a ``.zarr`` dataset; picklable before and after use.

    Parameters
    ----------
    path : path-like
        The ``TS_<name>.zarr`` folder.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._manifest: dict[str, Any] | None = None
        self._parts: list[PartInfo] | None = None
        self._pid: int | None = None
        self._arrays: dict[str, zarr.Array] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without open handles, so each worker process opens its own."""
        return {**self.__dict__, "_pid": None, "_arrays": {}}

    @property
    def manifest(self) -> dict[str, Any]:
        """The parsed ``manifest.json`` (read once)."""
        if self._manifest is None:
            manifest = _read_json(self.path / MANIFEST, "manifest")
            if not isinstance(manifest, dict) or manifest.get("format") != "trainset-zarr" or "worlds" not in manifest:
                raise TrainsetError(f"{self.path / MANIFEST}: not a trainset zarr manifest. {REWRITE}")
            self._manifest = manifest
        return self._manifest

    @property
    def block_size(self) -> int:  # type: ignore[override]
        """Samples per chunk: samplers should shuffle whole blocks of this size."""
        return int(self.manifest["chunk"])

    @property
    def parts(self) -> list[PartInfo]:
        """Worlds in stored order, from the manifest alone (no array is opened)."""
        if self._parts is None:
            self._parts = [PartInfo(w["name"], int(w["n_samples"]),
                                    {v["name"]: VariableInfo(tuple(v["shape"]), np.dtype(v["dtype"]))
                                     for v in w["variables"]})
                           for w in self.manifest["worlds"]]
        return self._parts

    @property
    def attrs(self) -> dict[str, Any]:
        """Dataset attrs: the root group's attributes."""
        return _read_json(self.path / "zarr.json", "root group metadata").get("attributes", {})

    @property
    def splits(self) -> Splits | None:
        """Global indices per split, from each world's local ``splits.json`` plus its offset."""
        names = self.manifest.get("split_names")
        if names is None:
            return None
        pieces: dict[str, list[np.ndarray]] = {name: [] for name in names}
        for world in self.manifest["worlds"]:
            file = self.path / world["name"] / SPLITS_FILE
            for name, local in read_splits(file).items():
                if local.size and (local.min() < 0 or local.max() >= world["n_samples"]):
                    raise TrainsetError(f"{file}: split {name!r} has rows outside "
                                        f"0..{world['n_samples'] - 1}. {REWRITE}")
                pieces.setdefault(name, []).append(local + world["offset"])
        return {name: np.sort(np.concatenate(ix)) if ix else np.zeros(0, np.int64) for name, ix in pieces.items()}

    def array(self, world: str, name: str, coord: bool = False) -> zarr.Array:
        """The zarr array of one variable (or coordinate), opened once per process."""
        if self._pid != os.getpid():
            self._arrays, self._pid = {}, os.getpid()
        key = f"{world}/{COORDS}/{name}" if coord else f"{world}/{name}"
        if key not in self._arrays:
            try:
                self._arrays[key] = zarr.open_array(_store(self.path), path=key, mode="r", zarr_format=3)
            except Exception as error:  # zarr raises several types for missing/corrupt metadata
                raise TrainsetError(f"{self.path / key}: cannot open zarr array ({error}). {REWRITE}") from error
        return self._arrays[key]

    def read(self, part: int, local: np.ndarray, variables: list[str] | None = None) -> dict[str, np.ndarray]:
        """Rows ``local`` (sorted, unique) of part ``part``, each touched chunk read once."""
        infos = self.parts
        if not 0 <= part < len(infos):
            raise TrainsetError(f"{self.path}: part {part} does not exist (has {len(infos)})")
        info = infos[part]
        local = np.asarray(local, dtype=np.int64)
        if local.ndim != 1 or np.any(np.diff(local) <= 0) or (local.size and (local[0] < 0 or local[-1] >= info.size)):
            raise TrainsetError(f"{self.path}/{info.name}: rows must be sorted unique indices in 0..{info.size - 1}")
        names = list(info.variables) if variables is None else list(variables)
        unknown = sorted(set(names) - set(info.variables))
        if unknown:
            raise TrainsetError(f"{self.path}/{info.name}: no variables {unknown} (has {list(info.variables)})")
        return {name: self._rows(info.name, name, local, info.variables[name]) for name in names}

    def _rows(self, world: str, name: str, local: np.ndarray, info: VariableInfo) -> np.ndarray:
        array, chunk = self.array(world, name), self.block_size
        out = np.empty((local.size, *info.shape), dtype=info.dtype)
        which = local // chunk
        cuts = np.flatnonzero(np.diff(which)) + 1
        for start, stop in zip(np.r_[0, cuts], np.r_[cuts, local.size]):
            c = int(which[start])
            first, last = c * chunk, min((c + 1) * chunk, array.shape[0])
            file = _chunk_file(self.path / world / name, (c,) + (0,) * (array.ndim - 1))
            try:
                if not file.is_file():
                    raise FileNotFoundError("chunk file missing")
                block = np.asarray(array[first:last])
            except Exception as error:  # codec and store errors have no common base class
                raise TrainsetError(f"{file}: chunk of {world}/{name} unreadable ({error}). {REWRITE}") from error
            out[start:stop] = block if stop - start == last - first else block[local[start:stop] - first]
        return out

    def whole(self, world: str, entry: dict[str, Any], coord: bool = False) -> xr.Variable:
        """A whole stored variable or coordinate, with its dims, attrs and original dtype."""
        array = self.array(world, entry["name"], coord)
        try:
            values = np.asarray(array[...]) if array.ndim else np.asarray(array[...]).reshape(())
        except Exception as error:
            raise TrainsetError(f"{self.path / world / entry['name']}: unreadable ({error}). {REWRITE}") from error
        attrs = dict(array.attrs.asdict())
        dtype = np.dtype(attrs.pop(PRIVATE, {}).get("dtype", entry["dtype"]))
        return xr.Variable(entry["dims"], values.astype(dtype, copy=False), attrs)


def _check_options(options: dict[str, Any], compression: str, chunk: int) -> None:
    if options:
        raise TrainsetError(f"zarr write: unknown options {sorted(options)}. Fix: use 'chunk' and 'compression'")
    if compression not in COMPRESSIONS:
        raise TrainsetError(f"zarr write: compression {compression!r} unknown. Fix: use one of {list(COMPRESSIONS)}")
    if int(chunk) < 1:
        raise TrainsetError(f"zarr write: chunk={chunk} must be >= 1")


def _write_store(collection: Collection, folder: Path, target: Path, splits: Splits | None, chunk: int,
                 compression: str, share: ChunkShare) -> None:
    """The whole store in ``folder`` (the caller's temporary path for ``target``, which messages
    name); data variables get only the sample chunks ``share`` gives."""
    if splits is not None:
        splits = check_splits(splits, len(collection))
    manifest = _manifest(collection, chunk, splits, compression)
    root = zarr.create_group(_store(folder, False), zarr_format=3,
                             attributes=_jsonable(collection.attrs, f"{target}: dataset attrs"))
    for (name, part), offset in zip(collection.parts.items(), collection.offsets.values()):
        chunks = share(name, math.ceil(int(part.sizes[SAMPLE]) / chunk))
        _write_part(root, folder, name, part, chunk, offset, splits, compression, chunks)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _write_part(root: zarr.Group, folder: Path, name: str, part: xr.Dataset, chunk: int, offset: int,
                splits: Splits | None, compression: str, chunks: range) -> None:
    _check_name(name, "part")
    group = root.create_group(name, attributes=_jsonable(dict(part.attrs), f"part {name!r} attrs"))
    for var in part.data_vars:
        _check_name(str(var), f"part {name!r} variable", (COORDS,))
        _write_array(group, str(var), part[var].variable, chunk, f"part {name!r} variable {var!r}", compression,
                     chunks)
    coords = group.create_group(COORDS)
    for coord in part.coords:
        _check_name(str(coord), f"part {name!r} coordinate")
        _write_array(coords, str(coord), part.coords[coord].variable, chunk, f"part {name!r} coord {coord!r}")
    if splits is not None:
        n = int(part.sizes[SAMPLE])
        local = {k: ix[(ix >= offset) & (ix < offset + n)] - offset for k, ix in splits.items()}
        (folder / name / SPLITS_FILE).write_text(json.dumps(splits_to_json(local, world=name), indent=2) + "\n")


def job_share(collection: Collection, chunk: int, job: int, jobs: int) -> ChunkShare:
    """Job ``job`` of ``jobs``: a contiguous, balanced range of all parts' sample chunks in order."""
    if not 0 <= job < jobs:
        raise TrainsetError(f"zarr: job {job} is not in 0..{jobs - 1}")
    counts = {name: math.ceil(size / chunk) for name, size in collection.sizes.items()}
    firsts = dict(zip(counts, itertools.accumulate([0, *counts.values()])))
    total = sum(counts.values())
    lo, hi = job * total // jobs, (job + 1) * total // jobs

    def share(part: str, n: int) -> range:
        return range(min(max(lo - firsts[part], 0), n), min(max(hi - firsts[part], 0), n))

    return share


def write_zarr_job(collection: Collection, path: str | os.PathLike, job: int, jobs: int,
                   splits: Splits | None = None, *, chunk: int = DEFAULT_CHUNK, compression: str = "none",
                   **options: Any) -> None:
    """Job ``job`` of ``jobs``: a store with complete metadata holding only its share of data chunks.

    Jobs read and write disjoint sample ranges, so a cluster runs them at once;
    :func:`gather_zarr` then links their chunk files into one store and writes the ``splits``
    (ignored here).
    """
    _check_options(options, compression, chunk)
    share = job_share(collection, int(chunk), job, jobs)
    with atomic_path(path) as tmp:
        _write_store(collection, tmp, Path(path), None, int(chunk), compression, share)


def gather_zarr(collection: Collection, job_folders: list[str | os.PathLike], path: str | os.PathLike,
                splits: Splits | None = None, *, chunk: int = DEFAULT_CHUNK, compression: str = "none",
                **options: Any) -> None:
    """One store from the jobs' data chunks (hard links) plus metadata, coordinates and splits.

    The store is byte-identical, file by file, to one written by :meth:`ZarrFormat.write`.
    """
    _check_options(options, compression, chunk)
    path = Path(path)
    with atomic_path(path) as tmp:
        _write_store(collection, tmp, path, splits, int(chunk), compression, lambda part, n: range(0))
        for name, part in collection.parts.items():
            expected = math.ceil(int(part.sizes[SAMPLE]) / int(chunk))
            for var in part.data_vars:
                found = _link_chunks([Path(f) / name / str(var) for f in job_folders], tmp / name / str(var))
                if found != expected:
                    raise TrainsetError(f"{path}: {found} of {expected} chunks of {name}/{var} came from the jobs. "
                                        "Fix: rerun every zarr job with the same options")
    logger.info("gathered %d jobs into %s", len(job_folders), path)


def _link_chunks(sources: list[Path], target: Path) -> int:
    """Hard-link (or copy) the chunk files below each ``source/c`` into ``target/c``; count sample chunks."""
    seen = set()
    for source in sources:
        for file in sorted((source / "c").rglob("*")):
            if not file.is_file():
                continue
            relative = file.relative_to(source)
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            try:
                link_file(file, target / relative)
            except FileExistsError:
                raise TrainsetError(f"{file}: chunk written by two jobs. Fix: rerun every zarr job") from None
            seen.add(relative.parts[1])
    return len(seen)


class ZarrFormat(Format):
    """Chunked Zarr v3 store for datasets of several worlds (parts) of different shapes."""

    name = "zarr"
    suffix = ".zarr"

    def write(self, collection: Collection, path: str | os.PathLike, splits: Splits | None = None,
              *, chunk: int = DEFAULT_CHUNK, compression: str = "none", **options: Any) -> None:
        """Write ``collection`` (and ``splits``, global indices) atomically to a ``.zarr`` folder.

        Parameters
        ----------
        chunk : int
            Samples per chunk (about one batch); readers use it as their block size.
        compression : {"none", "lz4", "zstd"}
            Chunk codec. ``none`` (default) reads fastest: float training data barely compresses
            and decoding dominated loader time; ``zstd`` adds a checksum that catches corrupted
            bytes.
        """
        _check_options(options, compression, chunk)
        with atomic_path(path) as tmp:
            _write_store(collection, tmp, Path(path), splits, int(chunk), compression, lambda part, n: range(n))
        logger.info("wrote %s: %d samples in %d worlds", path, len(collection), len(collection.parts))

    def reader(self, path: str | os.PathLike) -> ZarrReader:
        """A lazy :class:`ZarrReader` (nothing is opened until first use)."""
        return ZarrReader(path)

    def guess_can_open(self, path: str | os.PathLike) -> bool:
        """A ``.zarr`` name, or a folder holding both ``zarr.json`` and ``manifest.json``."""
        path = Path(path)
        return path.name.endswith(self.suffix) or (path.is_dir() and (path / MANIFEST).is_file()
                                                    and (path / "zarr.json").is_file())

    def load(self, path: str | os.PathLike) -> tuple[Collection, Splits | None]:
        """The whole dataset back as a :class:`Collection`, plus its splits (or None)."""
        reader = ZarrReader(path)
        parts = {}
        for world in reader.manifest["worlds"]:
            name = world["name"]
            group_attrs = _read_json(reader.path / name / "zarr.json", f"group metadata of world {name!r}")
            parts[name] = xr.Dataset({v["name"]: reader.whole(name, v) for v in world["variables"]},
                                     {c["name"]: reader.whole(name, c, True) for c in world["coords"]},
                                     attrs=group_attrs.get("attributes", {}))
        return Collection(parts, reader.attrs), reader.splits

    def check(self, path: str | os.PathLike) -> list[str]:
        """Every structural problem, one message each with its fix; never raises."""
        path = Path(path)
        try:
            return _check_store(path)
        except Exception as error:  # check() reports, it never raises
            return [f"{path}: could not be checked ({type(error).__name__}: {error}). {REWRITE}"]


def _check_store(path: Path) -> list[str]:
    if not path.is_dir():
        return [f"{path}: not a folder. Fix: pass the TS_<name>.zarr folder that trainset wrote"]
    if not (path / MANIFEST).is_file():
        return [f"{path / MANIFEST}: missing, so parts and their order are unknown. {REWRITE}"]
    reader = ZarrReader(path)
    try:
        manifest = reader.manifest
        worlds, chunk = list(manifest["worlds"]), int(manifest["chunk"])
    except (TrainsetError, KeyError, TypeError, ValueError) as error:
        return [f"{path / MANIFEST}: unusable ({error}). {REWRITE}"]
    problems = []
    if not (path / "zarr.json").is_file():
        problems.append(f"{path / 'zarr.json'}: root group metadata missing. {REWRITE}")
    for world in worlds:
        try:
            problems += _check_world(reader, world, chunk, manifest.get("split_names") is not None)
        except Exception as error:  # a malformed world entry must not hide the others
            problems.append(f"{path / str(world.get('name'))}: could not be checked ({error}). {REWRITE}")
    return problems


def _check_world(reader: ZarrReader, world: dict[str, Any], chunk: int, has_splits: bool) -> list[str]:
    name, n = world["name"], int(world["n_samples"])
    base = reader.path / name
    if not (base / "zarr.json").is_file():
        return [f"{base}: group of world {name!r} missing (no zarr.json). {REWRITE}"]
    problems, counts = [], {}
    for entry, coord in [(e, False) for e in world["variables"]] + [(e, True) for e in world["coords"]]:
        count, found = _check_array(reader, name, entry, coord, chunk)
        problems += found
        if count is not None:
            counts[f"{COORDS}/{entry['name']}" if coord else entry["name"]] = count
    if any(count != n for count in counts.values()):
        problems.append(f"{base}: inconsistent sample counts between variables {counts} (manifest: {n}). "
                        f"Fix: give every variable of world {name!r} the same number of samples and rewrite")
    if has_splits:
        problems += _check_split_file(base / SPLITS_FILE, n)
    return problems


def _check_array(reader: ZarrReader, world: str, entry: dict[str, Any], coord: bool,
                 chunk: int) -> tuple[int | None, list[str]]:
    """(sample count or None, problems) of one stored array: metadata, dtype, shape, chunks."""
    where = reader.path / world / (COORDS if coord else "") / entry["name"]
    try:
        array = reader.array(world, entry["name"], coord)
    except TrainsetError:
        return None, [f"{where}: {'coordinate' if coord else 'variable'} {entry['name']!r} missing or its "
                      f"zarr.json unreadable. {REWRITE}"]
    problems = []
    expected = np.dtype(entry["dtype"])
    stored = np.dtype(array.attrs.get(PRIVATE, {}).get("dtype", str(array.dtype)))
    strings = expected.kind in "UO" and array.dtype.kind == "T"
    if stored != expected or not (strings or array.dtype == expected):
        problems.append(f"{where}: dtype {array.dtype} (recorded {stored}) but manifest says {expected}. {REWRITE}")
    sampled = bool(entry["dims"]) and entry["dims"][0] == SAMPLE
    shape = list(array.shape[1:] if sampled and not coord else array.shape)
    if shape != list(entry["shape"]) or list(array.metadata.dimension_names or []) != list(entry["dims"]):
        problems.append(f"{where}: shape {shape} dims {array.metadata.dimension_names} differ from the manifest "
                        f"{entry['shape']} {entry['dims']}. {REWRITE}")
    if sampled and array.chunks[0] != min(chunk, max(1, array.shape[0])):
        problems.append(f"{where}: chunks {array.chunks} do not follow the manifest chunk {chunk}. {REWRITE}")
    problems += _check_chunks(array, where)
    return (int(array.shape[0]) if sampled else None), problems


def _check_chunks(array: zarr.Array, where: Path, limit: int = 10) -> list[str]:
    """Every chunk file present and decodable (zstd checksums catch corrupted bytes)."""
    problems: list[str] = []
    grid = [range(math.ceil(s / c)) for s, c in zip(array.shape, array.chunks)]
    for index in itertools.product(*grid):
        file = _chunk_file(where, index)
        try:
            if not file.is_file():
                raise FileNotFoundError("chunk file missing")
            array.get_block_selection(index) if index else array[...]
        except Exception as error:  # codec errors have no common base class
            problems.append(f"{file}: chunk {index} of {where.name!r} unreadable ({error}). {REWRITE}")
            if len(problems) >= limit:
                problems.append(f"{where}: stopped after {limit} bad chunks. {REWRITE}")
                break
    return problems


def _check_split_file(file: Path, n: int) -> list[str]:
    if not file.is_file():
        return [f"{file}: missing although the manifest lists splits. {REWRITE} with its splits"]
    try:
        splits = read_splits(file)
    except TrainsetError as error:
        return [str(error)]
    problems = []
    for name, rows in splits.items():
        bad = rows[(rows < 0) | (rows >= n)]
        if bad.size:
            problems.append(f"{file}: split {name!r} has {bad.size} row indices outside 0..{n - 1} "
                            f"(e.g. {bad[:3].tolist()}). Fix: rebuild the splits for this world and rewrite")
    return problems


register(ZarrFormat())
