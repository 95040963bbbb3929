"""NetCDF adapter: xarray writes, h5py reads.

Layout: a one-part collection is written at the root (``frames`` for flu mixes, with its
coordinates and attributes); several parts go to one netCDF4 group each. Dataset-level
attributes are the root attribute ``trainset_attrs`` (JSON) and the part order is
``trainset_parts``; splits, when given, go to the group ``trainset_splits`` (one int64 variable
per split). Data variables are chunked along ``sample`` in blocks of ``chunk`` samples.

Training reads go through h5py (a NetCDF-4 file is an HDF5 file): xarray costs 0.2-1 ms per
sample access (anchors section 5), h5py reads whole chunks. Files are byte-identical for
identical input: netCDF-C writes no timestamps.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import h5py
import numpy as np

if TYPE_CHECKING:  # annotations only: xarray and netCDF4 are imported by the functions that use them
    import xarray as xr

from trainset.collection import SAMPLE, Collection
from trainset.errors import TrainsetError
from trainset.faults import maybe_fail
from trainset.io.base import Format, PartInfo, Reader, Splits, VariableInfo, register
from trainset.io.hdf5.mapped import LazyMapping
from trainset.io.hdf5.read import read_rows, take_chunks
from trainset.io.hdf5.refs import open_contained, outside_references_of, refuse_outside_file
from trainset.io.netcdf_plain import plain_metadata
from trainset.provenance import atomic_path, canonical_json
from trainset.splits import check_splits
from trainset.versions import VERSION_ATTR, check_version, current

SPLITS_GROUP = "trainset_splits"
_MAGIC = (b"\x89HDF\r\n\x1a\n", b"CDF\x01", b"CDF\x02")


def write_netcdf(obj: xr.DataArray | xr.Dataset, path: str | os.PathLike) -> None:
    """Write one xarray object atomically at the root of a NetCDF-4 file."""
    import xarray as xr  # here, not at module level: jobs that only read arrays skip xarray and pandas

    dataset = obj.to_dataset() if isinstance(obj, xr.DataArray) else obj
    NetCDFFormat().write(Collection.single(dataset), path)


def open_netcdf_array(path: str | os.PathLike, name: str = "frames") -> xr.DataArray:
    """Load the named array of a NetCDF file fully into memory."""
    import xarray as xr  # here, not at module level: jobs that only read arrays skip xarray and pandas

    try:
        refuse_outside_file(path)  # before netCDF-C, which would follow links and external storage
        with xr.open_dataset(path, engine="netcdf4") as dataset:
            _check_version(dataset.attrs, path)
            if name not in dataset:
                raise TrainsetError(f"{path}: no variable '{name}' (has {list(dataset.data_vars)})")
            return dataset[name].load()
    except (OSError, ValueError) as error:
        raise TrainsetError(f"{path}: not a readable NetCDF file ({error})") from error


OPTIONS = {"chunk": 256, "compression": None}
"""Writer options and defaults: samples per chunk, zlib level (None: uncompressed, fastest reads)."""

CHUNK_CACHE_BYTES = 4 << 20
"""netCDF-C's chunk cache per variable for lazy reads: its 64 MB default is filled by a big
file's slabs (64 MB more peak memory); block reads never revisit a chunk, so a small one suffices."""


@contextmanager
def _chunk_cache(size: int) -> Iterator[None]:
    """netCDF-C's default chunk cache set to ``size`` bytes for files opened in the block."""
    import netCDF4

    previous = netCDF4.get_chunk_cache()
    netCDF4.set_chunk_cache(size)
    try:
        yield
    finally:
        netCDF4.set_chunk_cache(*previous)


@dataclass(frozen=True)
class ArraySpec:
    """Name, dimensions, shape, dtype and attributes of a data variable written in blocks."""

    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: np.dtype
    attrs: dict[str, Any]


def write_netcdf_blocks(path: str | os.PathLike, template: xr.Dataset, variable: ArraySpec,
                        blocks: Iterable[tuple[int, np.ndarray]], collection_attrs: dict[str, Any],
                        part: str = "all", chunk: int = OPTIONS["chunk"],
                        compression: int | None = OPTIONS["compression"]) -> None:
    """Write a one-part dataset whose data variable arrives in blocks of samples, atomically.

    ``template`` holds the coordinates and attributes (small: per sample, not per cell) and is
    written by xarray; the data variable is then created through netCDF4 with the same chunking
    and fill value xarray would use, and filled block by block, so memory holds one block, never
    the whole array. The file reads back exactly like one written by :meth:`NetCDFFormat.write`.
    """
    import netCDF4

    root = _root_attrs(collection_attrs, [part])
    with atomic_path(path) as tmp:
        _encode_attrs(template).assign_attrs(**root).to_netcdf(tmp, mode="w", engine="netcdf4")
        size = variable.shape[0]
        squeeze = {"zlib": True, "complevel": int(compression)} if compression else {}
        with netCDF4.Dataset(tmp, "a") as nc:
            var = nc.createVariable(variable.name, variable.dtype, variable.dims, fill_value=np.nan,
                                    chunksizes=(max(1, min(chunk, size)), *variable.shape[1:]), **squeeze)
            var.set_auto_maskandscale(False)
            var.set_var_chunk_cache(size=CHUNK_CACHE_BYTES)
            for key, value in variable.attrs.items():
                if isinstance(value, list):  # lists of text as NC_STRING arrays, as xarray writes them
                    var.setncattr_string(key, value)
                else:
                    var.setncattr(key, value)
            written = 0
            for number, (start, block) in enumerate(blocks, 1):
                var[start:start + len(block)] = block
                written += len(block)
                maybe_fail("netcdf_block", number)
        if written != size:
            raise TrainsetError(f"{path}: {written} of {size} samples written. Fix: rebuild the input")


class NetCDFFormat(Format):
    """NetCDF-4 files (``.nc``): the canonical copy, written whole (streamed block by block)."""

    name = "netcdf"
    suffix = ".nc"
    parallel = False
    options = OPTIONS

    def write(self, collection: Collection, path, splits: Splits | None = None, chunk: int = OPTIONS["chunk"],
              compression: int | None = OPTIONS["compression"], **options: Any) -> None:
        """Write every part (root for one part, groups for several) and the splits."""
        import xarray as xr  # here, not at module level: jobs that only read arrays skip xarray and pandas

        multi = len(collection.parts) > 1
        splits = check_splits(splits, len(collection), f"{path}: splits to write") if splits else splits
        with atomic_path(path) as tmp:
            root = xr.Dataset(attrs=_root_attrs(collection.attrs, list(collection.parts)))
            if multi:
                root.to_netcdf(tmp, mode="w", engine="netcdf4")
            for number, (name, part) in enumerate(collection.parts.items()):
                part = _encode_attrs(part)
                part = part if multi else part.assign_attrs(**root.attrs)
                mode = "a" if multi or number else "w"
                part.to_netcdf(tmp, mode=mode, engine="netcdf4", group=name if multi else None,
                               encoding=_encoding(part, chunk, compression))
            if splits:
                _splits_dataset(splits).to_netcdf(tmp, mode="a", engine="netcdf4", group=SPLITS_GROUP)

    remote_refusal = "its metadata is read with xarray's netCDF4 engine, which opens local files only"

    def reader(self, path) -> "NetCDFReader":
        return NetCDFReader(path)

    def guess_can_open(self, path) -> bool:
        path = Path(path)
        if not path.is_file() or path.suffix not in (".nc", ".nc4", ".netcdf"):
            return False
        with open(path, "rb") as handle:
            return handle.read(8).startswith(_MAGIC)

    def check(self, path) -> list[str]:
        try:
            outside = outside_references_of(path) if Path(path).is_file() else []
        except OSError:
            outside = []  # unreadable as HDF5: the reader below says what is wrong
        if outside:  # each reference listed, before xarray or netCDF-C could follow one
            return outside
        try:
            reader = NetCDFReader(path)
            parts = reader.parts
            for number, part in enumerate(parts):
                for var in part.variables:
                    reader.dataset_path(number, var)
            if reader.splits is not None:
                n = len(reader)
                bad = [k for k, v in reader.splits.items() if v.size and (v.min() < 0 or v.max() >= n)]
                if bad:
                    return [f"{path}: splits {bad} have indices outside 0..{n - 1}. Fix: rebuild the splits"]
        except TrainsetError as error:
            return [str(error)]
        return []

    def load(self, path) -> tuple[Collection, Splits | None]:
        with self.open(path) as (collection, splits):
            for part in collection.parts.values():
                part.load()
            return collection, splits

    @contextmanager
    def open(self, path) -> Iterator[tuple[Collection, Splits | None]]:
        """Parts backed by the open file (opened once): slicing a variable reads just that slice."""
        path = Path(path)
        with _chunk_cache(CHUNK_CACHE_BYTES), _open_tree(path) as tree:
            meta = _metadata_of(tree, path)
            multi = len(meta["parts"]) > 1
            parts = {p.name: _decode_attrs((tree[p.name] if multi else tree).to_dataset()) for p in meta["parts"]}
            yield Collection(parts, meta["attrs"]), meta["splits"]


class NetCDFReader(Reader):
    """Chunk-wise reads of a NetCDF-4 file through h5py; metadata read once (:func:`_read_metadata`)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._meta = _read_metadata(self.path)
        self._file: h5py.File | None = None
        self._pid = -1
        self._datasets: dict[tuple[int, str], h5py.Dataset] = {}
        self._mapping = LazyMapping()

    def __getstate__(self) -> dict:
        return {"path": self.path, "_meta": self._meta, "_file": None, "_pid": -1, "_datasets": {},
                "_mapping": LazyMapping()}

    @property
    def parts(self) -> list[PartInfo]:
        return self._meta["parts"]

    @property
    def attrs(self) -> dict:
        return self._meta["attrs"]

    @property
    def splits(self) -> Splits | None:
        return self._meta["splits"]

    @property
    def block_size(self) -> int:  # type: ignore[override]
        return self._meta["chunk"]

    def dataset_path(self, part: int, var: str) -> str:
        return f"/{self.parts[part].name}/{var}" if len(self.parts) > 1 else f"/{var}"

    def _dataset(self, part: int, var: str) -> h5py.Dataset:
        """The HDF5 dataset of a variable, opened once per process (path lookups cost ~30 us)."""
        handle = self._handle()
        if (part, var) not in self._datasets:
            self._datasets[part, var] = handle[self.dataset_path(part, var)]
        return self._datasets[part, var]

    def _handle(self) -> h5py.File:
        """This process's h5py handle (opened on first use, and anew in a forked worker)."""
        if self._file is None or self._pid != os.getpid():
            self._file, self._pid, self._datasets = open_contained(self.path), os.getpid(), {}
            self._mapping = LazyMapping()
        return self._file

    def read(self, part: int, local: np.ndarray, variables: list[str] | None = None) -> dict[str, np.ndarray]:
        names = variables or list(self.parts[part].variables)
        local = np.asarray(local, dtype=np.int64)
        out = {}
        for var in names:
            info = self.parts[part].variables[var]
            out[var] = np.empty((local.size, *info.shape), dtype=info.dtype)
            read_rows(self._dataset(part, var), local, out[var])
        return out


    def take(self, part: int, rows: np.ndarray, variables: list[str] | None = None) -> dict[str, np.ndarray]:
        """Rows in the order given: one gather from the mapped file where :mod:`trainset.io.hdf5.mapped`
        applies (a local file, unfiltered data), else whole raw chunks gathered in one pass where
        :func:`take_chunks` applies, else sorted reads reordered."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if not 0 <= part < len(self.parts) or (rows.size and (rows.min() < 0 or rows.max() >= self.parts[part].size)):
            return super().take(part, rows, variables)
        names = variables or list(self.parts[part].variables)
        mapped = self._take_mapped(part, rows, names)
        if mapped is not None:
            return mapped
        out = {}
        for var in names:
            info = self.parts[part].variables.get(var)
            if info is None:
                return super().take(part, rows, variables)
            out[var] = np.empty((rows.size, *info.shape), dtype=info.dtype)
            if not take_chunks(self._dataset(part, var), rows, out[var]):
                return super().take(part, rows, variables)
        return out

    def _take_mapped(self, part: int, rows: np.ndarray, names: list[str]) -> dict[str, np.ndarray] | None:
        """:meth:`take` as one gather per variable from a mapping of the file
        (:mod:`trainset.io.hdf5.mapped`); None where the file or a variable cannot be mapped."""
        try:
            handle = self._handle()
        except OSError:
            return None  # read() names the problem
        return self._mapping.take(handle, self.path, part, rows, names, lambda name: self._described(part, name))

    def _described(self, part: int, name: str) -> tuple[h5py.Dataset, np.dtype, tuple[int, ...]] | None:
        info = self.parts[part].variables.get(name)
        return None if info is None else (self._dataset(part, name), info.dtype, info.shape)


def _read_metadata(path: Path) -> dict:
    """Parts, variables, attrs, splits and chunk size, without reading data.

    A plain file (every file trainset writes) is described through h5py
    (:mod:`trainset.io.netcdf_plain`): the same facts without importing xarray and pandas,
    which cost a validation or scaler job more than its work. Any other file is read through
    one ``open_datatree`` handle: opening the same file several times at once through netCDF4
    (root and groups) crashed the process on some files.
    """
    plain = plain_metadata(path, SPLITS_GROUP)
    if plain is not None:
        return _plain_metadata_of(plain, path)
    with _open_tree(path) as tree:
        return _metadata_of(tree, path)


def _plain_metadata_of(plain: dict, path: Path) -> dict:
    """:func:`_metadata_of` of what :func:`~trainset.io.netcdf_plain.plain_metadata` read."""
    return _assemble(plain["root"], plain["parts"], plain["stored"], plain["chunk"], path)


def _assemble(root_attrs: dict[str, Any], parts: list[PartInfo], stored: dict[str, np.ndarray] | None,
              chunk: int | None, path: Path) -> dict:
    """The metadata dict from what either path (h5py or xarray) read: one place checks the version,
    decodes the collection attrs and checks the splits, so the two paths cannot drift apart.
    ``chunk``: the file's samples per chunk, None when no variable is chunked."""
    try:
        _check_version(root_attrs, path)
        collection_attrs = json.loads(root_attrs.get("trainset_attrs", "{}"))
    except ValueError as error:
        raise TrainsetError(f"{path}: not a readable NetCDF dataset ({error}). Fix: rewrite it with trainset") from error
    # the one split checker (no silent cast: a float or bool split is refused, not truncated)
    n = sum(p.size for p in parts)
    splits = None if stored is None else check_splits(stored, n, f"{path}: group {SPLITS_GROUP}")
    return {"parts": parts, "attrs": collection_attrs, "splits": splits,
            "chunk": OPTIONS["chunk"] if chunk is None else chunk}


def _open_tree(path: Path) -> xr.DataTree:
    """The file's root and groups, lazily; a missing or unreadable file says so."""
    import xarray as xr  # here, not at module level: jobs that only read arrays skip xarray and pandas

    if not path.exists():
        raise TrainsetError(f"{path}: file not found")
    try:
        refuse_outside_file(path)  # before netCDF-C, which would follow links and external storage
        return xr.open_datatree(path, engine="netcdf4")
    except (OSError, ValueError) as error:
        raise TrainsetError(f"{path}: not a readable NetCDF dataset ({error}). Fix: rewrite it with trainset") from error


def _root_attrs(collection_attrs: dict[str, Any], parts: list[str]) -> dict[str, Any]:
    """Root attributes of a trainset NetCDF file: format version, collection attrs, part names."""
    return {VERSION_ATTR: current("netcdf"), "trainset_attrs": canonical_json(collection_attrs),
            "trainset_parts": canonical_json(parts)}


def _check_version(attrs: dict[str, Any], path: str | os.PathLike) -> None:
    """Refuse a trainset NetCDF file of another format version; files from other tools (no
    ``trainset_parts``) are read by their structure."""
    if "trainset_parts" in attrs or VERSION_ATTR in attrs:
        check_version("netcdf", attrs.get(VERSION_ATTR), path)


def _metadata_of(tree: xr.DataTree, path: Path) -> dict:
    """:func:`_read_metadata` of an open tree."""
    attrs = dict(tree.attrs)
    try:
        _check_version(attrs, path)  # before the parts too: a file of another version is named as such
        names = json.loads(attrs.get("trainset_parts", '["all"]'))
        parts, chunk = [], None
        for name in names:
            part = tree[name].to_dataset() if len(names) > 1 else tree.to_dataset()
            parts.append(_part_info(name, part, path))
            chunk = _chunk_of(part, chunk)
        stored = None
        if SPLITS_GROUP in tree.children:
            group = tree[SPLITS_GROUP].to_dataset()
            stored = {str(k): group[k].values for k in group.data_vars}
    except (OSError, ValueError, KeyError) as error:
        raise TrainsetError(f"{path}: not a readable NetCDF dataset ({error}). Fix: rewrite it with trainset") from error
    return _assemble(attrs, parts, stored, chunk, path)


def _part_info(name: str, part: xr.Dataset, path: Path) -> PartInfo:
    variables = {}
    for var, array in part.data_vars.items():
        if not array.dims or array.dims[0] != SAMPLE:
            raise TrainsetError(f"{path}: variable '{var}' does not start with dimension '{SAMPLE}'. "
                                "Fix: write every data variable sample-first")
        variables[str(var)] = VariableInfo(tuple(array.shape[1:]), np.dtype(array.dtype))
    return PartInfo(name, int(part.sizes.get(SAMPLE, 0)), variables)


def _chunk_of(part: xr.Dataset, default: int | None) -> int | None:
    for array in part.data_vars.values():
        sizes = array.encoding.get("chunksizes")
        if sizes:
            return int(sizes[0])
    return default


JSON_ATTRS = "trainset_json_attrs"


def _netcdf_attr(value: Any) -> bool:
    """Whether NetCDF can store an attribute value as it is (text, numbers, flat lists)."""
    if isinstance(value, (str, int, float, np.integer, np.floating, np.ndarray)):
        return True
    return isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) for v in value) and (
        len({type(v) for v in value}) <= 1)


def _encode_attrs(part: xr.Dataset) -> xr.Dataset:
    """Nested attributes (dicts, lists of lists) as JSON text, their names in ``trainset_json_attrs``."""
    nested = sorted(k for k, v in part.attrs.items() if not _netcdf_attr(v))
    if not nested:
        return part
    attrs = {k: canonical_json(v) if k in nested else v for k, v in part.attrs.items()}
    return part.assign_attrs(**attrs, **{JSON_ATTRS: canonical_json(nested)})


def _decode_attrs(part: xr.Dataset) -> xr.Dataset:
    nested = json.loads(part.attrs.get(JSON_ATTRS, "[]"))
    part.attrs = {k: json.loads(v) if k in nested else v for k, v in part.attrs.items() if not k.startswith("trainset_")}
    return part


def _splits_dataset(splits: Splits) -> xr.Dataset:
    import xarray as xr  # here, not at module level: jobs that only read arrays skip xarray and pandas

    return xr.Dataset({name: (f"{name}_n", np.asarray(ix, dtype=np.int64)) for name, ix in splits.items()})


def _encoding(part: xr.Dataset, chunk: int, compression: int | None) -> dict:
    encoding = {}
    for var, array in part.data_vars.items():
        sizes = (max(1, min(chunk, part.sizes[SAMPLE])), *array.shape[1:])
        encoding[var] = {"chunksizes": sizes, "contiguous": False}
        if compression:
            encoding[var].update(zlib=True, complevel=int(compression))
    return encoding


register(NetCDFFormat())
