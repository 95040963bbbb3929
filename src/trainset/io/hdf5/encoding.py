"""On-disk constants and the encoding of HDF5 values and JSON attributes (see :mod:`trainset.io.hdf5`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

if TYPE_CHECKING:  # annotations only: a job that reads or checks HDF5 need not import xarray
    import xarray as xr

from trainset.collection import SAMPLE
from trainset.errors import TrainsetError
from trainset.provenance import jsonable
from trainset.versions import current

VERSION = current("hdf5")  # stored as the root attribute versions.VERSION_ATTR
OPTIONS = {"layout": "single", "chunk": 256, "compression": None}
LAYOUTS = ("single", "presplit")
COMPRESSIONS = (None, "gzip", "lzf")
MAGIC = b"\x89HDF\r\n\x1a\n"


def dumps(obj: Any, what: str) -> str:
    """Key-sorted compact JSON of :func:`~trainset.provenance.jsonable` ``obj`` (numpy made plain)."""
    return json.dumps(jsonable(obj, what), sort_keys=True, separators=(",", ":"))


def encode(values: np.ndarray, what: str) -> np.ndarray:
    """Storage form: text -> object str (vlen UTF-8), datetimes -> int64, the rest unchanged."""
    kind = values.dtype.kind
    if kind in "Mm":
        return values.view(np.int64)
    if kind == "U":
        return values.astype(object)
    if kind == "O" and not all(isinstance(v, str) for v in values.ravel()):
        raise TrainsetError(f"{what} holds objects that are not text. Fix: convert them to str or numbers")
    return values


def decode(values: np.ndarray, dtype: str) -> np.ndarray:
    """Inverse of :func:`encode`, given the dtype recorded in the metadata."""
    wanted = np.dtype(dtype)
    if wanted.kind in "Mm":
        return values.view(wanted)
    if wanted.kind == "U":
        return np.asarray(values).astype(wanted)
    return np.asarray(values, dtype=object) if wanted.kind == "O" else values


def stored_ok(stored: np.dtype, dtype: str) -> bool:
    """Whether a dataset's HDF5 dtype is the storage form of metadata dtype ``dtype``."""
    wanted = np.dtype(dtype)
    if wanted.kind in "UO":
        return h5py.check_string_dtype(stored) is not None
    return stored == (np.dtype(np.int64) if wanted.kind in "Mm" else wanted)


def variable_meta(name: str, var: xr.DataArray, what: str) -> dict[str, Any]:
    if SAMPLE in var.dims[1:]:
        raise TrainsetError(f"{what}: dimension '{SAMPLE}' must come first, got {var.dims}. Fix: transpose it")
    return {"name": name, "dims": list(var.dims), "dtype": str(var.dtype), "attrs": json.loads(dumps(var.attrs, what)),
            "shape": list(var.shape[1:] if var.dims[:1] == (SAMPLE,) else var.shape)}


def reason(error: BaseException) -> str:
    """First line of an error, without traceback text."""
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]
