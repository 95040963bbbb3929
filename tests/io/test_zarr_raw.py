"""Zarr's raw-chunk gather (``trainset.io.zarr_.raw``): rows read straight into the batch.

Rows of 1 KB take the scatter path (one buffer per row), int64 labels the span path (a scratch
buffer). Every batch must equal the general path (sorted unique read through zarr-python, then
reorder) and the source arrays; a raw store must not fall back to zarr-python; anything the fast
path does not accept (a link, a wrong-sized or missing chunk file, a compressor, a short read)
goes through zarr-python, which reads it or raises :class:`TrainsetError`.
"""

from __future__ import annotations

import errno
import os
import pickle

import numpy as np
import pytest
import xarray as xr

from trainset.collection import Collection
from trainset.errors import TrainsetError
from trainset.io.base import Reader
from trainset.io.zarr_ import ZarrFormat, ZarrReader
from trainset.io.zarr_ import raw
from trainset.loaders.mapped import MappedDataset, make_loader

FMT = ZarrFormat()
N, CHUNK = 700, 128
rng = np.random.default_rng(5)
ROWS = {
    "one chunk shuffled": rng.permutation(CHUNK) + 2 * CHUNK,
    "part of one chunk": rng.permutation(np.arange(CHUNK + 10, CHUNK + 50)),
    "two chunks": rng.permutation(np.arange(CHUNK // 2, CHUNK + CHUNK // 2)),
    "repeats": np.array([5, 5, 3, 70, 5, 69, 3]),
    "gaps within a chunk": np.array([CHUNK + 120, CHUNK + 2, CHUNK + 3, CHUNK + 60, CHUNK + 1]),
    "short last chunk": np.arange(N - 1, N - 30, -1),
    "whole short last chunk": np.arange(N - 1, (N // CHUNK) * CHUNK - 1, -1),
    "sparse": np.arange(0, N, 97),
    "one row": np.array([333]),
}


def _collection() -> Collection:
    data = xr.Dataset({"x": (("sample", "t", "f"), rng.normal(size=(N, 8, 32)).astype(np.float32)),  # 1 KB rows
                       "y": (("sample",), rng.integers(0, 9, size=N).astype(np.int64))})
    return Collection.single(data, attrs={"task": "t"})


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    data = _collection()
    path = tmp_path_factory.mktemp("raw") / "TS_d.zarr"
    FMT.write(data, path, None, chunk=CHUNK)
    return data, path


@pytest.fixture
def reads(monkeypatch):
    """Each read call's buffer count, and a way to shorten reads."""
    record = {"calls": [], "short": 0}

    def through_os(fd, buffers, offset):
        record["calls"].append(len(buffers))
        return original(fd, buffers, offset) - record["short"]

    original = raw._read_at
    monkeypatch.setattr(raw, "_read_at", through_os)
    return record


@pytest.fixture
def no_fallback(monkeypatch):
    """Fail if a take falls back to zarr-python's sorted read."""
    def refuse(*args, **kwargs):
        raise AssertionError("fell back to zarr-python")

    monkeypatch.setattr(ZarrReader, "read", refuse)


def _assert_batch(got: dict, data: Collection, rows: np.ndarray, label: str) -> None:
    assert sorted(got) == ["x", "y"], label
    for var, array in got.items():
        want = data.parts["all"][var].values[rows]
        assert array.dtype == want.dtype and array.flags.c_contiguous, (label, var)
        np.testing.assert_array_equal(array, want, err_msg=f"{label} {var}")


@pytest.mark.parametrize("gap_bytes", [raw.GAP_BYTES, 4096])
def test_take_equals_source_without_fallback(stored, monkeypatch, reads, gap_bytes):
    data, path = stored
    reader = FMT.reader(path)
    general = {label: Reader.take(reader, 0, rows, None) for label, rows in ROWS.items()}
    monkeypatch.setattr(raw, "GAP_BYTES", gap_bytes)  # 4 KB: gaps over 4 rows split a chunk's read
    monkeypatch.setattr(ZarrReader, "read", lambda *a, **k: pytest.fail("fell back to zarr-python"))
    for label, rows in ROWS.items():
        got = reader.take(0, rows)
        _assert_batch(got, data, rows, label)
        for var in got:
            np.testing.assert_array_equal(got[var], general[label][var])


def test_one_read_per_chunk_and_variable(stored, reads, no_fallback):
    data, path = stored
    reader = FMT.reader(path)
    calls = reads["calls"]
    rows = ROWS["one chunk shuffled"]
    _assert_batch(reader.take(0, rows), data, rows, "aligned")
    assert calls == [CHUNK, 1]  # x: one buffer per row, in one call; y: one span
    calls.clear()
    rows = ROWS["two chunks"]
    _assert_batch(reader.take(0, rows), data, rows, "two chunks")
    assert sorted(calls) == [1, 1, CHUNK // 2, CHUNK // 2]


def test_loader_batches_hold_the_stored_rows(stored, reads, no_fallback):
    data, path = stored
    indices = np.sort(np.random.default_rng(1).choice(N, 450, replace=False))  # a split: gaps between rows
    for subset in (None, indices):
        dataset = MappedDataset(FMT.reader(path), subset)
        for epoch in (0, 1):
            seen = []
            for batch in make_loader(dataset, CHUNK, shuffle=True, seed=3, epoch=epoch):
                rows = batch["index"].numpy()
                _assert_batch({k: batch[k].numpy() for k in ("x", "y")}, data, rows, f"epoch {epoch}")
                seen.append(rows)
            np.testing.assert_array_equal(np.sort(np.concatenate(seen)), dataset.indices)


def test_compressed_store_is_read_through_zarr(tmp_path):
    data = _collection()
    FMT.write(data, tmp_path / "z.zarr", None, chunk=CHUNK, compression="zstd")
    reader = FMT.reader(tmp_path / "z.zarr")
    rows = ROWS["two chunks"]
    _assert_batch(reader.take(0, rows), data, rows, "zstd")
    assert reader._raws == {("all", "x"): None, ("all", "y"): None}  # not on the codec allow-list


def test_pickled_reader_drops_its_plans(stored):
    _, path = stored
    reader = FMT.reader(path)
    reader.take(0, ROWS["repeats"])
    assert set(reader._raws) == {("all", "x"), ("all", "y")}
    assert pickle.loads(pickle.dumps(reader))._raws == {}


def test_short_read_falls_back_to_zarr(stored, reads):
    data, path = stored
    reader = FMT.reader(path)
    reads["short"] = 1
    rows = ROWS["two chunks"]
    _assert_batch(reader.take(0, rows), data, rows, "short read")


def _chunk(path, var: str, c: int):
    return path / "all" / var / "c" / str(c) / "0" / "0" if var == "x" else path / "all" / var / "c" / str(c)


def _opened_store(tmp_path):
    """A fresh store of its own (the test damages it), its reader, and rows that read once already."""
    data = _collection()
    path = tmp_path / "TS_d.zarr"
    FMT.write(data, path, None, chunk=CHUNK)
    reader = FMT.reader(path)
    rows = ROWS["one chunk shuffled"]
    _assert_batch(reader.take(0, rows), data, rows, "before")
    return data, path, reader, rows


@pytest.mark.parametrize("damage", ["link", "truncated", "missing"])
def test_damaged_chunk_after_opening_is_refused(tmp_path, reads, damage):
    data, path, reader, rows = _opened_store(tmp_path)
    chunk = _chunk(path, "x", 2)
    if damage == "link":
        outside = tmp_path / "outside"
        outside.write_bytes(np.zeros((CHUNK, 8, 32), np.float32).tobytes())  # the right size: it would decode
        chunk.unlink()
        chunk.symlink_to(outside)
    elif damage == "truncated":
        os.truncate(chunk, chunk.stat().st_size - 1024)
    else:
        chunk.unlink()
    with pytest.raises(TrainsetError, match="all/x/c/2/0/0"):
        reader.take(0, rows)
    _assert_batch(reader.take(0, ROWS["repeats"]), data, ROWS["repeats"], "other chunks still read")


def test_reads_are_cut_at_the_buffer_limit(stored, monkeypatch, reads, no_fallback):
    data, path = stored
    monkeypatch.setattr(raw, "IOV_MAX", 16)  # POSIX's least
    rows = ROWS["one chunk shuffled"]
    _assert_batch(FMT.reader(path).take(0, rows), data, rows, "16 buffers per call")
    assert reads["calls"] == [16] * (CHUNK // 16) + [1]


def _raising_alarm(seconds: int):
    """Fail the test (instead of hanging it) when a call blocks longer than ``seconds``."""
    import signal

    def fail(signum, frame):
        pytest.fail("blocked: a FIFO's open waited for a writer")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    return lambda: (signal.alarm(0), signal.signal(signal.SIGALRM, previous))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_in_place_of_a_chunk_falls_back_and_is_named(tmp_path):
    data, path, reader, rows = _opened_store(tmp_path)
    chunk = _chunk(path, "y", 2)
    chunk.unlink()
    os.mkfifo(chunk)  # no writer: a blocking open would wait forever
    restore = _raising_alarm(10)
    try:
        with pytest.raises(TrainsetError, match="all/y/c/2"):
            reader.take(0, rows)
    finally:
        restore()


def test_io_error_in_the_fast_path_falls_back_to_zarr(stored, monkeypatch):
    data, path = stored
    reader = FMT.reader(path)
    general = ZarrReader.read
    fell_back = []

    def eio(fd, buffers, offset):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(raw, "_read_at", eio)
    monkeypatch.setattr(ZarrReader, "read", lambda self, *a, **k: fell_back.append(a[-1]) or general(self, *a, **k))
    rows = ROWS["two chunks"]
    _assert_batch(reader.take(0, rows), data, rows, "EIO")  # zarr-python reads it (or would name the file)
    assert sorted(fell_back) == [["x", "y"]]


def test_take_valid_checks_the_range(stored):
    data, path = stored
    reader = FMT.reader(path)
    with pytest.raises(TrainsetError, match="rows must be"):  # in the last chunk's file, past the end
        reader.take_valid(0, np.array([N + 5], np.int64))
    with pytest.raises(TrainsetError, match="rows must be"):
        reader.take_valid(0, np.array([-1], np.int64))
    assert reader.take_valid(0, np.zeros(0, np.int64))["x"].shape == (0, 8, 32)
    rows = ROWS["sparse"]
    _assert_batch(reader.take_valid(0, rows.astype(np.int64)), data, rows, "take_valid")


def test_zero_width_variable_reads_empty_rows(tmp_path):
    values = np.zeros((N, 0), np.float32)
    data = Collection.single(xr.Dataset({"e": (("sample", "k"), values),
                                         "y": (("sample",), np.arange(N))}), attrs={"task": "t"})
    path = tmp_path / "TS_e.zarr"
    FMT.write(data, path, None, chunk=CHUNK)
    reader = FMT.reader(path)
    for label, rows in ROWS.items():
        got = reader.take(0, rows)
        assert got["e"].shape == (rows.size, 0) and got["e"].dtype == np.float32, label
        np.testing.assert_array_equal(got["y"], rows, err_msg=label)
    assert isinstance(reader._raws[("all", "e")], raw.RawArray)  # taken by the fast path: no file to read
    assert reader.read(0, np.arange(5, 300, 7), ["e"])["e"].shape == (43, 0)  # the sorted read too


@pytest.mark.parametrize("seed", range(4))
def test_group_rows_matches_scanning_each_chunk(seed):
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 40 * CHUNK, size=int(rng.integers(2, 600)))
    groups = raw.group_rows(rows, CHUNK)
    which = rows // CHUNK
    assert [g.chunk for g in groups] == sorted(set(which.tolist()))
    for group in groups:
        positions = np.flatnonzero(which == group.chunk)  # ascending: batch order within the chunk
        np.testing.assert_array_equal(group.positions, positions)
        np.testing.assert_array_equal(group.local, rows[positions] - group.chunk * CHUNK)
        assert (group.low, group.high) == (group.local.min(), group.local.max() + 1)


def test_plans_compare_by_identity(stored):
    _, path = stored
    reader = FMT.reader(path)
    reader.take(0, ROWS["two chunks"])
    one = reader._raws[("all", "x")]
    other = raw.RawArray(one.folder, one.chunk, one.dtype, one.shape)
    assert one == one and one != other  # ndarray fields must not take part in ==
    a, b = raw.group_rows(ROWS["two chunks"], CHUNK)
    assert a != b and a == a
