"""Reading a ``.zarr`` store: :class:`ZarrReader`, each touched chunk read once per call."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
from zarr.codecs import BytesCodec
from zarr.core.chunk_key_encodings import DefaultChunkKeyEncoding

if TYPE_CHECKING:  # annotations only: xarray is imported by whole(), the one method that builds it
    import xarray as xr

from trainset.errors import TrainsetError
from trainset.io.base import PartInfo, Reader, Splits, VariableInfo
from trainset.io.zarr_.raw import RawArray, group_rows
from trainset.io.zarr_.store import (
    COORDS,
    MANIFEST,
    MANIFEST_ATTR,
    PRIVATE,
    REWRITE,
    SPLITS_FILE,
    check_manifest_names,
    chunk_file,
    open_store,
    read_json,
    symlinks,
)
from trainset.splits import read_splits
from trainset.versions import KEY, check_version


RAW_CODECS = (BytesCodec(endian="little"),)
"""The one codec chain whose chunk files :meth:`ZarrReader.take` reads itself (trainset's
``compression: none``): the file is the chunk's little-endian array bytes. Every other chain
(compressors, other endianness, sharding) goes through zarr-python."""


class ZarrReader(Reader):
    """Lazy, fork-safe random access to a ``.zarr`` dataset; picklable before and after use.

    Parameters
    ----------
    path : path-like
        The ``TS_<name>.zarr`` folder.
    """

    def __init__(self, path: str | os.PathLike, fs: Any = None, inner: str | None = None) -> None:
        self.remote = fs is not None
        self.path: Any = str(path).rstrip("/") if self.remote else Path(path)
        self._fs, self._inner = fs, (inner or "").rstrip("/")
        self._manifest: dict[str, Any] | None = None
        self._parts: list[PartInfo] | None = None
        self._pid: int | None = None
        self._arrays: dict[str, zarr.Array] = {}
        self._raws: dict[tuple[str, str], RawArray | None] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without open handles, so each worker process opens its own."""
        return {**self.__dict__, "_pid": None, "_arrays": {}, "_raws": {}}

    def _file(self, *names: str) -> Any:
        """A file of the store: a Path, or a URL for a remote store."""
        return "/".join([self.path, *names]) if self.remote else self.path.joinpath(*names)

    def _filesystem(self) -> tuple[Any, str]:
        return self._fs, self._inner

    def _json(self, what: str, *names: str) -> Any:
        """A JSON file of the store, parsed (duplicate keys refused)."""
        if not self.remote:
            return read_json(self._file(*names), what)
        fs, inner = self._filesystem()
        try:
            return json.loads(fs.cat_file("/".join([inner, *names])))
        except (OSError, ValueError) as error:
            raise TrainsetError(f"{self._file(*names)}: missing or unreadable {what} ({error}). {REWRITE}") from error

    def _world_splits(self, world: str, n: int) -> Splits:
        """A world's local splits (its ``splits.json``), through the one split checker."""
        if not self.remote:
            return read_splits(self.path / world / SPLITS_FILE, versioned=False, n=n)
        fs, inner = self._filesystem()
        file = self._file(world, SPLITS_FILE)
        try:
            text = fs.cat_file(f"{inner}/{world}/{SPLITS_FILE}")
        except OSError as error:
            raise TrainsetError(f"{file}: missing or unreadable splits ({error}). {REWRITE}") from error
        return read_splits(file, versioned=False, n=n, text=text)

    def _has_chunk(self, world: str, name: str, index: tuple[int, ...]) -> bool:
        """Whether chunk ``index`` is stored (a missing one would read as fill values), not a link."""
        if not self.remote:
            file = chunk_file(self.path / world / name, index)
            return file.is_file() and not file.is_symlink()  # a link made after the store was opened
        fs, inner = self._filesystem()
        return bool(fs.isfile("/".join([inner, world, name, "c", *map(str, index)])))

    def _store(self) -> Any:
        if not self.remote:
            return open_store(self.path)
        from zarr.storage import FsspecStore

        options = dict(getattr(self._fs, "storage_options", {}))  # zarr makes its own asynchronous instance
        return FsspecStore.from_url(self.path, storage_options=options or None, read_only=True)

    @property
    def manifest(self) -> dict[str, Any]:
        """The parsed ``manifest.json`` (read once)."""
        if self._manifest is None:
            links = [] if self.remote else symlinks(self.path)  # before any file is read; object stores have none
            if links:
                listed = "\n".join(f"  - {p}" for p in links)
                raise TrainsetError(f"{self.path}: refused, symbolic links inside the store:\n{listed}")
            manifest = self._json("manifest", MANIFEST)
            if not isinstance(manifest, dict) or manifest.get("format") != "trainset-zarr" or "worlds" not in manifest:
                raise TrainsetError(f"{self._file(MANIFEST)}: not a trainset zarr manifest. {REWRITE}")
            check_version("zarr", manifest.get(KEY), self._file(MANIFEST))
            check_manifest_names(manifest, self._file(MANIFEST))
            self._check_copy(manifest)
            self._manifest = manifest
        return self._manifest

    def _check_copy(self, manifest: dict[str, Any]) -> None:
        """Refuse a store whose root-attribute copy of the manifest (format version 2 on) differs
        from ``manifest.json``: other tools read the one, trainset the other."""
        if manifest.get(KEY) == 1:  # written before the copy existed
            return
        copy = self._root_attrs().get(MANIFEST_ATTR)
        if copy != manifest:
            raise TrainsetError(f"{self.path}: {MANIFEST} and the root group attribute {MANIFEST_ATTR!r} differ "
                                f"({'the attribute is missing' if copy is None else 'edited copies'}). {REWRITE}")

    def _root_attrs(self) -> dict[str, Any]:
        return self._json("root group metadata", "zarr.json").get("attributes", {})

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
        self.manifest  # the store's links are refused before any of its files is read
        return {k: v for k, v in self._root_attrs().items() if k != MANIFEST_ATTR}

    @property
    def splits(self) -> Splits | None:
        """Global indices per split, from each world's local ``splits.json`` plus its offset."""
        names = self.manifest.get("split_names")
        if names is None:
            return None
        pieces: dict[str, list[np.ndarray]] = {name: [] for name in names}
        for world in self.manifest["worlds"]:
            for name, local in self._world_splits(world["name"], int(world["n_samples"])).items():
                pieces.setdefault(name, []).append(local + world["offset"])
        return {name: np.sort(np.concatenate(ix)) if ix else np.zeros(0, np.int64) for name, ix in pieces.items()}

    def array(self, world: str, name: str, coord: bool = False) -> zarr.Array:
        """The zarr array of one variable (or coordinate), opened once per process."""
        if self._pid != os.getpid():
            self._arrays, self._raws, self._pid = {}, {}, os.getpid()
        key = f"{world}/{COORDS}/{name}" if coord else f"{world}/{name}"
        if key not in self._arrays:
            self.manifest  # the store's links are refused before any of its files is read
            try:
                self._arrays[key] = zarr.open_array(self._store(), path=key, mode="r", zarr_format=3)
            except Exception as error:  # zarr raises several types for missing/corrupt metadata
                raise TrainsetError(f"{self._file(key)}: cannot open zarr array ({error}). {REWRITE}") from error
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

    def take(self, part: int, rows: np.ndarray, variables: list[str] | None = None) -> dict[str, np.ndarray]:
        """Rows in the order given; uncompressed local chunks read straight into the batch (:mod:`.raw`)."""
        return self.take_valid(part, np.asarray(rows, dtype=np.int64).reshape(-1), variables)

    def take_valid(self, part: int, rows: np.ndarray, variables: list[str] | None = None) -> dict[str, np.ndarray]:
        """:meth:`take` of ``rows`` already int64 and 1-D, as a loader's own sampler draws them: the
        same arrays, without the conversion. The range is still checked (a row past the end of the
        last chunk would read its padding): no rows, an unknown part or a row out of range go
        through :meth:`Reader.take`, whose :meth:`read` names the problem."""
        infos = self.parts
        if not 0 <= part < len(infos) or not rows.size or rows.min() < 0 or rows.max() >= infos[part].size:
            return super().take(part, rows, variables)
        info = infos[part]
        names = list(info.variables) if variables is None else variables
        groups = group_rows(rows, self.block_size)  # once for all variables: they share the chunk grid
        out: dict[str, np.ndarray | None] = {}
        for name in names:
            raw = self._raw(info.name, name, info.variables.get(name))
            out[name] = raw.take(groups, rows.size) if raw is not None else None
        rest = [name for name, got in out.items() if got is None]
        if rest:  # compressed, remote, damaged or unknown: zarr-python reads them or names the problem
            out.update(super().take(part, rows, rest))
        return out  # type: ignore[return-value]

    def _raw(self, world: str, name: str, info: VariableInfo | None) -> RawArray | None:
        """The variable's :class:`RawArray` when it is stored with :data:`RAW_CODECS` on trainset's
        chunk grid in a local store (decided once per process); else None (zarr-python reads it)."""
        if self._pid != os.getpid():
            self._arrays, self._raws, self._pid = {}, {}, os.getpid()
        key = (world, name)
        if key not in self._raws:
            self._raws[key] = None if self.remote or info is None else self._raw_array(world, name, info)
        return self._raws[key]

    def _raw_array(self, world: str, name: str, info: VariableInfo) -> RawArray | None:
        array, chunk = self.array(world, name), self.block_size  # array(): the store's link and name checks
        if not info.dtype.itemsize * math.prod(info.shape):  # rows of zero bytes: no file to read (zarr writes none)
            return RawArray(str(self.path / world / name / "c"), chunk, info.dtype, tuple(info.shape))
        meta = array.metadata
        if (getattr(meta, "codecs", None) != RAW_CODECS or array.dtype != info.dtype
                or info.dtype.newbyteorder("<") != info.dtype or info.dtype.hasobject
                or getattr(meta.chunk_grid, "chunk_shape", None) != (chunk, *info.shape)
                or not isinstance(meta.chunk_key_encoding, DefaultChunkKeyEncoding)
                or meta.chunk_key_encoding.separator != "/"):
            return None
        return RawArray(str(self.path / world / name / "c"), chunk, info.dtype, tuple(info.shape))

    def _rows(self, world: str, name: str, local: np.ndarray, info: VariableInfo) -> np.ndarray:
        array, chunk = self.array(world, name), self.block_size
        out = np.empty((local.size, *info.shape), dtype=info.dtype)
        if not out.size:  # no rows, or rows of zero bytes: nothing to read (zarr writes no chunk file for those)
            return out
        which = local // chunk
        cuts = np.flatnonzero(np.diff(which)) + 1
        for start, stop in zip(np.r_[0, cuts], np.r_[cuts, local.size]):
            c = int(which[start])
            first, last = c * chunk, min((c + 1) * chunk, array.shape[0])
            index = (c,) + (0,) * (array.ndim - 1)
            file = chunk_file(self.path / world / name, index) if not self.remote else \
                self._file(world, name, "c", *map(str, index))
            try:
                if not self._has_chunk(world, name, index):
                    raise FileNotFoundError("chunk file missing or a symbolic link")
                block = np.asarray(array[first:last])
            except Exception as error:  # codec and store errors have no common base class
                raise TrainsetError(f"{file}: chunk of {world}/{name} unreadable ({error}). {REWRITE}") from error
            out[start:stop] = block if stop - start == last - first else block[local[start:stop] - first]
        return out

    def whole(self, world: str, entry: dict[str, Any], coord: bool = False) -> xr.Variable:
        """A whole stored variable or coordinate, with its dims, attrs and original dtype."""
        import xarray as xr  # here, not at module level: jobs that only read arrays skip its import

        array = self.array(world, entry["name"], coord)
        try:
            values = np.asarray(array[...]) if array.ndim else np.asarray(array[...]).reshape(())
        except Exception as error:
            raise TrainsetError(f"{self._file(world, entry['name'])}: unreadable ({error}). {REWRITE}") from error
        attrs = dict(array.attrs.asdict())
        dtype = np.dtype(attrs.pop(PRIVATE, {}).get("dtype", entry["dtype"]))
        return xr.Variable(entry["dims"], values.astype(dtype, copy=False), attrs)
