"""The metadata of a plain NetCDF-4 file read through h5py, without xarray.

A job that validates the canonical copy or fits scalers on it needs only its parts, variable
shapes and dtypes, root attributes and stored splits; importing xarray (and pandas with it) to
read them costs ~0.4 s per job, more than the job's own work. A NetCDF-4 file is an HDF5 file,
so these facts are read here from its HDF5 structure as xarray would decode them.

Only files whose every variable read here xarray would pass through unchanged take this path:
plain int/uint/float data and splits, no CF encoding attributes (``scale_factor``, ``units``,
an integer ``_FillValue``, ...), the ``_NCProperties`` that netCDF-C writes, dimension scales
attached as netCDF-C attaches them, a creation-order index (netCDF-C's variable order), no
unlimited dimension in a part (netCDF-C gives it the largest extent of its variables, xarray pads
the others to it) and no ``_nc4_non_coord_`` variable (netCDF-C renames it). For anything else,
or on any unexpected error, :func:`plain_metadata` returns None and the caller reads the file
through xarray, whose answers (and error messages) are the reference: a fallback costs time only.
"""

from __future__ import annotations

import json
import os
from typing import Any

import h5py
import numpy as np

from trainset.collection import SAMPLE
from trainset.errors import TrainsetError
from trainset.io.base import PartInfo, VariableInfo
from trainset.io.hdf5.refs import open_contained
from trainset.io.hdf5.scales import NOT_A_VARIABLE

NON_COORD = "_nc4_non_coord_"
"""netCDF-C's link-name prefix for a variable named like a dimension it is not the coordinate of."""
DECODED = frozenset({"scale_factor", "add_offset", "_Unsigned", "dtype", "calendar", "units", "missing_value",
                     "valid_range", "valid_min", "valid_max", "flag_values", "compress", "bounds"})
"""Attributes on which xarray's CF decoding may change a variable's values or dtype."""


def plain_metadata(path: str | os.PathLike, splits_group: str) -> dict | None:
    """``{"root": root attributes, "parts": [PartInfo], "chunk", "stored": {split: indices} | None}``
    of the NetCDF-4 file at ``path``, or None where xarray must read it (see the module docstring).

    Outside references are refused first (:func:`open_contained`), as before netCDF-C opens a file;
    the xarray path scans for them again on a fallback (cheap, and it keeps that path self-contained).
    """
    try:
        handle = open_contained(path)
    except TrainsetError:
        raise  # refused: it points outside itself
    except Exception:  # noqa: BLE001 - missing, not HDF5, ...: the xarray path says what is wrong
        return None
    with handle:
        try:
            return _metadata(handle, splits_group)
        except TrainsetError:
            raise
        except Exception:  # noqa: BLE001 - a structure not foreseen here: xarray, the reference, reads it
            return None


def _metadata(f: h5py.File, splits_group: str) -> dict | None:
    if "_NCProperties" not in f.attrs:
        return None  # not written by netCDF-C
    root = {key: _attr(f.attrs[key]) for key in f.attrs if not key.startswith("_")}
    names = json.loads(root.get("trainset_parts", '["all"]'))
    groups = [f[name] if len(names) > 1 else f for name in names]
    if _unlimited(f):  # the root's dimensions are the parts' too
        return None
    parts, chunk = [], None  # None: no chunked variable, the caller's default
    for name, group in zip(names, groups):
        if not isinstance(group, h5py.Group) or _unlimited(group):
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
        if found is None or _unlimited(f[splits_group], empty_ok=True):
            return None
        stored = {str(k): ds[()] for k, ds in found.items()}
    return {"root": root, "parts": parts, "chunk": chunk, "stored": stored}


def _data_variables(group: h5py.Group, first_dim: str | None = SAMPLE) -> dict[str, h5py.Dataset] | None:
    """The group's data variables (not coordinates) in netCDF order, each plain and, with
    ``first_dim``, sample-first; None when one is not, or the group is not plain."""
    members = _in_creation_order(group)
    if members is None or any(name.startswith(NON_COORD) for name, _ in members):
        return None  # netCDF-C lists by name, or renames the variable: xarray's view differs
    datasets = {name: obj for name, obj in members if isinstance(obj, h5py.Dataset)}
    coords = set(str(_attr(group.attrs.get("coordinates", ""))).split())
    for name, ds in datasets.items():
        phony = str(_attr(ds.attrs.get("NAME", ""))).startswith(NOT_A_VARIABLE)
        if h5py.h5ds.is_scale(ds.id):  # a dimension: phony, or with its coordinate variable
            if ds.ndim != 1:
                return None
            coords.add(name)
        elif phony:
            return None  # a dimension's name on a variable: not how netCDF-C writes one
        coords.update(str(_attr(ds.attrs.get("coordinates", ""))).split())
    out = {}
    for name, ds in datasets.items():
        if name in coords:
            continue
        if not _plain(ds) or (first_dim is not None and _first_dim(ds) != first_dim):
            return None
        out[name] = ds
    return out


def _in_creation_order(group: h5py.Group) -> list[tuple[str, Any]] | None:
    """The group's members in link creation order: netCDF-C's (and so xarray's) variable order;
    None where the group has no creation-order index (netCDF-C then lists by name)."""
    # h5g.open: a File's own create plist is the file's, which does not say how its root group orders links
    order = h5py.h5g.open(group.id, b".").get_create_plist().get_link_creation_order()
    if not order & h5py.h5p.CRT_ORDER_INDEXED:
        return None
    names: list[str] = []
    group.id.links.iterate(lambda name: names.append(name.decode("utf-8")), idx_type=h5py.h5.INDEX_CRT_ORDER)
    return [(name, group.get(name)) for name in names]


def _unlimited(group: h5py.Group, empty_ok: bool = False) -> bool:
    """Whether a dataset of the group has an unlimited dimension: netCDF-C gives such a dimension
    the largest extent of the variables using it and xarray pads every one to it, so a dataset's
    own extent is not what xarray shows. ``empty_ok``: empty ones are fine (an empty split is
    written so): a dimension all of whose datasets are empty has length 0 for xarray too."""
    return any(None in obj.maxshape and not (empty_ok and obj.size == 0)
               for obj in group.values() if isinstance(obj, h5py.Dataset))


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
