"""One interface for every format: block iteration, parallel jobs, and the named stored copies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from trainset.collection import Collection
from trainset.datasets import write_dataset_job
from trainset.errors import TrainsetError
from trainset.io.base import FORMATS, Reader, get_copy, get_format, stored_copies

REPO = Path(__file__).resolve().parents[2]
SUFFIX = {"netcdf": ".nc", "hdf5": ".h5", "zarr": ".zarr", "webdataset": "-wds"}


def worlds() -> tuple[Collection, dict[str, np.ndarray]]:
    """Two parts of different shapes; splits that cut across both."""
    rng = np.random.default_rng(3)
    parts = {name: xr.Dataset({"theta": (("sample", "param"), rng.normal(size=(n, p)).astype(np.float32)),
                               "labels": (("sample",), np.arange(n, dtype=np.int64))})
             for name, n, p in (("a", 45, 2), ("b", 31, 5))}
    order = rng.permutation(76)
    return Collection(parts), {"train": np.sort(order[:50]), "val": np.sort(order[50:])}


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    folder = tmp_path_factory.mktemp("interface")
    collection, splits = worlds()
    paths = {}
    for name, suffix in SUFFIX.items():
        paths[name] = folder / f"TS_w{suffix}"
        options = {"samples_per_shard": 20, "samples_per_member": 6} if name == "webdataset" else {}
        get_format(name).write(collection, paths[name], splits, **options)
    return paths, collection, splits


def blocks(reader: Reader, indices, variables, rows) -> list[tuple]:
    return [(b.part, b.local.tolist(), {k: v.tolist() for k, v in b.arrays.items()})
            for b in reader.iter_blocks(indices, variables, rows=rows)]


@pytest.mark.parametrize("rows", [7, [4, 9]])
def test_every_format_yields_the_same_blocks(stored, rows):
    paths, collection, splits = stored
    expected = None
    for name, path in paths.items():
        reader = get_format(name).reader(path)
        assert isinstance(reader, Reader)
        got = blocks(reader, splits["train"], ["labels", "theta"], rows)
        expected = expected or got
        assert got == expected, name
    sizes = [rows] * 2 if isinstance(rows, int) else rows
    for part, local, arrays in expected:
        assert len(local) <= sizes[part] and list(arrays) == ["labels", "theta"]
    offsets = collection.offsets
    seen = [offsets[["a", "b"][part]] + i for part, local, _ in expected for i in local]
    assert seen == splits["train"].tolist()


def test_natural_blocks_cover_the_selection_once(stored):
    paths, _, splits = stored
    for name, path in paths.items():
        reader = get_format(name).reader(path)
        got = [(b.part, i) for b in reader.iter_blocks(splits["val"], ["labels"]) for i in b.local.tolist()]
        assert [reader.offsets()[p] + i for p, i in got] == splits["val"].tolist(), name


def test_random_access_is_declared_and_streamed_readers_refuse_rows(stored):
    paths, _, _ = stored
    flags = {name: get_format(name).reader(path).random_access for name, path in paths.items()}
    assert flags == {"netcdf": True, "hdf5": True, "zarr": True, "webdataset": False}
    with pytest.raises(TrainsetError, match="iter_blocks"):
        get_format("webdataset").reader(paths["webdataset"]).read(0, np.arange(3))
    with pytest.raises(TrainsetError, match="no variable"):
        list(get_format("hdf5").reader(paths["hdf5"]).iter_blocks(None, ["nope"]))


def test_netcdf_is_not_written_in_jobs(stored, tmp_path):
    paths, collection, _ = stored
    assert not get_format("netcdf").parallel
    with pytest.raises(TrainsetError, match="not written in parallel jobs"):
        get_format("netcdf").write_job(collection, tmp_path / "job", 0, 1)
    with pytest.raises(TrainsetError, match="not written in jobs"):
        write_dataset_job(paths["netcdf"], None, "netcdf", tmp_path / "job", {}, 0, 1)


def test_stored_copies_keep_their_names_and_file_names():
    copies = stored_copies()
    assert {name: c.suffix for name, c in copies.items()} == {
        "netcdf": ".nc", "hdf5": ".h5", "hdf5_presplit": ".presplit.h5", "zarr": ".zarr", "webdataset": "-wds"}
    assert set(FORMATS) < set(copies)
    assert get_copy("hdf5_presplit").format == "hdf5" and get_copy("hdf5_presplit").options == {"layout": "presplit"}
    assert [name for name, c in copies.items() if not c.parallel] == ["netcdf"]
    with pytest.raises(TrainsetError, match="unknown dataset format"):
        get_copy("hdf6")


def test_schema_formats_are_the_stored_copies():
    """The config schema's format names cannot drift from the registry."""
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    assert sorted(schema["$defs"]["formats"]["items"]["enum"]) == sorted(stored_copies())
    assert set(schema["$defs"]["format_options"]["properties"]) <= set(FORMATS)
