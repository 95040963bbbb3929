"""HDF5 adapter: round trips of the three fixture collections in both layouts, block reads,
byte-identical rewrites, the six seed-001 task types, token inputs and one bad file per problem."""

from __future__ import annotations

import multiprocessing
import pickle
import time

import h5py
import numpy as np
import pytest
import xarray as xr

import trainset.io.hdf5 as hdf5
import trainset.io.hdf5.read as hdf5_read
from trainset.collection import Collection
from trainset.errors import TrainsetError
from trainset.io.base import FORMATS
from trainset.splits import make_splits
from trainset.tasks import check_task

FMT = hdf5.HDF5Format()
RNG = np.random.default_rng(7)


def collection_a(n: int = 120, t: int = 16, d: int = 3) -> Collection:
    ds = xr.Dataset(
        {"data": (("sample", "time", "feature"), RNG.normal(size=(n, t, d)).astype(np.float32), {"units": "mV"}),
         "labels": (("sample",), RNG.integers(0, 3, n).astype(np.int64))},
        coords={"origin": ("sample", [f"fluview/{i % 7}/séason" for i in range(n)]),
                "site": ("sample", np.arange(n, dtype=np.int32) * 3)},
        attrs={"part_note": "one part"})
    return Collection.single(ds, attrs={"task": "seq2static_classification", "config": {"a": 1}})


def collection_b(n: int = 90, t: int = 16, k: int = 2) -> Collection:
    ds = xr.Dataset(
        {"data": (("sample", "time", "feature"), RNG.normal(size=(n, t, 4)).astype(np.float32)),
         "labels": (("sample", "horizon", "target"), RNG.normal(size=(n, 5, k)).astype(np.float32) * 1e3)},
        coords={"origin": ("sample", np.array([f"o{i}" for i in range(n)], dtype=object)),
                "date": ("sample", np.datetime64("2020-01-01") + np.arange(n).astype("timedelta64[D]")),
                "target": ("target", ["mean", "std"])})
    return Collection.single(ds, attrs={"task": "seq2seq_regression", "config": {"a": 1}})


def collection_c() -> Collection:
    parts = {}
    for name, n, p, s in (("nk", 70, 4, 3), ("var", 50, 6, 2)):
        parts[name] = xr.Dataset(
            {"theta": (("sample", f"param_{name}"), RNG.uniform(size=(n, p)).astype(np.float32)),
             "irfs": (("sample", f"shock_{name}", "horizon", "variable"),
                      RNG.normal(size=(n, s, 41, 3)).astype(np.float32))},
            coords={"variable": ["output", "inflation", "rate"],
                    "seed": ("sample", np.arange(n, dtype=np.int64) + 1000)},
            attrs={"world": name, "param_names": [f"p{i}" for i in range(p)]})
    return Collection(parts, {"task": "irf", "config": {"a": 1}})


FIXTURES = {"a": collection_a, "b": collection_b, "c": collection_c}


def splits_for(collection: Collection, seed: int = 3) -> dict[str, np.ndarray]:
    return make_splits(len(collection), {"method": "random"}, seed)


def assert_same(loaded: Collection, original: Collection) -> None:
    assert list(loaded.parts) == list(original.parts)
    for name, part in original.parts.items():
        xr.testing.assert_identical(loaded.parts[name], part)
        for var in part.data_vars:
            assert loaded.parts[name][var].dtype == part[var].dtype
    assert loaded.attrs == original.attrs


@pytest.mark.parametrize("layout", ["single", "presplit"])
@pytest.mark.parametrize("which", ["a", "b", "c"])
def test_round_trip_load(tmp_path, which, layout):
    collection = FIXTURES[which]()
    splits = splits_for(collection)
    path = tmp_path / f"{which}.h5"
    if which == "c" and layout == "presplit":
        with pytest.raises(TrainsetError, match="one part"):
            FMT.write(collection, path, splits=splits, layout=layout)
        assert not path.exists()
        return
    FMT.write(collection, path, splits=splits, layout=layout, chunk=32)
    assert FMT.check(path) == []
    loaded, stored = FMT.load(path)
    assert_same(loaded, collection)
    assert list(stored) == list(splits)
    for name in splits:
        np.testing.assert_array_equal(stored[name], splits[name])
    assert loaded.parts[next(iter(loaded.parts))]["data" if which != "c" else "theta"].dtype == np.float32


@pytest.mark.parametrize("which, layout", [("a", "single"), ("a", "presplit"), ("b", "single"), ("b", "presplit"),
                                           ("c", "single")])
def test_reader_over_shuffled_blocks(tmp_path, which, layout):
    collection = FIXTURES[which]()
    path = tmp_path / f"{which}.h5"
    FMT.write(collection, path, splits=splits_for(collection), layout=layout, chunk=16)
    reader = FMT.reader(path)
    assert reader.block_size == 16 and reader.attrs == collection.attrs
    assert [(p.name, p.size) for p in reader.parts] == list(collection.sizes.items())
    for number, (name, part) in enumerate(collection.parts.items()):
        info = reader.parts[number]
        assert {v: (i.shape, i.dtype) for v, i in info.variables.items()} == {
            v: (part[v].shape[1:], part[v].dtype) for v in part.data_vars}
        n = part.sizes["sample"]
        for block in RNG.permutation(-(-n // 16)):
            local = np.arange(block * 16, min(n, block * 16 + 16))
            got = reader.read(number, local)
            for var in part.data_vars:
                np.testing.assert_array_equal(got[var], part[var].values[local])
        local = np.sort(RNG.choice(n, size=n // 3, replace=False))
        first = str(next(iter(part.data_vars)))
        got = reader.read(number, local, [first])
        assert list(got) == [first]
        np.testing.assert_array_equal(got[first], part[first].values[local])
        assert reader.read(number, np.array([], dtype=np.int64))[first].shape == (0, *part[first].shape[1:])


def test_sparse_rows_use_one_selection(tmp_path, monkeypatch):
    collection = collection_a(n=300)
    path = tmp_path / "a.h5"
    FMT.write(collection, path, chunk=64)
    monkeypatch.setattr(hdf5_read, "_ROW_COST_BYTES", 0)  # force the selection path for sparse rows
    local = np.array([0, 1, 2, 10, 70, 130, 131, 199, 200, 201, 202, 299])
    got = FMT.reader(path).read(0, local)
    np.testing.assert_array_equal(got["data"], collection.parts["all"]["data"].values[local])


def test_read_rejects_bad_requests(tmp_path):
    path = tmp_path / "a.h5"
    FMT.write(collection_a(), path)
    reader = FMT.reader(path)
    with pytest.raises(TrainsetError, match="sorted"):
        reader.read(0, np.array([3, 1]))
    with pytest.raises(TrainsetError, match="no variable"):
        reader.read(0, np.array([1]), ["nope"])
    with pytest.raises(TrainsetError, match="part number"):
        reader.read(1, np.array([1]))


def _child_read(reader, queue):
    queue.put(reader.read(0, np.arange(5, 9))["labels"].tolist())


def test_reader_pickles_and_reopens_after_fork(tmp_path):
    collection = collection_a()
    path = tmp_path / "a.h5"
    FMT.write(collection, path)
    reader = FMT.reader(path)
    assert reader._file is None  # lazy: nothing open before the first read
    reader.read(0, np.arange(3))
    clone = pickle.loads(pickle.dumps(reader))
    np.testing.assert_array_equal(clone.read(0, np.arange(2))["data"], collection.parts["all"]["data"].values[:2])
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_read, args=(reader, queue))
    child.start()
    assert queue.get(timeout=20) == collection.parts["all"]["labels"].values[5:9].tolist()
    child.join(timeout=20)
    assert reader.read(0, np.arange(3))["labels"].tolist() == collection.parts["all"]["labels"].values[:3].tolist()
    reader.close()


def test_on_disk_layouts(tmp_path):
    collection = collection_a()
    splits = splits_for(collection)
    single, presplit = tmp_path / "single.h5", tmp_path / "presplit.h5"
    FMT.write(collection, single, splits=splits, chunk=32, compression="gzip")
    FMT.write(collection, presplit, splits=splits, layout="presplit", compression="lzf")
    part = collection.parts["all"]
    with h5py.File(single) as f:
        assert f.attrs["trainset_format_version"] == 2 and f.attrs["trainset_layout"] == "single"
        assert [d.label or d[0].name for d in f["data"].dims] == ["/sample", "/time", "/feature"]  # netCDF names
        assert f["data"].dtype == np.float32 and f["data"].chunks == (32, 16, 3) and f["data"].compression == "gzip"
        assert f["labels"].dtype == np.int64 and f["splits/train"].dtype == np.int64
        assert h5py.check_string_dtype(f["coords/origin"].dtype).encoding == "utf-8"
        assert f["coords/origin"].attrs["per_sample"]
        assert '"a":1' in f.attrs["trainset_attrs"]
    with h5py.File(presplit) as f:
        assert sorted(f) == ["test", "train", "val"]
        for name, rows in splits.items():
            np.testing.assert_array_equal(f[name]["index"][()], rows)
            np.testing.assert_array_equal(f[name]["data"][()], part["data"].values[rows])
            assert f[name]["coords/origin"].asstr()[()].tolist() == part["origin"].values[rows].tolist()
            assert f[name]["data"].compression == "lzf"
    reader = FMT.reader(presplit)  # no split chosen: every sample, in global order
    np.testing.assert_array_equal(reader.read(0, np.arange(len(collection)))["data"], part["data"].values)
    assert {k: v.tolist() for k, v in reader.splits.items()} == {k: v.tolist() for k, v in splits.items()}


def test_byte_identical_rewrites(tmp_path):
    for which in ("a", "c"):
        collection = FIXTURES[which]()
        for layout in ("single", "presplit") if which == "a" else ("single",):
            for compression in (None, "gzip"):
                first, second = tmp_path / "1.h5", tmp_path / "2.h5"
                FMT.write(collection, first, splits=splits_for(collection), layout=layout, compression=compression)
                if which == "a" and layout == "single" and compression is None:
                    time.sleep(1.1)  # a stored timestamp would now differ
                FMT.write(collection, second, splits=splits_for(collection), layout=layout, compression=compression)
                assert first.read_bytes() == second.read_bytes(), (which, layout, compression)


def test_write_refuses_bad_input_and_leaves_target(tmp_path):
    collection = collection_a()
    path = tmp_path / "a.h5"
    FMT.write(collection, path)
    before = path.read_bytes()
    partial = {"train": np.arange(50), "val": np.arange(50, 70)}
    with pytest.raises(TrainsetError, match="50 of 120 samples are in no split"):
        FMT.write(collection, path, splits=partial, layout="presplit")
    with pytest.raises(TrainsetError, match="needs splits"):
        FMT.write(collection, path, layout="presplit")
    with pytest.raises(TrainsetError, match="unknown option"):
        FMT.write(collection, path, chunks=3)
    with pytest.raises(TrainsetError, match="compression"):
        FMT.write(collection, path, compression="zstd")
    bad = collection.parts["all"].assign_coords(origin=("sample", np.array([1, "x"] * 60, dtype=object)))
    with pytest.raises(TrainsetError, match="not text"):
        FMT.write(Collection.single(bad), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5"]


SEQ_TASKS = {
    # task: (good labels maker, wrong labels maker, expected words in the message)
    "seq2static_classification": (lambda n, t: RNG.integers(0, 3, n),
                                  lambda n, t: RNG.normal(size=n).astype(np.float32),
                                  "dtype float32, but seq2static_classification needs int64"),
    "seq2static_regression": (lambda n, t: RNG.normal(size=(n, 2)).astype(np.float32),
                              lambda n, t: (RNG.normal(size=(n, 2)) * 10).astype(np.int64),
                              "never cast them to integers"),
    "seq2seq_classification": (lambda n, t: RNG.integers(0, 4, (n, t)), lambda n, t: RNG.integers(0, 4, n),
                               "needs labels [N, T=12] int64"),
    "seq2seq_regression": (lambda n, t: RNG.normal(size=(n, 5, 3)).astype(np.float32),
                           lambda n, t: RNG.normal(size=(n, 3)).astype(np.float32),
                           "would fit seq2static_regression or summary"),
    "reconstruction": (lambda n, t: np.zeros(n, dtype=np.int64), None, "dtype float64"),
    "summary": (lambda n, t: RNG.normal(size=(n, 3)).astype(np.float32),
                lambda n, t: RNG.normal(size=n).astype(np.float32), "needs labels [N, K] float32"),
}


def seq_collection(task: str, good: bool, n: int = 64, t: int = 12) -> Collection:
    make_good, make_bad, _ = SEQ_TASKS[task]
    data = RNG.normal(size=(n, t, 2)).astype(np.float32)
    labels = np.asarray((make_good if good or make_bad is None else make_bad)(n, t))
    if task == "reconstruction" and not good:
        data = data.astype(np.float64)  # wrong dtype of data: the task wants float32
    dims = ("sample", *(f"l{i}" for i in range(1, labels.ndim)))
    if task == "seq2seq_classification" and labels.ndim == 2:
        dims = ("sample", "time")
    ds = xr.Dataset({"data": (("sample", "time", "feature"), data), "labels": (dims, labels)})
    return Collection.single(ds, attrs={"task": task})


@pytest.mark.parametrize("layout", ["single", "presplit"])
@pytest.mark.parametrize("task", list(SEQ_TASKS))
def test_seq_tasks_round_trip_and_verdict(tmp_path, task, layout):
    for good in (True, False):
        collection = seq_collection(task, good)
        path = tmp_path / f"{task}-{good}.h5"
        FMT.write(collection, path, splits=splits_for(collection), layout=layout, chunk=16)
        assert FMT.check(path) == []
        loaded, _ = FMT.load(path)
        assert_same(loaded, collection)
        reader = FMT.reader(path)
        problems = check_task(reader.parts, reader.attrs["task"], reader=reader, num_classes=4)
        if good:
            assert problems == []
        else:
            assert len(problems) == 1 and SEQ_TASKS[task][2] in problems[0] and "Fix:" in problems[0]


@pytest.mark.parametrize("trailing", [False, True])
def test_token_layouts(tmp_path, trailing):
    n, t = 40, 10
    tokens = RNG.integers(0, 50, (n, t, 1) if trailing else (n, t))
    dims = ("sample", "time", "one")[: tokens.ndim]
    ds = xr.Dataset({"data": (dims, tokens), "labels": (("sample",), RNG.integers(0, 2, n))})
    path = tmp_path / "tokens.h5"
    FMT.write(Collection.single(ds), path, layout="single")
    reader = FMT.reader(path)
    assert check_task(reader.parts, "supervised_seq2static_classification", reader=reader, vocab_size=50) == []
    problems = check_task(reader.parts, "seq2static_classification", reader=reader, vocab_size=20)
    assert len(problems) == 1 and "outside 0..19" in problems[0]
    assert "float32" in check_task(reader.parts, "seq2static_classification")[0]  # tokens need vocab_size


# ---------------------------------------------------------------- bad files

def _edit(path, action):
    with h5py.File(path, "r+") as f:
        action(f)


def _replace(name, values):
    def action(f):
        del f[name]
        f.create_dataset(name, data=values)
    return action


BAD = {
    "truncated": (None, "not a readable HDF5"),
    "missing labels": (lambda f: f.__delitem__("labels"), "/labels: missing"),
    "float64 data": (_replace("data", np.zeros((120, 16, 3))), "/data: dtype float64, but the metadata says float32"),
    "inconsistent N": (_replace("labels", np.zeros(119, dtype=np.int64)), "inconsistent sample counts"),
    "not sample-first": (_replace("labels", np.int64(3)), "not sample-first"),
    "split out of range": (_replace("splits/train", np.array([0, 500])), "/splits/train: 1 indices outside 0..119"),
    "bad attrs": (lambda f: f.attrs.__setitem__("trainset_attrs", "{not json"), "not JSON"),
}


@pytest.mark.parametrize("problem", list(BAD))
def test_bad_file_is_listed_and_refused(tmp_path, problem):
    path = tmp_path / "bad.h5"
    FMT.write(collection_a(), path, splits=splits_for(collection_a()))
    action, words = BAD[problem]
    if action is None:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        _edit(path, action)
    problems = FMT.check(path)
    assert any(words in p and "Fix:" in p and str(path) in p for p in problems), problems
    for call in (FMT.reader, FMT.load):
        with pytest.raises(TrainsetError) as caught:
            call(path)
        assert words in str(caught.value) and "Traceback" not in str(caught.value)


def test_presplit_without_index(tmp_path):
    path = tmp_path / "bad.h5"
    collection = collection_a()
    FMT.write(collection, path, splits=splits_for(collection), layout="presplit")
    _edit(path, lambda f: f.__delitem__("val/index"))
    problems = FMT.check(path)
    assert len(problems) == 1 and "/val/index: missing" in problems[0]
    with pytest.raises(TrainsetError, match="index"):
        FMT.reader(path)


def test_not_hdf5_and_missing_file(tmp_path):
    text = tmp_path / "x.h5"
    text.write_text("hello")
    assert "not a readable HDF5" in FMT.check(text)[0]
    assert "no such file" in FMT.check(tmp_path / "nope.h5")[0]
    with pytest.raises(TrainsetError):
        FMT.load(tmp_path / "nope.h5")


def test_seed_style_files_without_metadata(tmp_path):
    data, labels = RNG.normal(size=(30, 8, 2)).astype(np.float32), RNG.integers(0, 3, 30)
    single, presplit = tmp_path / "single.h5", tmp_path / "presplit.h5"
    with h5py.File(single, "w") as f:
        f.create_dataset("data", data=data)
        f.create_dataset("labels", data=labels)
    with h5py.File(presplit, "w") as f:
        for name, rows in (("train", slice(0, 20)), ("val", slice(20, 30))):
            f.create_dataset(f"{name}/data", data=data[rows])
            f.create_dataset(f"{name}/labels", data=labels[rows])
    assert FMT.check(single) == []
    loaded, splits = FMT.load(single)
    np.testing.assert_array_equal(loaded.parts["all"]["labels"].values, labels)
    assert splits is None and loaded.parts["all"]["data"].dims == ("sample", "data_dim1", "data_dim2")
    # without 'index' (the guide's h5py code): row order is the index, train then val then test
    assert FMT.check(presplit) == []
    reader = FMT.reader(presplit)
    np.testing.assert_array_equal(reader.read(0, np.arange(30))["data"], data)
    assert {k: v.tolist() for k, v in reader.splits.items()} == {"train": list(range(20)), "val": list(range(20, 30))}
    reader.close()
    with h5py.File(presplit, "r+") as f:  # one group indexed, the other not: refused, never guessed
        f["val/index"] = np.arange(20, 30)
    assert any("have no 'index'" in p and "Fix:" in p for p in FMT.check(presplit))
    with h5py.File(presplit, "r+") as f:
        f["train/index"] = np.arange(10, 30)
        del f["val/index"]
        f["val/index"] = np.arange(10)
    np.testing.assert_array_equal(FMT.reader(presplit).read(0, np.arange(30))["data"], np.r_[data[20:], data[:20]])


def test_seed_presplit_group_order_is_train_val_test(tmp_path):
    """h5py lists groups by name (test, train, val); the sample numbers follow the guide's order."""
    data = RNG.normal(size=(12, 4, 1)).astype(np.float32)
    path = tmp_path / "pulse.h5"
    with h5py.File(path, "w") as f:
        for name, rows in (("test", slice(10, 12)), ("train", slice(0, 8)), ("val", slice(8, 10))):
            f.create_group(name).create_dataset("data", data=data[rows])
            f[name].create_dataset("labels", data=np.arange(12)[rows])
    reader = FMT.reader(path)
    assert list(reader.splits) == ["train", "val", "test"]
    assert reader.splits["test"].tolist() == [10, 11]
    np.testing.assert_array_equal(reader.read(0, np.arange(12))["labels"], np.arange(12))
    reader.close()


def test_registry_and_guess(tmp_path):
    assert FORMATS["hdf5"].name == "hdf5" and FMT.suffix == ".h5"
    plain = tmp_path / "noext"
    FMT.write(collection_a(), tmp_path / "a.h5")
    plain.write_bytes((tmp_path / "a.h5").read_bytes())
    (tmp_path / "text").write_text("x")
    assert FMT.guess_can_open(tmp_path / "whatever.h5") and FMT.guess_can_open(plain)
    assert not FMT.guess_can_open(tmp_path / "text") and not FMT.guess_can_open(tmp_path / "x.nc")
