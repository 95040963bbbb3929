"""Zarr adapter: round trips, determinism, block reads, fork safety and structural checks."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
import zarr
from torch.utils.data import DataLoader, Dataset

from trainset.collection import Collection
from trainset.errors import TrainsetError
from trainset.io.base import FORMATS
from trainset.io.zarr_ import ZarrFormat, ZarrReader
from trainset.provenance import json_sha256

FMT = ZarrFormat()


def classification(n: int = 120, t: int = 8, d: int = 3) -> Collection:
    rng = np.random.default_rng(0)
    data = xr.Dataset(
        {"data": (("sample", "time", "feature"), rng.normal(size=(n, t, d)).astype(np.float32)),
         "labels": (("sample",), rng.integers(0, 5, size=n).astype(np.int64), {"units": "class"})},
        coords={"origin": ("sample", [f"src{i % 4}/é{i}" for i in range(n)]), "site": ("sample", np.arange(n) * 0.5),
                "day": ("sample", np.datetime64("2020-01-01", "ns") + np.arange(n).astype("timedelta64[D]"))},
        attrs={"source": "synthetic"},
    )  # fmt: skip
    return Collection.single(data, attrs={"task": "seq2static_classification", "config": {"a": 1}})


def regression(n: int = 90, t: int = 8, k: int = 2) -> Collection:
    rng = np.random.default_rng(1)
    data = xr.Dataset(
        {"data": (("sample", "time", "feature"), rng.normal(size=(n, t, 3)).astype(np.float32)),
         "labels": (("sample", "time", "target"), rng.normal(size=(n, t, k)).astype(np.float32) * 0.1)},
        coords={"origin": ("sample", np.array([f"o{i}" for i in range(n)], dtype=object))},
    )  # fmt: skip
    return Collection.single(data, name="reg", attrs={"task": "seq2seq_regression", "config": {"a": 1}})


def worlds(sizes: tuple[int, int] = (300, 200)) -> Collection:
    rng = np.random.default_rng(2)
    parts = {}
    for name, n, params, shocks in (("nk", sizes[0], 4, 3), ("var", sizes[1], 6, 2)):
        parts[name] = xr.Dataset(
            {"theta": (("sample", "param"), rng.uniform(size=(n, params))),
             "irfs": (("sample", "shock", "horizon", "variable"), rng.normal(size=(n, shocks, 41, 3)).astype(np.float32))},
            coords={"variable": ["output", "inflation", "rate"], "shock": [f"{name}_s{i}" for i in range(shocks)],
                    "horizon": np.arange(41), "H": 40},
            attrs={"param_names": [f"{name}_p{i}" for i in range(params)],
                   "param_bounds": [[0.0, 1.0]] * params, "seeds": [7, 8]},
        )  # fmt: skip
    return Collection(parts, attrs={"task": "irf", "config": {"H": 40}, "seed": 11})


def tree_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_same(expected: Collection, got: Collection) -> None:
    assert list(got.parts) == list(expected.parts)
    assert got.attrs == expected.attrs
    for name, part in expected.parts.items():
        xr.testing.assert_identical(got.parts[name], part)
        for var in list(part.data_vars) + list(part.coords):
            assert got.parts[name][var].dtype == part[var].dtype, (name, var)


@pytest.mark.parametrize("make", [classification, regression, worlds])
def test_round_trip_preserves_everything(tmp_path, make):
    collection = make()
    splits = {"train": np.arange(0, len(collection), 3), "val": np.arange(1, len(collection), 3)}
    path = FMT.path_for(tmp_path, "x")
    FMT.write(collection, path, splits=splits)
    got, got_splits = FMT.load(path)
    assert_same(collection, got)
    assert list(got_splits) == ["train", "val"]
    for name in splits:
        np.testing.assert_array_equal(got_splits[name], splits[name])
    assert FMT.check(path) == []


def test_regression_targets_stay_float(tmp_path):
    collection = regression()
    FMT.write(collection, tmp_path / "r.zarr")
    got, splits = FMT.load(tmp_path / "r.zarr")
    assert splits is None and got.parts["reg"]["labels"].dtype == np.float32
    np.testing.assert_array_equal(got.parts["reg"]["labels"].values, collection.parts["reg"]["labels"].values)


def test_layout_and_manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    collection = worlds()
    splits = {"train": np.r_[0:250, 300:450], "test": np.r_[250:300, 450:500]}
    path = tmp_path / "TS_macro.zarr"
    FMT.write(collection, path, splits=splits, chunk=64)
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["creation_date"] == "2023-11-14" and manifest["format_version"] == 2
    assert manifest["config_hash"] == json_sha256({"H": 40}) and manifest["seed"] == 11
    assert [(w["name"], w["n_samples"], w["offset"]) for w in manifest["worlds"]] == [("nk", 300, 0), ("var", 200, 300)]
    nk = manifest["worlds"][0]
    assert nk["param_names"] == [f"nk_p{i}" for i in range(4)] and nk["param_bounds"] == [[0.0, 1.0]] * 4
    assert nk["shock_names"] == ["nk_s0", "nk_s1", "nk_s2"] and nk["variable_names"] == ["output", "inflation", "rate"]
    assert nk["seeds"] == [7, 8]
    assert zarr.open_array(str(path / "nk" / "irfs"), mode="r").chunks == (64, 3, 41, 3)
    assert len(list((path / "nk" / "theta" / "c").iterdir())) == 5  # ceil(300 / 64)
    local = json.loads((path / "var" / "splits.json").read_text())
    assert local["splits"] == {"train": list(range(150)), "test": list(range(150, 200))}
    root = json.loads((path / "zarr.json").read_text())["attributes"]
    assert root == {**collection.attrs, "trainset": manifest}  # the manifest, also for zarr/xarray users
    assert FMT.reader(path).attrs == collection.attrs
    reader = FMT.reader(path)
    assert reader.block_size == 64
    np.testing.assert_array_equal(reader.splits["test"], splits["test"])


def test_writes_are_byte_identical(tmp_path):
    FMT.write(worlds(), tmp_path / "a.zarr", splits={"train": np.arange(400), "val": np.arange(400, 500)})
    FMT.write(worlds(), tmp_path / "b.zarr", splits={"train": np.arange(400), "val": np.arange(400, 500)})
    first, second = tree_hashes(tmp_path / "a.zarr"), tree_hashes(tmp_path / "b.zarr")
    assert first == second and len(first) > 20
    assert not list(tmp_path.glob(".*.tmp"))


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "x.zarr"
    FMT.write(classification(), path)
    before = tree_hashes(path)
    bad = worlds()
    bad.parts["var"].attrs["fn"] = object()
    with pytest.raises(TrainsetError, match="JSON"):
        FMT.write(bad, path)
    bad = worlds()
    bad.parts["var"] = bad.parts["var"].rename({"theta": "coords"})
    with pytest.raises(TrainsetError, match="coords"):
        FMT.write(bad, path)
    with pytest.raises(TrainsetError, match="unknown options"):
        FMT.write(worlds(), path, level=3)
    with pytest.raises(TrainsetError, match="compression 'gzip' unknown"):
        FMT.write(worlds(), path, compression="gzip")
    assert tree_hashes(path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["x.zarr"]


@pytest.mark.parametrize("compression", ["lz4", "zstd"])
def test_compressed_stores_round_trip(tmp_path, compression):
    collection = worlds()
    FMT.write(collection, tmp_path / "c.zarr", compression=compression)
    loaded, _ = FMT.load(tmp_path / "c.zarr")
    for name, part in collection.parts.items():
        xr.testing.assert_identical(loaded.parts[name], part)
    assert FMT.check(tmp_path / "c.zarr") == []


def test_reader_reads_each_chunk_once(tmp_path, monkeypatch):
    collection = worlds()
    FMT.write(collection, tmp_path / "w.zarr", chunk=32)
    reader = FMT.reader(tmp_path / "w.zarr")
    assert reader._arrays == {} and [p.size for p in reader.parts] == [300, 200]
    calls = []
    original = zarr.Array.__getitem__

    def counting(self, selection):
        calls.append((self.path, selection.start, selection.stop))
        return original(self, selection)

    monkeypatch.setattr(zarr.Array, "__getitem__", counting)
    local = np.array([0, 3, 31, 32, 100, 101, 127, 199])  # chunks 0, 1, 3, 6
    got = reader.read(1, local)
    expected = collection.parts["var"]
    np.testing.assert_array_equal(got["theta"], expected["theta"].values[local])
    np.testing.assert_array_equal(got["irfs"], expected["irfs"].values[local])
    assert got["irfs"].dtype == np.float32 and len(calls) == 2 * 4 and len(set(calls)) == 8
    calls.clear()
    only = reader.read(0, np.arange(64, 96), variables=["theta"])  # one whole chunk
    assert list(only) == ["theta"] and len(calls) == 1
    np.testing.assert_array_equal(only["theta"], collection.parts["nk"]["theta"].values[64:96])


def test_read_rejects_bad_requests(tmp_path):
    FMT.write(worlds(), tmp_path / "w.zarr")
    reader = FMT.reader(tmp_path / "w.zarr")
    for part, local, variables in [(0, [3, 1], None), (0, [1, 1], None), (1, [200], None), (2, [0], None),
                                   (0, [0], ["nope"])]:
        with pytest.raises(TrainsetError):
            reader.read(part, np.array(local), variables)


def test_reader_pickles_and_works_in_forked_workers(tmp_path):
    collection = classification(n=300)
    FMT.write(collection, tmp_path / "c.zarr", chunk=50)
    reader = FMT.reader(tmp_path / "c.zarr")
    reader.read(0, np.arange(3))  # opened in the parent
    clone = pickle.loads(pickle.dumps(reader))
    assert clone._arrays == {}

    class Blocks(Dataset):
        def __len__(self) -> int:
            return 6

        def __getitem__(self, block: int) -> dict:
            return {k: torch.from_numpy(v) for k, v in reader.read(0, np.arange(block * 50, block * 50 + 50)).items()}

    loader = DataLoader(Blocks(), batch_size=None, num_workers=2, multiprocessing_context="fork")
    data = torch.cat([batch["data"] for batch in loader]).numpy()
    np.testing.assert_array_equal(data, collection.parts["all"]["data"].values)


def test_guess_can_open_and_registry(tmp_path):
    assert FORMATS["zarr"].name == "zarr" and isinstance(FORMATS["zarr"], ZarrFormat)
    assert FMT.guess_can_open(tmp_path / "TS_a.zarr") and FMT.guess_can_open(str(tmp_path / "TS_a.zarr") + "/")
    assert not FMT.guess_can_open(tmp_path / "TS_a.nc") and not FMT.guess_can_open(tmp_path / "x-wds")


@pytest.fixture
def stored(tmp_path) -> Path:
    path = tmp_path / "s.zarr"
    FMT.write(worlds(sizes=(100, 60)), path, splits={"train": np.arange(120), "val": np.arange(120, 160)}, chunk=32)
    assert FMT.check(path) == []
    return path


def set_root_manifest(path: Path, manifest: dict) -> None:
    """Overwrite the manifest copy in the root group's attributes."""
    meta = json.loads((path / "zarr.json").read_text())
    meta["attributes"]["trainset"] = manifest
    (path / "zarr.json").write_text(json.dumps(meta))


def one_problem(path: Path, *words: str) -> str:
    problems = FMT.check(path)
    assert len(problems) == 1, problems
    assert all(w in problems[0] for w in (*words, "Fix")), problems[0]
    return problems[0]


def test_check_missing_manifest(stored):
    (stored / "manifest.json").unlink()
    one_problem(stored, "manifest.json", "missing")
    with pytest.raises(TrainsetError, match="manifest"):
        FMT.load(stored)


def test_check_missing_world_and_variable(stored):
    shutil.rmtree(stored / "var" / "irfs")
    one_problem(stored, "var/irfs", "missing")
    shutil.rmtree(stored / "nk")
    assert len(FMT.check(stored)) == 2 and "world 'nk'" in FMT.check(stored)[0]
    with pytest.raises(TrainsetError, match="nk"):
        FMT.reader(stored).read(0, np.arange(2))


def test_check_truncated_and_missing_chunks(stored):
    chunk = stored / "nk" / "irfs" / "c" / "1" / "0" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:40])
    one_problem(stored, str(chunk), "unreadable")
    reader = FMT.reader(stored)
    np.testing.assert_array_equal(reader.read(0, np.arange(5))["theta"], worlds((100, 60)).parts["nk"]["theta"].values[:5])
    with pytest.raises(TrainsetError, match=str(chunk)):
        reader.read(0, np.array([1, 40]))
    missing = stored / "var" / "theta" / "c" / "0" / "0"
    missing.unlink()
    assert any(str(missing) in p and "missing" in p for p in FMT.check(stored))
    with pytest.raises(TrainsetError, match="missing"):
        reader.read(1, np.array([0]))


def test_check_inconsistent_sample_counts(stored):
    shutil.rmtree(stored / "var" / "theta")
    group = zarr.open_group(str(stored / "var"), mode="r+")
    array = group.create_array("theta", shape=(59, 6), chunks=(32, 6), dtype="float64", dimension_names=["sample", "param"],
                               attributes={"_trainset": {"dtype": "<f8"}})
    array[:] = 1.0
    one_problem(stored, "inconsistent sample counts", "'theta': 59", "'irfs': 60")


def test_check_wrong_dtype_and_bad_splits(stored):
    manifest = json.loads((stored / "manifest.json").read_text())
    manifest["worlds"][0]["variables"][0]["dtype"] = "<i8"
    (stored / "manifest.json").write_text(json.dumps(manifest))
    one_problem(stored, "manifest.json", "root group attribute 'trainset' differ")
    set_root_manifest(stored, manifest)  # both copies edited alike: the arrays disagree
    one_problem(stored, "nk/theta", "dtype")
    manifest["worlds"][0]["variables"][0]["dtype"] = "<f8"
    (stored / "manifest.json").write_text(json.dumps(manifest))
    set_root_manifest(stored, manifest)
    split_file = stored / "var" / "splits.json"
    content = json.loads(split_file.read_text())
    content["splits"]["val"].append(60)
    split_file.write_text(json.dumps(content))
    one_problem(stored, str(split_file), "'val'", "outside 0..59")
    with pytest.raises(TrainsetError, match="outside"):
        FMT.reader(stored).splits


def test_check_never_raises(tmp_path, stored):
    (tmp_path / "file.zarr").write_text("not a folder")
    assert "not a folder" in FMT.check(tmp_path / "file.zarr")[0]
    assert FMT.check(tmp_path / "absent.zarr")
    (stored / "manifest.json").write_text("{not json")
    one_problem(stored, "manifest")
    (stored / "manifest.json").write_text(json.dumps({"format": "trainset-zarr", "chunk": 32, "worlds": [{"x": 1}]}))
    assert len(FMT.check(stored)) == 1
    with pytest.raises(TrainsetError):
        ZarrReader(tmp_path / "absent.zarr").parts
