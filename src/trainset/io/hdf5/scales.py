"""Dimension scales: named axes, so netCDF tools (xarray's ``h5netcdf`` engine) read trainset's HDF5.

HDF5 arrays have no axis names of their own; netCDF-4 names them with *dimension scales*: one
dataset per dimension, marked as a scale, attached to every axis of that name. A dimension that
has no coordinate values is a scale dataset whose ``NAME`` starts with netCDF's phrase "This is
a netCDF dimension but not a netCDF variable", which netCDF readers show as a dimension only.
Its storage is never allocated (nothing is written to it), so it costs a few hundred bytes of
metadata. Attachments are object references inside the file, not links: :mod:`refs` accepts
them and trainset's reader never follows them.

Without scales xarray names the axes ``phony_dim_0, ...``; with them a single-layout file opens
as ``xr.open_dataset(path, engine="h5netcdf")`` with the collection's own dimension names (a
part of a multi-part file with ``group="parts/<name>"``, a presplit file's split with
``group="train"``; coordinates are in the ``coords`` subgroup).
"""

from __future__ import annotations

from typing import Sequence

import h5py

NOT_A_VARIABLE = "This is a netCDF dimension but not a netCDF variable."
"""netCDF-4's ``NAME`` of a scale that only names a dimension (followed by its length, ``%10d``)."""


def name_axes(group: h5py.Group, arrays: Sequence[tuple[h5py.Dataset, Sequence[str]]],
              reserved: Sequence[str] = ()) -> None:
    """Create a scale in ``group`` for each dimension of ``arrays`` (dataset, its dims), in
    first-seen order, and attach it to every axis of that name.

    A dimension whose name is already a member of ``group`` (or in ``reserved``) gets no scale:
    its axes stay unnamed for netCDF tools, which is how they read files written before scales.
    """
    sizes: dict[str, int] = {}
    for dataset, dims in arrays:
        for dim, size in zip(dims, dataset.shape):
            sizes.setdefault(str(dim), int(size))
    scales = {}
    for dim, size in sizes.items():
        if dim in group or dim in reserved:
            continue
        scale = group.create_dataset(dim, shape=(size,), dtype="f4", track_times=False)
        scale.make_scale(f"{NOT_A_VARIABLE}{size:10d}")
        scales[dim] = scale
    for dataset, dims in arrays:
        for axis, dim in enumerate(dims):
            if dim in scales and dataset.shape[axis] == scales[dim].shape[0]:
                dataset.dims[axis].attach_scale(scales[dim])
