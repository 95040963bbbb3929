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


def no_creation_order(path) -> None:
    """Written without a creation-order index (h5netcdf's ``track_order=False`` does the same):
    netCDF-C lists the variables by name, and h5py cannot iterate in creation order."""
    with h5py.File(path, "w", track_order=False) as f:
        f.attrs["_NCProperties"] = b"version=2"
        sample = f.create_dataset("sample", data=np.arange(3.0))
        sample.make_scale("sample")
        for name in ("zz", "aa"):
            f.create_dataset(name, data=np.arange(3.0)).dims[0].attach_scale(sample)


def unlimited_sample_longer_coordinate(path) -> None:
    """netCDF-C's length of an unlimited dimension is its longest variable's (8), not the data's (5)."""
    import netCDF4

    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("sample", None)
        a, g = nc.createVariable("a", "f4", ("sample",)), nc.createVariable("g", "i4", ("sample",))
        a.coordinates = "g"
        a[0:5], g[0:8] = np.arange(5), np.arange(8)


def unlimited_inner_dimension(path) -> None:
    """xarray pads ``b`` (2 stored columns) to the dimension's length, 4."""
    import netCDF4

    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("sample", 5)
        nc.createDimension("t", None)
        b, c = nc.createVariable("b", "f4", ("sample", "t")), nc.createVariable("c", "f4", ("sample", "t"))
        b[:, 0:2], c[:, 0:4] = 1, 2


def non_coordinate_named_as_a_dimension(path) -> None:
    """``t(sample, t)`` is stored as ``_nc4_non_coord_t``; xarray does not list it as a data variable."""
    import netCDF4

    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("sample", 3)
        nc.createDimension("t", 2)
        nc.createVariable("x", "f4", ("sample", "t"))[:] = 1
        nc.createVariable("t", "f4", ("sample", "t"))[:] = 2


def stray_class_attribute(path) -> None:
    """A data variable with a ``CLASS`` attribute that does not make it a dimension scale: xarray keeps it."""
    xr.Dataset({"x": (("sample",), np.zeros(3, "f4")), "y": (("sample",), np.zeros(3, "f4"))}).to_netcdf(
        path, engine="netcdf4")
    with h5py.File(path, "a") as f:
        f["y"].attrs["CLASS"] = b"foo"


def empty_split(path) -> None:
    """An empty split is stored with an unlimited (length 0) dimension: still plain, and the same."""
    data = xr.Dataset({"x": (("sample",), np.arange(4.0))})
    NetCDFFormat().write(Collection.single(data), path, {"train": np.arange(4), "val": np.arange(0)})


@pytest.mark.parametrize("write, plain", [
    (no_creation_order, False),
    (unlimited_sample_longer_coordinate, False),
    (unlimited_inner_dimension, False),
    (non_coordinate_named_as_a_dimension, False),
    (stray_class_attribute, True),
    (empty_split, True),
])
def test_a_file_other_tools_wrote_is_described_as_xarray_describes_it(tmp_path, write, plain):
    """Where h5py's view of a file would differ from xarray's, the file goes to xarray."""
    path = tmp_path / "d.nc"
    write(path)
    found = plain_metadata(path, SPLITS_GROUP)
    assert (found is not None) == plain
    if found is not None:
        assert_same(_plain_metadata_of(found, path), through_xarray(path))
    assert_same(_read_metadata(path), through_xarray(path))


def test_an_unforeseen_error_sends_the_file_to_xarray(tmp_path, monkeypatch):
    """Any error but a refusal costs only the fallback, never a crash."""
    from trainset.io import netcdf_plain

    path = tmp_path / "d.nc"
    NetCDFFormat().write(Collection.single(xr.Dataset({"x": (("sample",), np.arange(3.0))})), path)

    def broken(*_):
        raise RuntimeError("Link iteration failed")

    monkeypatch.setattr(netcdf_plain, "_metadata", broken)
    assert plain_metadata(path, SPLITS_GROUP) is None
    assert_same(_read_metadata(path), through_xarray(path))
