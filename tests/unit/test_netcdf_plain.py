"""The h5py description of a NetCDF file (:mod:`trainset.io.netcdf_plain`) is the one xarray gives,
and every file it cannot describe exactly goes to xarray."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import xarray as xr

from trainset.collection import Collection
from trainset.io.netcdf import SPLITS_GROUP, NetCDFFormat, _metadata_of, _open_tree, _plain_metadata_of, _read_metadata
from trainset.io.netcdf_plain import plain_metadata


def through_xarray(path) -> dict:
    with _open_tree(path) as tree:
        return _metadata_of(tree, path)


def assert_same(ours: dict, theirs: dict) -> None:
    assert ours["parts"] == theirs["parts"] and ours["chunk"] == theirs["chunk"] and ours["attrs"] == theirs["attrs"]
    assert [list(p.variables) for p in ours["parts"]] == [list(p.variables) for p in theirs["parts"]]
    assert (ours["splits"] is None) == (theirs["splits"] is None)
    for name, ix in (theirs["splits"] or {}).items():
        assert ours["splits"][name].dtype == ix.dtype and np.array_equal(ours["splits"][name], ix)
    assert list(ours["splits"] or {}) == list(theirs["splits"] or {})


def part(n: int, offset: int = 0) -> xr.Dataset:
    """Variables in a non-alphabetical order, per-sample and per-feature coordinates."""
    rng = np.random.default_rng(n)
    return xr.Dataset(
        {"values": (("sample", "feature"), rng.normal(size=(n, 3)).astype(np.float32)),
         "label": (("sample",), np.arange(offset, offset + n, dtype=np.int64)),
         "aux": (("sample", "t", "feature"), rng.normal(size=(n, 2, 3)))},
        coords={"sample": np.arange(n), "feature": ["a", "b", "c"], "group": ("sample", [f"g{i % 3}" for i in range(n)])},
        attrs={"note": "x", "nested": {"k": [1, 2]}})


@pytest.mark.parametrize("parts", [1, 3])
@pytest.mark.parametrize("with_splits", [False, True])
def test_a_written_file_is_described_as_xarray_describes_it(tmp_path, parts, with_splits):
    collection = Collection({f"w{i}": part(10 + i, 100 * i) for i in range(parts)}, {"task": "t", "name": "n"})
    n = len(collection)
    splits = {"train": np.arange(0, n - 4), "val": np.arange(n - 4, n - 2), "test": np.arange(n - 2, n)}
    path = tmp_path / "d.nc"
    NetCDFFormat().write(collection, path, splits if with_splits else None, chunk=4)
    plain = plain_metadata(path, SPLITS_GROUP)
    assert plain is not None
    assert_same(_plain_metadata_of(plain, path), through_xarray(path))
    assert_same(_read_metadata(path), through_xarray(path))


@pytest.mark.parametrize("variable", [
    np.array([True, False, True]),                                    # stored as int8 with dtype="bool"
    np.array(["2021-01-01", "2021-01-02", "2021-01-03"], dtype="datetime64[ns]"),  # int with units "... since"
    np.array(["a", "bc", "d"]),                                       # strings
])
def test_a_variable_xarray_decodes_sends_the_file_to_xarray(tmp_path, variable):
    data = xr.Dataset({"x": (("sample",), np.arange(3.0)), "odd": (("sample",), variable)})
    path = tmp_path / "d.nc"
    NetCDFFormat().write(Collection.single(data), path)
    assert plain_metadata(path, SPLITS_GROUP) is None
    assert_same(_read_metadata(path), through_xarray(path))


def test_an_integer_with_a_fill_value_goes_to_xarray(tmp_path):
    """xarray masks an integer variable's _FillValue, making it float: h5py's dtype would differ."""
    path = tmp_path / "d.nc"
    data = xr.Dataset({"x": (("sample",), np.arange(3, dtype=np.int32))})
    data.to_netcdf(path, engine="netcdf4", encoding={"x": {"_FillValue": -1}})
    assert plain_metadata(path, SPLITS_GROUP) is None
    assert _read_metadata(path)["parts"][0].variables["x"].dtype.kind == "f"


def test_a_file_netcdf_c_did_not_write_goes_to_xarray(tmp_path):
    path = tmp_path / "d.nc"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3.0)
    assert plain_metadata(path, SPLITS_GROUP) is None
    assert plain_metadata(tmp_path / "missing.nc", SPLITS_GROUP) is None
