"""NetCDF adapter: write an xarray object atomically and reproducibly; read it back.

Written with the netCDF4 engine (HDF5 underneath, which netCDF-C creates without object
timestamps), so the same array and attributes give byte-identical files.
"""

from __future__ import annotations

import os

import xarray as xr

from trainset.errors import TrainsetError
from trainset.provenance import atomic_path


def write_netcdf(obj: xr.DataArray | xr.Dataset, path: str | os.PathLike) -> None:
    """Write ``obj`` to ``path`` atomically (temporary file, then rename)."""
    encoding = {}
    if isinstance(obj, xr.DataArray):
        encoding = {obj.name: {"zlib": True, "complevel": 4}}
    with atomic_path(path) as tmp:
        obj.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=encoding)


def open_netcdf_array(path: str | os.PathLike, name: str = "frames") -> xr.DataArray:
    """Load the named array of a NetCDF file fully into memory."""
    try:
        with xr.open_dataset(path, engine="netcdf4") as dataset:
            if name not in dataset:
                raise TrainsetError(f"{path}: no variable '{name}' (has {list(dataset.data_vars)})")
            return dataset[name].load()
    except (OSError, ValueError) as error:
        raise TrainsetError(f"{path}: not a readable NetCDF file ({error})") from error
