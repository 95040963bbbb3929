"""``Reader.take`` (rows in any order, repeats allowed) gives exactly what sorted reads give.

The HDF5 and NetCDF readers gather shuffled batches from whole raw chunks; the memory reader
fancy-indexes once. Each must equal the general path (sorted unique read, then reorder), for
one-chunk batches, batches spanning chunks, repeated rows, the short last chunk and sparse rows.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from trainset.collection import Collection
from trainset.io.base import Reader, get_format
from trainset.loaders.memory import MemoryReader

N, CHUNK = 700, 64


def _collection() -> Collection:
    rng = np.random.default_rng(3)
    data = xr.Dataset({"x": (("sample", "t"), rng.normal(size=(N, 5)).astype(np.float32)),
                       "y": (("sample",), rng.integers(0, 9, size=N).astype(np.int64))})
    return Collection.single(data, attrs={"task": "t"})


ROWS = {
    "one chunk shuffled": np.random.default_rng(0).permutation(CHUNK) + 2 * CHUNK,
    "two chunks": np.random.default_rng(1).permutation(np.arange(CHUNK // 2, CHUNK + CHUNK // 2)),
    "repeats": np.array([5, 5, 3, 70, 5, 69]),
    "short last chunk": np.arange(N - 1, N - 30, -1),
    "whole short last chunk": np.arange(N - 1, (N // CHUNK) * CHUNK - 1, -1),
    "sparse": np.arange(0, N, 97),
}


@pytest.mark.parametrize("name", ["netcdf", "hdf5", "zarr", "memory"])
def test_take_equals_sorted_read(tmp_path, name):
    data = _collection()
    if name == "memory":
        reader = MemoryReader(data)
    else:
        fmt = get_format(name)
        path = fmt.path_for(tmp_path, "d")
        fmt.write(data, path, None, chunk=CHUNK)
        reader = fmt.reader(path)
    for label, rows in ROWS.items():
        got = reader.take(0, rows, None)
        want = Reader.take(reader, 0, rows, None)  # the general path
        assert sorted(got) == sorted(want), label
        for var in want:
            assert got[var].dtype == want[var].dtype and np.array_equal(got[var], want[var]), (label, var)
            assert np.array_equal(want[var], data.parts["all"][var].values[rows]), (label, var)
