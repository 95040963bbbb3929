"""What ``open_dataset`` returns, described: repr, ``features``, ``split="all"``, and no ``ds[i]`` on streams."""

from __future__ import annotations

import numpy as np
import pytest

import trainset
from tests.io.test_roundtrip import one_part, two_parts, write_all
from trainset.io.base import VariableInfo
from trainset.loaders.wds import NotIndexable

SPLITS = {"train": np.arange(0, 240), "val": np.arange(240, 270), "test": np.arange(270, 300)}


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    return write_all(one_part(), tmp_path_factory.mktemp("api"), SPLITS)


@pytest.mark.parametrize("fmt", ["netcdf", "hdf5", "zarr", "webdataset"])
def test_repr_names_format_path_split_length_and_variables(stored, fmt):
    ds = trainset.open_dataset(stored[fmt], split="val")
    kind = "WdsDataset" if fmt == "webdataset" else "MappedDataset"
    lines = repr(ds).splitlines()
    assert lines[0].startswith(f"{kind}(format={fmt}, path={stored[fmt]}, split=val, length=30")
    assert lines[1:] == ["  data    float32 (20, 3)", "  labels  float32 (5, 2)", "  klass   int64 ()"]
    assert ds.features == {"data": VariableInfo((20, 3), np.dtype("float32")),
                           "labels": VariableInfo((5, 2), np.dtype("float32")),
                           "klass": VariableInfo((), np.dtype("int64"))}
    chosen = trainset.open_dataset(stored[fmt], variables=["klass"])
    assert list(chosen.features) == ["klass"] and repr(chosen).splitlines()[1:] == ["  klass  int64 ()"]


def test_parts_of_different_shapes_are_described_per_part(tmp_path):
    path = write_all(two_parts(), tmp_path, None)["zarr"]
    ds = trainset.open_dataset(path)
    assert ds.features["theta"].shape == (None,) and ds.features["irfs"].shape == (None, 41, 3)
    text = repr(ds)
    assert "parts: nk (40), var (25)" in text and "theta  float32 per part: nk (4,), var (6,)" in text


@pytest.mark.parametrize("fmt", ["hdf5", "webdataset"])
def test_split_all_gives_every_split(stored, fmt):
    splits = trainset.open_dataset(stored[fmt], split="all")
    assert {name: len(ds) for name, ds in splits.items()} == {"train": 240, "val": 30, "test": 30}
    assert all(ds.split == name for name, ds in splits.items())


def test_webdataset_refuses_indexing_and_says_what_to_do(stored):
    ds = trainset.open_dataset(stored["webdataset"])
    with pytest.raises(NotIndexable, match="iterate it.*map-style copy"):
        ds[0]
    with pytest.raises(TypeError):  # a TypeError as well, like any object without indexing
        ds[0]
    assert next(iter(ds))["index"].item() == 0
