"""Reading a ``.zarr`` store: :class:`ZarrReader`, each touched chunk read once per call."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

from trainset.errors import TrainsetError
from trainset.io.base import PartInfo, Reader, Splits, VariableInfo
from trainset.io.zarr_.store import (
    COORDS,
    MANIFEST,
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
            links = symlinks(self.path)  # before any file of the store is read
            if links:
                listed = "\n".join(f"  - {p}" for p in links)
                raise TrainsetError(f"{self.path}: refused, symbolic links inside the store:\n{listed}")
            manifest = read_json(self.path / MANIFEST, "manifest")
            if not isinstance(manifest, dict) or manifest.get("format") != "trainset-zarr" or "worlds" not in manifest:
                raise TrainsetError(f"{self.path / MANIFEST}: not a trainset zarr manifest. {REWRITE}")
            check_version("zarr", manifest.get(KEY), self.path / MANIFEST)
            check_manifest_names(manifest, self.path / MANIFEST)
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
        self.manifest  # the store's links are refused before any of its files is read
        return read_json(self.path / "zarr.json", "root group metadata").get("attributes", {})

    @property
    def splits(self) -> Splits | None:
        """Global indices per split, from each world's local ``splits.json`` plus its offset."""
        names = self.manifest.get("split_names")
        if names is None:
            return None
        pieces: dict[str, list[np.ndarray]] = {name: [] for name in names}
        for world in self.manifest["worlds"]:
            file = self.path / world["name"] / SPLITS_FILE
            for name, local in read_splits(file, versioned=False, n=int(world["n_samples"])).items():
                pieces.setdefault(name, []).append(local + world["offset"])
        return {name: np.sort(np.concatenate(ix)) if ix else np.zeros(0, np.int64) for name, ix in pieces.items()}

    def array(self, world: str, name: str, coord: bool = False) -> zarr.Array:
        """The zarr array of one variable (or coordinate), opened once per process."""
        if self._pid != os.getpid():
            self._arrays, self._pid = {}, os.getpid()
        key = f"{world}/{COORDS}/{name}" if coord else f"{world}/{name}"
        if key not in self._arrays:
            self.manifest  # the store's links are refused before any of its files is read
            try:
                self._arrays[key] = zarr.open_array(open_store(self.path), path=key, mode="r", zarr_format=3)
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
            file = chunk_file(self.path / world / name, (c,) + (0,) * (array.ndim - 1))
            try:
                if not file.is_file() or file.is_symlink():  # a link made after the store was opened
                    raise FileNotFoundError("chunk file missing or a symbolic link")
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
