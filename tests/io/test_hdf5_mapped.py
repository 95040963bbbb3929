"""Shuffled batches gathered from a memory map of the file (:mod:`trainset.io.hdf5.mapped`).

Every batch must be bit-identical to what h5py reads, for files written by trainset's HDF5 and
NetCDF writers and by plain h5py and netCDF4 in odd layouts (contiguous, compressed, a chunk that
is not a multiple of the batch, unallocated chunks, a userblock, big-endian and integer dtypes,
several parts). Where the stored bytes are not the rows' bytes, h5py reads them (the fallback).
A file changed in place under an open reader raises TrainsetError instead of crashing the
process; pickled and forked readers map the file anew.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle

import fsspec
import h5py
import netCDF4
import numpy as np
import pytest
import xarray as xr

import trainset
from trainset.collection import Collection
from trainset.errors import TrainsetError
from trainset.io.base import get_format
from trainset.loaders.mapped import make_loader

N, CHUNK = 700, 64
RNG = np.random.default_rng(11)


def rows_to_try(n: int, chunk: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    return {
        "one chunk shuffled": rng.permutation(min(chunk, n)) + (chunk if n > 2 * chunk else 0),
        "two chunks": rng.permutation(np.arange(chunk // 2, min(n, chunk + chunk // 2))),
        "out of order, all chunks": rng.permutation(n)[:150],
        "repeats": np.array([5, 5, 3, n - 1, 5, 0, n - 1]),
        "reversed tail": np.arange(n - 1, max(-1, n - 40), -1),
        "one row": np.array([n // 2]),
        "none": np.array([], dtype=np.int64),
    }


def assert_bits(got: np.ndarray, want: np.ndarray, where: str) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape, where
    assert got.tobytes() == want.tobytes(), where  # NaN payloads included


def stored(path, key: str) -> np.ndarray:
    """The whole dataset as h5py reads it."""
    with h5py.File(path, "r") as f:
        return f[key][()]


def check_take(reader, path, keys: dict[tuple[int, str], str]) -> None:
    """``reader.take`` equals h5py's rows for every part/variable in ``keys`` and every row set."""
    for part in sorted({p for p, _ in keys}):
        names = [v for p, v in keys if p == part]
        whole = {v: stored(path, keys[part, v]) for v in names}
        n = len(next(iter(whole.values())))
        for label, rows in rows_to_try(n, CHUNK).items():
            got = reader.take(part, rows, names)
            for v in names:
                assert_bits(got[v], whole[v][rows], f"{path} part {part} {v}: {label}")
                assert_bits(reader.take(part, rows, [v])[v], whole[v][rows], f"{path} part {part} {v} alone: {label}")


def collection(n: int = N, parts: tuple[str, ...] = ("all",)) -> Collection:
    data = {}
    for number, name in enumerate(parts):
        x = RNG.normal(size=(n - 37 * number, 5, 3)).astype(np.float32)
        x[3, 0, 0] = np.float32(np.nan)
        data[name] = xr.Dataset({
            "x": (("sample", "t", "f"), x),
            "y": (("sample",), RNG.integers(-9, 9, size=len(x)).astype(np.int64)),
            "u": (("sample", "k"), RNG.integers(0, 255, size=(len(x), 2)).astype(np.uint8)),
            "d": (("sample",), RNG.normal(size=len(x))),
            "s": (("sample", "k"), RNG.integers(-300, 300, size=(len(x), 2)).astype(np.int16))})
    return Collection(data, attrs={"task": "t"})


@pytest.mark.parametrize("fmt,parts", [("hdf5", ("all",)), ("hdf5", ("nk", "var")),
                                       ("netcdf", ("all",)), ("netcdf", ("nk", "var"))])
def test_trainset_files_are_mapped_and_read_exactly(tmp_path, fmt, parts):
    adapter = get_format(fmt)
    path = adapter.path_for(tmp_path, "d")
    adapter.write(collection(parts=parts), path, None, chunk=CHUNK)
    reader = adapter.reader(path)
    prefix = "" if len(parts) == 1 else ("/parts/{}/" if fmt == "hdf5" else "/{}/")
    keys = {(p, v): prefix.format(name) + v for p, name in enumerate(parts) for v in "xyuds"}
    check_take(reader, path, keys)
    assert reader._mapping.file.mapped == set(keys)


@pytest.mark.parametrize("fmt,options", [("hdf5", {"compression": "gzip"}), ("hdf5", {"compression": "lzf"}),
                                         ("netcdf", {"compression": 4})])
def test_compressed_files_are_read_through_h5py(tmp_path, fmt, options):
    adapter = get_format(fmt)
    path = adapter.path_for(tmp_path, "d")
    adapter.write(collection(), path, None, chunk=CHUNK, **options)
    reader = adapter.reader(path)
    check_take(reader, path, {(0, v): v for v in "xyuds"})
    assert reader._mapping.file.mapped == set()  # the file maps, its filtered chunks do not


def test_presplit_layout_takes_the_general_path(tmp_path):
    adapter = get_format("hdf5")
    path = adapter.path_for(tmp_path, "d")
    data = collection()
    order = np.random.default_rng(2).permutation(N)
    splits = {"train": np.sort(order[:500]), "val": np.sort(order[500:600]), "test": np.sort(order[600:])}
    adapter.write(data, path, splits, chunk=CHUNK, layout="presplit")
    reader = adapter.reader(path)
    for label, rows in rows_to_try(N, CHUNK).items():
        got = reader.take(0, rows, ["x", "y"])
        for v in ("x", "y"):
            assert_bits(got[v], data.parts["all"][v].values[rows], label)
    assert reader._mapping.file is None


def plain_h5py_file(path) -> None:
    """The odd layouts plain h5py writes: contiguous, chunk 100 (no multiple of 64), userblock,
    big-endian, unallocated chunks."""
    with h5py.File(path, "w", userblock_size=512) as f:
        f.create_dataset("data", data=RNG.normal(size=(N, 6)).astype(">f4"))  # contiguous, big-endian
        f.create_dataset("labels", data=RNG.integers(0, 9, N).astype(np.int16), chunks=(100,))
        f.create_dataset("wide", data=RNG.normal(size=(N, 3, 2)), chunks=(CHUNK, 3, 2))
        f.create_dataset("tiny", data=RNG.normal(size=(N, 2)).astype(np.float32), chunks=(5, 2))


def test_plain_h5py_layouts_are_mapped_and_read_exactly(tmp_path):
    path = tmp_path / "plain.h5"
    plain_h5py_file(path)
    reader = get_format("hdf5").reader(path)
    keys = {(0, v): v for v in ("data", "labels", "wide", "tiny")}
    check_take(reader, path, keys)
    assert reader._mapping.file.mapped == set(keys)


@pytest.mark.parametrize("case", ["unallocated chunks", "chunk splits samples", "gzip"])
def test_unmappable_h5py_datasets_fall_back(tmp_path, case):
    path = tmp_path / "odd.h5"
    with h5py.File(path, "w") as f:
        if case == "unallocated chunks":  # rows 100.. never written: h5py returns the fill value
            f.create_dataset("data", shape=(N, 2), dtype=np.float32, chunks=(CHUNK, 2), fillvalue=-1)[:100] = 3
        elif case == "chunk splits samples":
            f.create_dataset("data", data=RNG.normal(size=(N, 4)).astype(np.float32), chunks=(CHUNK, 2))
        else:
            f.create_dataset("data", data=RNG.normal(size=(N, 4)), chunks=(CHUNK, 4), compression="gzip")
        f.create_dataset("labels", data=np.arange(N, dtype=np.int64))
    reader = get_format("hdf5").reader(path)
    check_take(reader, path, {(0, "data"): "data", (0, "labels"): "labels"})
    assert (0, "data") not in reader._mapping.file.mapped


def test_netcdf4_contiguous_and_compressed_variables(tmp_path):
    path = tmp_path / "plain.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("sample", N)
        nc.createDimension("k", 3)
        nc.createVariable("flat", "f4", ("sample", "k"), contiguous=True)[:] = RNG.normal(size=(N, 3))
        nc.createVariable("packed", "i4", ("sample",), zlib=True, chunksizes=(CHUNK,))[:] = np.arange(N)
        nc.createVariable("odd", "f8", ("sample", "k"), chunksizes=(100, 3))[:] = RNG.normal(size=(N, 3))
    reader = get_format("netcdf").reader(path)
    check_take(reader, path, {(0, v): v for v in ("flat", "packed", "odd")})
    assert reader._mapping.file.mapped == {(0, "flat"), (0, "odd")}


def test_read_and_blocks_are_unchanged_by_mapping(tmp_path):
    for fmt in ("hdf5", "netcdf"):
        adapter = get_format(fmt)
        path = adapter.path_for(tmp_path, "d")
        data = collection()
        adapter.write(data, path, None, chunk=CHUNK)
        reader = adapter.reader(path)
        reader.take(0, np.arange(10))  # mapped first
        rows = np.sort(np.random.default_rng(0).choice(N, 90, replace=False))
        got = reader.read(0, rows)
        for v in "xyuds":
            assert_bits(got[v], data.parts["all"][v].values[rows], f"{fmt} read {v}")
        blocks = np.concatenate([b.arrays["x"] for b in reader.iter_blocks(None, ["x"], rows=100)])
        assert_bits(blocks, data.parts["all"]["x"].values, f"{fmt} blocks")


def test_remote_reader_is_never_mapped(tmp_path):
    adapter = get_format("hdf5")
    path = adapter.path_for(tmp_path, "d")
    data = collection()
    adapter.write(data, path, None, chunk=CHUNK)
    fs = fsspec.filesystem("memory")
    fs.pipe("/h1/d.h5", path.read_bytes())
    reader = adapter.remote_reader("memory://h1/d.h5", fs, "/h1/d.h5")
    rows = np.random.default_rng(1).permutation(CHUNK) + CHUNK
    assert_bits(reader.take(0, rows, ["x"])["x"], data.parts["all"]["x"].values[rows], "remote")
    assert reader._mapping.file is None and not reader._mapping.tried
    fs.rm("/h1/d.h5")


def _truncate_then_take(path: str, fmt: str, how: str) -> None:
    """In a child process: map, change the file in place, take again; exit 3 on TrainsetError."""
    reader = get_format(fmt).reader(path)
    rows = np.arange(CHUNK) + N - CHUNK
    reader.take(0, rows)
    if how == "truncate":
        os.truncate(path, 4096)
    elif how == "rewrite":  # same size, rewritten in place, modification time put back: ctime tells
        stat = os.stat(path)
        with open(path, "r+b") as handle:
            head = handle.read(4096)
            handle.seek(0)
            handle.write(head)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    else:  # same size, rewritten in place (its modification time moves)
        stat = os.stat(path)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    try:
        reader.take(0, rows)
    except TrainsetError as error:
        os._exit(3 if "changed on disk" in str(error) and str(path) in str(error) else 4)
    os._exit(0)


@pytest.mark.parametrize("fmt", ["hdf5", "netcdf"])
@pytest.mark.parametrize("how", ["truncate", "touch", "rewrite"])
def test_file_changed_in_place_raises_instead_of_crashing(tmp_path, fmt, how):
    adapter = get_format(fmt)
    path = adapter.path_for(tmp_path, "d")
    adapter.write(collection(), path, None, chunk=CHUNK)
    # a child process, so that a regression (SIGBUS) fails this test instead of killing pytest
    child = multiprocessing.get_context("fork").Process(target=_truncate_then_take, args=(str(path), fmt, how))
    child.start()
    child.join(60)
    assert child.exitcode == 3, f"exit code {child.exitcode} (-7: SIGBUS, 0: no error, 4: unclear message)"


def test_file_replaced_by_rename_keeps_serving_the_open_file(tmp_path):
    adapter = get_format("hdf5")
    path = adapter.path_for(tmp_path, "d")
    old = collection()
    adapter.write(old, path, None, chunk=CHUNK)
    reader = adapter.reader(path)
    rows = np.random.default_rng(3).permutation(N)[:200]
    first = reader.take(0, rows, ["x"])["x"]
    adapter.write(collection(), path, None, chunk=CHUNK)  # trainset's writers replace by rename
    assert_bits(reader.take(0, rows, ["x"])["x"], first, "after replacement")
    assert_bits(first, old.parts["all"]["x"].values[rows], "old data")


@pytest.mark.parametrize("fmt", ["hdf5", "netcdf"])
def test_pickled_and_forked_readers_map_anew(tmp_path, fmt):
    adapter = get_format(fmt)
    path = adapter.path_for(tmp_path, "d")
    adapter.write(collection(), path, None, chunk=CHUNK)
    dataset = trainset.open_dataset(path)
    rows = np.random.default_rng(4).permutation(N)[:100]
    want = dataset.reader.take(0, rows)  # the parent maps the file before pickling or forking
    copy = pickle.loads(pickle.dumps(dataset.reader))
    assert copy._mapping.file is None and copy._file is None
    for v, a in copy.take(0, rows).items():
        assert_bits(a, want[v], f"unpickled {v}")
    assert copy._mapping.file is not None and copy._mapping.file is not dataset.reader._mapping.file

    def batches(workers: int) -> list[dict]:
        loader = make_loader(dataset, 64, shuffle=True, seed=1, num_workers=workers)
        return [{k: v.numpy().copy() for k, v in b.items()} for b in loader]

    alone, workers = batches(0), batches(2)
    assert len(alone) == len(workers)
    for a, b in zip(alone, workers):
        assert sorted(a) == sorted(b)
        for k in a:
            assert_bits(b[k], a[k], f"worker batch {k}")
