"""Every stored format opened with the plain library people know: xarray, h5py, zarr, webdataset.

trainset's own reader is not used to read: each test opens the file as a user of that library
would and compares the arrays with the collection that was written.
"""

from __future__ import annotations

import glob
import json
import warnings

import h5py
import numpy as np
import pytest
import xarray as xr
import zarr

import trainset
from tests.io.test_roundtrip import one_part, two_parts, write_all
from trainset.io.base import get_format

pytest.importorskip("h5netcdf", reason="needs h5netcdf (pip install -e '.[test]')")
SPLITS = {"train": np.arange(0, 240), "val": np.arange(240, 270), "test": np.arange(270, 300)}


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    folder = tmp_path_factory.mktemp("interop")
    return write_all(one_part(), folder, SPLITS)


def no_warnings():
    """Any warning inside the block fails the test."""
    caught = warnings.catch_warnings()
    caught.__enter__()
    warnings.simplefilter("error")
    return caught


def assert_part(opened: xr.Dataset, part: xr.Dataset, rows=slice(None)) -> None:
    """Same variables, named dimensions and values as the written part (rows ``rows``)."""
    for name, var in part.data_vars.items():
        assert opened[name].dims == var.dims, name
        np.testing.assert_array_equal(opened[name].values, var.values[rows], err_msg=name)


def test_hdf5_opens_in_xarray_with_named_dimensions(stored):
    part = one_part().parts["demo"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no phony_dims fallback
        opened = xr.open_dataset(stored["hdf5"], engine="h5netcdf")
        coords = xr.open_dataset(stored["hdf5"], engine="h5netcdf", group="coords")
    assert dict(opened.sizes) == {"sample": 300, "time": 20, "feature": 3, "horizon": 5, "target": 2}
    assert_part(opened, part)
    assert coords["site"].dims == ("sample",)
    assert coords["origin"].values.tolist() == part["origin"].values.tolist()


def test_hdf5_presplit_and_multi_part_groups_have_named_dimensions(tmp_path):
    fmt = get_format("hdf5")
    part = one_part().parts["demo"]
    fmt.write(one_part(), tmp_path / "p.h5", SPLITS, layout="presplit")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train = xr.open_dataset(tmp_path / "p.h5", engine="h5netcdf", group="train")
    assert_part(train, part, SPLITS["train"])
    assert train["index"].dims == ("sample",) and train["index"].values.tolist() == SPLITS["train"].tolist()
    worlds = two_parts()
    fmt.write(worlds, tmp_path / "w.h5")
    for name, world in worlds.parts.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert_part(xr.open_dataset(tmp_path / "w.h5", engine="h5netcdf", group=f"parts/{name}"), world)


def test_h5py_reads_the_arrays_and_their_dimension_names(stored):
    part = one_part().parts["demo"]
    with h5py.File(stored["hdf5"], "r") as f:
        for name, var in part.data_vars.items():
            np.testing.assert_array_equal(f[name][()], var.values)
            assert tuple(d[0].name.rsplit("/", 1)[1] for d in f[name].dims) == var.dims
        np.testing.assert_array_equal(f["splits/val"][()], SPLITS["val"])


def test_netcdf_opens_in_xarray_with_both_engines(stored):
    part = one_part().parts["demo"]
    for engine in ("netcdf4", "h5netcdf"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            opened = xr.open_dataset(stored["netcdf"], engine=engine)
        assert_part(opened, part)
        assert opened["origin"].values.tolist() == part["origin"].values.tolist()


def test_zarr_opens_in_xarray_and_zarr_without_warnings(stored):
    part = one_part().parts["demo"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no consolidated-metadata or foreign-file warnings
        root = xr.open_zarr(stored["zarr"])
        opened = xr.open_zarr(stored["zarr"], group="demo")
        tree = xr.open_datatree(stored["zarr"], engine="zarr")
        group = zarr.open_group(stored["zarr"], mode="r")
    assert_part(opened, part)
    manifest = json.loads((stored["zarr"] / "manifest.json").read_text())
    assert root.attrs["trainset"] == manifest == dict(group.attrs)["trainset"]  # the manifest, in the root's attributes
    assert root.attrs["task"] == "seq2seq_regression"
    assert [w["name"] for w in manifest["worlds"]] == ["demo"] and "demo" in tree.children
    np.testing.assert_array_equal(group["demo/coords/site"][:], part["site"].values)


@pytest.mark.parametrize("per_member", [1, 4])
def test_webdataset_library_decodes_the_shards(tmp_path, per_member):
    """``wds.WebDataset(...).decode()`` needs no decoder of trainset's: members are ``.npy``."""
    wds = pytest.importorskip("webdataset", reason="needs webdataset (pip install -e '.[test]')")
    collection = one_part()
    path = write_all(collection, tmp_path, SPLITS, samples_per_member=per_member, samples_per_shard=128)["webdataset"]
    shards = sorted(glob.glob(str(path / "shard-*.tar")))
    assert len(shards) == 3
    got = {name: [] for name in collection.parts["demo"].data_vars}
    keys = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # webdataset's note on shardshuffle defaults
        for sample in wds.WebDataset(shards, shardshuffle=False).decode():
            keys.append(sample["__key__"])
            for name in got:
                got[name].append(sample[f"{name}.npy"])
    stack = np.stack if per_member == 1 else np.concatenate  # blocks of `per_member` samples otherwise
    for name, var in collection.parts["demo"].data_vars.items():
        values = stack(got[name])
        assert values.dtype == var.dtype
        np.testing.assert_array_equal(values, var.values, err_msg=name)
    assert len(keys) == (300 if per_member == 1 else 75) and keys == sorted(keys)
    streamed = [s["data"].numpy() for s in trainset.open_dataset(path)]
    np.testing.assert_array_equal(np.stack(streamed), stack(got["data"]))  # the same arrays as trainset's reader


def test_files_of_the_previous_hdf5_and_zarr_versions_still_read(stored, tmp_path):
    """HDF5 1 had no dimension scales, Zarr 1 no manifest in the root attributes: both still read."""
    import shutil

    h5 = tmp_path / "old.h5"
    shutil.copy(stored["hdf5"], h5)
    with h5py.File(h5, "a") as f:
        f.attrs["trainset_format_version"] = 1
    store = tmp_path / "old.zarr"
    shutil.copytree(stored["zarr"], store)
    manifest = json.loads((store / "manifest.json").read_text())
    (store / "manifest.json").write_text(json.dumps({**manifest, "format_version": 1}))
    root = json.loads((store / "zarr.json").read_text())
    root["attributes"].pop("trainset")
    (store / "zarr.json").write_text(json.dumps(root))
    for path in (h5, store):
        assert len(trainset.open_dataset(path, split="val")) == 30
        assert get_format("hdf5" if path == h5 else "zarr").check(path) == []
    root["attributes"]["trainset"] = {**manifest, "seed": 99}  # version 2 with a differing copy: refused
    (store / "zarr.json").write_text(json.dumps(root))
    (store / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(trainset.TrainsetError, match="root group attribute 'trainset' differ"):
        trainset.open_dataset(store)
