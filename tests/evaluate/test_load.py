"""Splits in memory for the baselines (:func:`trainset.evaluate.load.load_splits`): read through the
format's reader, they must equal the rows of the whole collection the format loads, byte for byte,
in every format, for one or several parts and for a worlds subset."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from trainset.collection import Collection
from trainset.evaluate.load import load_split, load_splits
from trainset.io.base import get_format, guess_format
from trainset.open import dataset_splits

SUFFIX = {"hdf5": ".h5", "netcdf": ".nc", "zarr": ".zarr", "webdataset": "-wds"}


def part(n: int, offset: int) -> xr.Dataset:
    """Variables in a non-alphabetical order and of several dtypes, and a per-sample coordinate."""
    rng = np.random.default_rng(n)
    return xr.Dataset(
        {"values": (("sample", "feature"), rng.normal(size=(n, 3)).astype(np.float32)),
         "label": (("sample",), np.arange(offset, offset + n, dtype=np.int64)),
         "aux": (("sample", "t", "feature"), rng.normal(size=(n, 2, 3)))},
        coords={"sample": np.arange(n), "feature": ["a", "b", "c"]}, attrs={"note": "x"})


def whole_collection_rows(path, split: str, worlds) -> dict:
    """What load_split returned before it read through the reader: rows of the loaded collection."""
    collection, stored = guess_format(path).load(path)
    indices = np.sort(dataset_splits(path, stored, len(collection))[split])
    number, local = collection.locate(indices)
    names = list(collection.parts)
    if worlds is not None:
        keep = np.isin(np.asarray(names)[number], list(worlds))
        indices, number, local = indices[keep], number[keep], local[keep]
    out = {"part": [], "index": indices}
    for i, name in enumerate(names):
        if worlds is not None and name not in worlds:
            continue
        rows = local[number == i]
        for var in collection.parts[name].data_vars:
            out.setdefault(var, {})[name] = collection.parts[name][var].values[rows]
        out["part"] += [name] * int(rows.size)
    single = len(names) == 1
    return {k: (v[names[0]] if single and isinstance(v, dict) else v) for k, v in out.items()}


def assert_identical(ours, theirs, where: str = "") -> None:
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs), where
        for key in theirs:
            assert_identical(ours[key], theirs[key], f"{where}.{key}")
    elif isinstance(theirs, list):
        assert ours == theirs, where
    else:
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, where
        assert ours.tobytes() == theirs.tobytes(), where


@pytest.mark.parametrize("fmt", sorted(SUFFIX))
@pytest.mark.parametrize("parts", [1, 3])
def test_splits_read_through_the_reader_equal_the_loaded_collection(tmp_path, fmt, parts):
    collection = Collection({f"w{i}": part(9 + 4 * i, 100 * i) for i in range(parts)}, {"task": "t"})
    n = len(collection)
    order = np.random.default_rng(0).permutation(n)  # splits cut across parts and chunks
    splits = {"train": np.sort(order[:n // 2]), "val": np.sort(order[n // 2:n - 5]), "test": np.sort(order[n - 5:])}
    path = tmp_path / f"TS_d{SUFFIX[fmt]}"
    get_format(fmt).write(collection, path, splits)
    subsets = [None] + ([["w0", "w2"]] if parts > 1 else [])
    for worlds in subsets:
        read = load_splits(path, ["train", "test", "val"], worlds)
        assert list(read) == ["train", "test", "val"]
        for split in ("train", "test", "val"):
            theirs = whole_collection_rows(path, split, worlds)
            assert_identical(read[split], theirs, f"{fmt}:{split}:{worlds}")
            assert_identical(load_split(path, split, worlds), theirs, f"{fmt}:{split}:{worlds}")
