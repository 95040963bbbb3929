"""The metadata of a plain NetCDF-4 file read through h5py, without xarray.

A job that validates the canonical copy or fits scalers on it needs only its parts, variable
shapes and dtypes, root attributes and stored splits; importing xarray (and pandas with it) to
read them costs ~0.4 s per job, more than the job's own work. A NetCDF-4 file is an HDF5 file,
so these facts are read here from its HDF5 structure as xarray would decode them.

Only files whose every variable read here xarray would pass through unchanged take this path:
plain int/uint/float data and splits, no CF encoding attributes (``scale_factor``, ``units``,
an integer ``_FillValue``, ...), the ``_NCProperties`` that netCDF-C writes, dimension scales
attached as netCDF-C attaches them. For anything else :func:`plain_metadata` returns None and
the caller reads the file through xarray, whose answers (and error messages) are the reference.
"""

from __future__ import annotations

import json
import os
from typing import Any

import h5py
import numpy as np

from trainset.collection import SAMPLE
from trainset.io.base import PartInfo, VariableInfo
from trainset.io.hdf5.refs import open_contained

PHONY = b"This is a netCDF dimension but not a netCDF variable"
"""The ``NAME`` of a dimension scale netCDF-C creates for a dimension without a variable."""
DECODED = frozenset({"scale_factor", "add_offset", "_Unsigned", "dtype", "calendar", "units", "missing_value",
                     "valid_range", "valid_min", "valid_max", "flag_values", "compress", "bounds"})
"""Attributes on which xarray's CF decoding may change a variable's values or dtype."""


def plain_metadata(path: str | os.PathLike, splits_group: str) -> dict | None:
    """``{"root": root attributes, "parts": [PartInfo], "chunk", "stored": {split: indices} | None}``
    of the NetCDF-4 file at ``path``, or None where xarray must read it (see the module docstring).

    Outside references are refused first (:func:`open_contained`), as before netCDF-C opens a file.
    """
    try:
        handle = open_contained(path)
    except (OSError, ValueError):
        return None  # missing or not HDF5: the xarray path says what is wrong
    with handle:
        try:
            return _metadata(handle, splits_group)
        except (OSError, ValueError, KeyError, TypeError):
            return None


def _metadata(f: h5py.File, splits_group: str) -> dict | None:
    if "_NCProperties" not in f.attrs:
        return None  # not written by netCDF-C
    root = {key: _attr(f.attrs[key]) for key in f.attrs if not key.startswith("_")}
    names = json.loads(root.get("trainset_parts", '["all"]'))
    groups = [f[name] if len(names) > 1 else f for name in names]
    parts, chunk = [], 256
    for name, group in zip(names, groups):
        if not isinstance(group, h5py.Group):
            return None
        found = _data_variables(group)
        if not found:
            return None  # a part without data variables: its size comes from its dimensions
        variables = {var: VariableInfo(tuple(ds.shape[1:]), np.dtype(ds.dtype)) for var, ds in found.items()}
        sizes = {ds.shape[0] for ds in found.values()}
        if len(sizes) != 1:
            return None
        parts.append(PartInfo(str(name), int(sizes.pop()), variables))
        chunk = next((int(ds.chunks[0]) for ds in found.values() if ds.chunks), chunk)
    stored = None
    if splits_group in f and isinstance(f[splits_group], h5py.Group):
        found = _data_variables(f[splits_group], first_dim=None)
        if found is None:
            return None
        stored = {str(k): ds[()] for k, ds in found.items()}
    return {"root": root, "parts": parts, "chunk": chunk, "stored": stored}


def _data_variables(group: h5py.Group, first_dim: str | None = SAMPLE) -> dict[str, h5py.Dataset] | None:
    """The group's data variables (not coordinates) in netCDF order, each plain and, with
    ``first_dim``, sample-first; None when one is not."""
    datasets = {name: obj for name, obj in _in_creation_order(group) if isinstance(obj, h5py.Dataset)}
    coords = set(str(_attr(group.attrs.get("coordinates", ""))).split())
    for name, ds in datasets.items():
        if _attr(ds.attrs.get("NAME", b"")) == PHONY.decode() or ds.attrs.get("CLASS") is not None:
            coords.add(name)  # a dimension (phony) or a dimension coordinate
        coords.update(str(_attr(ds.attrs.get("coordinates", ""))).split())
    out = {}
    for name, ds in datasets.items():
        if name in coords:
            continue
        if not _plain(ds) or (first_dim is not None and _first_dim(ds) != first_dim):
            return None
        out[name] = ds
    return out


def _in_creation_order(group: h5py.Group) -> list[tuple[str, Any]]:
    """The group's members in link creation order: netCDF-C's (and so xarray's) variable order."""
    names: list[str] = []
    group.id.links.iterate(lambda name: names.append(name.decode("utf-8")), idx_type=h5py.h5.INDEX_CRT_ORDER)
    return [(name, group.get(name)) for name in names]


def _plain(ds: h5py.Dataset) -> bool:
    """Whether xarray would give this variable's stored dtype and values unchanged."""
    if ds.dtype.kind not in "iuf" or ds.dtype.byteorder == ">" or ds.ndim == 0:
        return False
    keys = set(ds.attrs)
    return not keys & DECODED and (ds.dtype.kind == "f" or "_FillValue" not in keys)


def _first_dim(ds: h5py.Dataset) -> str | None:
    """The name of the dimension scale attached to the variable's first axis."""
    scales = ds.dims[0]
    if len(scales) != 1:
        return None
    return scales[0].name.rsplit("/", 1)[-1]


def _attr(value: Any) -> Any:
    """An attribute as netCDF4-python gives it: text as str, one-element arrays as scalars."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.size == 1:
        return _attr(value.reshape(-1)[0])
    return value
