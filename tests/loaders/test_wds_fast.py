"""The WebDataset batch loader reads members straight into its shuffle window: its batches must be
exactly those of the former concatenating loader (kept below as the reference), integrity checks
must still refuse tampered shards, and the fast tar header parser must read shards as tarfile does."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from trainset.collection import Collection
from trainset.errors import TrainsetError
from trainset.io.wds import WebDatasetFormat
from trainset.io.wds import members, read
from trainset.loaders.mapped import make_loader
from trainset.loaders.wds import WdsDataset, consumer
from trainset.splits import make_splits

FMT = WebDatasetFormat()


def store(tmp_path: Path, n: int = 157, per_member: int = 7, per_shard: int = 40, name: str = "x") -> Path:
    """float32 data [n, 5, 3] and int64 labels; members and shards with short last ones."""
    values = stored_values(n)
    data = xr.Dataset({"data": (("sample", "time", "feature"), values["data"]),
                       "labels": (("sample",), values["labels"])})
    path = FMT.path_for(tmp_path, name)
    splits = make_splits(n, {"method": "random"}, seed=4)
    FMT.write(Collection.single(data, attrs={"task": "t"}), path, splits,
              samples_per_member=per_member, samples_per_shard=per_shard)
    return path


def stored_values(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {"data": rng.normal(size=(n, 5, 3)).astype(np.float32), "labels": rng.integers(0, 9, size=n)}


# ---------------------------------------------------- the former loader, kept as the reference
def reference_batches(ds: WdsDataset) -> list[dict[str, np.ndarray]]:
    """Batches as the concatenating loader made them (fresh member arrays, concatenated windows)."""
    me, consumers = consumer()
    shards = ds.shard_order()[me::consumers]
    rng = np.random.default_rng([ds.seed, ds.epoch, me, consumers])
    size = int(ds.batch_size)
    window = max(ds.buffer, size) if ds.shuffle else size
    mask = ds.reader.split_mask(ds.split)
    pending, held, out = [], 0, []

    def emit(final: bool) -> None:
        if not pending:
            return
        pool = {k: np.concatenate([b[k] for b in pending]) for k in pending[0]}
        pending.clear()
        n = len(pool["index"])
        order = rng.permutation(n) if ds.shuffle else np.arange(n)
        stop = n if final else (n // size) * size
        for begin in range(0, stop, size):
            out.append({k: v[order[begin:begin + size]] for k, v in pool.items()})
        if stop < n:
            pending.append({k: v[order[stop:]] for k, v in pool.items()})

    for shard in shards:
        for first, _, count, block in ds.reader.iter_shard(shard, ds.variables):
            index = np.arange(first, first + count, dtype=np.int64)
            keep = slice(None) if mask is None else mask[first:first + count]
            if mask is not None and not keep.any():
                continue
            pending.append({**{var: rows[keep] for var, rows in block.items()}, "index": index[keep]})
            held += len(pending[-1]["index"])
            if held >= window:
                emit(final=False)
                held = len(pending[0]["index"]) if pending else 0
    emit(final=True)
    return out


def assert_same_batches(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert list(a) == list(b)  # same keys in the same order
        for key in b:
            assert isinstance(a[key], torch.Tensor) and a[key].dtype == torch.from_numpy(b[key]).dtype
            assert a[key].is_contiguous() and np.array_equal(a[key].numpy(), b[key])


CASES = [  # (dataset layout, loader options)
    ({}, {"shuffle": True, "shuffle_buffer": 64, "batch_size": 16}),
    ({}, {"shuffle": True, "shuffle_buffer": 1, "batch_size": 10}),  # buffer smaller than a batch
    ({}, {"shuffle": True, "shuffle_buffer": 30, "batch_size": 8}),  # smaller than a shard
    ({}, {"shuffle": True, "shuffle_buffer": 1000, "batch_size": 33}),  # larger than the dataset
    ({}, {"shuffle": False, "batch_size": 16}),
    ({}, {"shuffle": False, "batch_size": 1}),
    ({}, {"shuffle": True, "shuffle_buffer": 50, "batch_size": 400}),  # batch larger than the dataset
    ({}, {"shuffle": True, "shuffle_buffer": 45, "batch_size": 16, "split": "train"}),
    ({}, {"shuffle": False, "batch_size": 9, "split": "test"}),
    ({}, {"shuffle": True, "shuffle_buffer": 20, "batch_size": 6, "variables": ["labels"]}),
    ({}, {"shuffle": True, "shuffle_buffer": 20, "batch_size": 6, "variables": ["data"], "split": "val"}),
    ({"per_member": 1, "per_shard": 25}, {"shuffle": True, "shuffle_buffer": 17, "batch_size": 5}),
    ({"per_member": 1, "per_shard": 25}, {"shuffle": False, "batch_size": 7, "split": "train"}),
    ({"n": 20, "per_member": 8, "per_shard": 100}, {"shuffle": True, "shuffle_buffer": 4, "batch_size": 3}),
]


@pytest.mark.parametrize("layout,options", CASES)
def test_batches_equal_the_concatenating_loader(tmp_path, layout, options):
    ds = WdsDataset(store(tmp_path, **layout), seed=5, **options)
    seen = []
    for epoch in (0, 1, 2):
        ds.set_epoch(epoch)
        got = list(ds)
        assert_same_batches(got, reference_batches(ds))
        seen.append(np.concatenate([b["index"].numpy() for b in got]))
    mask = ds.reader.split_mask(ds.split)
    wanted = np.arange(len(ds.reader)) if mask is None else np.flatnonzero(mask)
    assert all(np.array_equal(np.sort(s), wanted) for s in seen)  # each sample once per epoch
    if ds.shuffle and len(wanted) > 10:
        assert not np.array_equal(seen[0], seen[1])  # and the shuffle changes with the epoch


def test_remote_shards_are_mapped_from_their_checked_copies(tmp_path):
    fsspec = pytest.importorskip("fsspec")
    from trainset.io.wds.remote import RemoteWdsSource

    path = store(tmp_path)
    source = RemoteWdsSource(f"file://{path}", fsspec.filesystem("file"), str(path))
    ds = WdsDataset(source, shuffle=True, shuffle_buffer=30, batch_size=8, split="train")
    assert_same_batches(list(ds), reference_batches(ds))
    assert not source._maps  # temporary copies are not kept between epochs


def test_batches_do_not_alias_the_window(tmp_path):
    ds = WdsDataset(store(tmp_path), shuffle=True, shuffle_buffer=30, batch_size=8)
    kept = list(ds)  # every batch held while later ones are gathered from the same mapped shards
    assert_same_batches(kept, reference_batches(ds))
    assert_same_batches(list(make_loader(ds, 8, shuffle=True, epoch=1)), (ds.set_epoch(1), reference_batches(ds))[1])


def test_fortran_ordered_members_are_copied_in(tmp_path):
    path = store(tmp_path, n=30, per_member=10, per_shard=30)
    with tarfile.open(path / "shard-000000.tar") as tar:
        assert "b000000010.data.npy" in tar.getnames()
    want = [{k: v.copy() for k, v in b.items()} for b in reference_batches(WdsDataset(path, batch_size=4))]
    file = path / "shard-000000.tar"
    with tarfile.open(file) as tar:
        old = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in old:
            if info.name.endswith(".data.npy") and not info.name.startswith("b000000010"):  # some C, some F
                array = np.load(io.BytesIO(data))
                out = io.BytesIO()
                np.lib.format.write_array(out, np.asfortranarray(array))
                data = out.getvalue()
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    file.write_bytes(buffer.getvalue())
    rec = read.read_index(path)["shards"][0]
    index = (path / "index.json").read_text().replace(rec["sha256"], members.file_sha256(file))
    (path / "index.json").write_text(index.replace(f'"bytes": {rec["bytes"]}', f'"bytes": {file.stat().st_size}'))
    assert_same_batches(list(WdsDataset(path, batch_size=4)), want)


# -------------------------------------------------------------------------------- integrity
def tamper(file: Path) -> None:
    """One byte changed inside a data member, same size, mtime put back."""
    stat = file.stat()
    raw = bytearray(file.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    file.write_bytes(bytes(raw))
    os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert file.stat().st_size == stat.st_size and file.stat().st_mtime_ns == stat.st_mtime_ns


@pytest.mark.parametrize("shuffle", [False, True])
def test_tampered_shard_refused_on_first_read_in_a_process(tmp_path, monkeypatch, shuffle):
    path = store(tmp_path)
    monkeypatch.setattr(read, "_VERIFIED", {})  # a fresh process: nothing verified yet
    tamper(path / "shard-000002.tar")  # samples 80..119
    ds = WdsDataset(path, shuffle=shuffle, shuffle_buffer=20, batch_size=4)
    got = []
    with pytest.raises(TrainsetError, match="sha256 mismatch") as raised:
        for batch in ds:
            got.append(batch["index"])
    assert "shard-000002.tar" in str(raised.value)
    yielded = torch.cat(got).numpy() if got else np.zeros(0, dtype=np.int64)
    assert not ((yielded >= 80) & (yielded < 120)).any()  # nothing of the tampered shard came out


def test_shard_tampered_after_verification_is_refused(tmp_path):
    path = store(tmp_path)
    ds = WdsDataset(path, shuffle=True, batch_size=8)
    list(ds)  # every shard verified and cached in this process
    tamper(path / "shard-000000.tar")  # the ctime moved: the cache entry no longer applies
    ds.set_epoch(1)
    with pytest.raises(TrainsetError, match="sha256 mismatch"):
        list(ds)


def test_shard_changed_during_an_epoch_is_refused_at_the_next_batch(tmp_path):
    path = store(tmp_path, n=120, per_member=10, per_shard=120)  # one shard, mapped for the whole epoch
    batches = iter(WdsDataset(path, shuffle=True, shuffle_buffer=40, batch_size=8))
    next(batches)
    tamper(path / "shard-000000.tar")
    with pytest.raises(TrainsetError, match="changed while it was being read"):
        next(batches)


def test_later_epochs_neither_hash_nor_walk_again(tmp_path, monkeypatch):
    path = store(tmp_path)
    monkeypatch.setattr(read, "_VERIFIED", {})
    hashed, walked = [], []
    real_hash, real_walk = members.file_sha256, read.walk_handle
    monkeypatch.setattr(members, "file_sha256", lambda file: hashed.append(file) or real_hash(file))
    monkeypatch.setattr(read, "walk_handle", lambda *a, **k: walked.append(a) or real_walk(*a, **k))
    ds = WdsDataset(path, shuffle=True, batch_size=8)
    for epoch in range(3):
        ds.set_epoch(epoch)
        assert_same_batches(list(ds), reference_batches(ds))
    assert len(hashed) == 4 and len(walked) == 4  # four shards, once each


def test_two_workers_give_the_same_multiset_of_samples(tmp_path):
    ds = WdsDataset(store(tmp_path), shuffle=True, shuffle_buffer=30, batch_size=8)
    single = list(make_loader(ds, 8, shuffle=True))
    double = list(make_loader(ds, 8, shuffle=True, num_workers=2))

    def samples(batches):
        rows = [(int(i), b["labels"][k].item(), b["data"][k].numpy().tobytes())
                for b in batches for k, i in enumerate(b["index"])]
        return sorted(rows)

    assert samples(single) == samples(double) and len(samples(single)) == 157


def test_iter_samples_and_blocks_unchanged(tmp_path):
    path = store(tmp_path)
    source = FMT.reader(path)
    samples = list(source.iter_samples("train", ["data"]))
    blocks = list(source.iter_blocks(np.arange(10, 150, 3), ["labels", "data"], rows=16))
    values = stored_values(157)["data"]
    assert all(np.array_equal(s["data"], values[int(s["index"])]) for s in samples)
    assert [list(b.arrays) for b in blocks][0] == ["labels", "data"]
    got = np.concatenate([b.arrays["data"] for b in blocks])
    assert np.array_equal(got, values[np.arange(10, 150, 3)]) and got.flags.writeable


# ------------------------------------------------------------------------- tar header parsing
def headers_of(file: Path) -> list[tuple]:
    with open(file, "rb") as handle:
        heads, walk = [], members._Headers(handle)
        while (info := walk.next()) is not None:
            heads.append((info.name, info.type, info.size, info.offset_data))
    return heads


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_header_parser_reads_as_tarfile_does(tmp_path, fmt):
    file = tmp_path / "a.tar"
    names = ["b01.x.npy", "b01." + "v" * 120 + ".npy", "b02.x.npy", "dir/b03.y.npy", "b04.z.npy"]
    with tarfile.open(file, "w", format=fmt) as tar:
        for k, name in enumerate(names):
            if fmt == tarfile.USTAR_FORMAT and len(name) > 100:
                continue
            info = tarfile.TarInfo(name)
            info.size, info.mtime = 100 * k + 1, 1700000000 + k
            tar.addfile(info, io.BytesIO(bytes(info.size)))
        link = tarfile.TarInfo("b05.l.npy")
        link.type, link.linkname = tarfile.SYMTYPE, "b01.x.npy"
        tar.addfile(link)
    with tarfile.open(file) as tar:
        want = [(m.name, m.type, m.size, m.offset_data) for m in tar.getmembers()]
    assert headers_of(file) == want and len(want) >= 5
    with tarfile.open(file) as tar:
        second = tar.getmembers()[1].offset  # its first header block (a pax or GNU record, if any)
    good = file.read_bytes()
    raw = bytearray(good)
    raw[second + 148] ^= 0x01  # a bad checksum in the second header: tarfile silently ends there
    file.write_bytes(bytes(raw))
    with tarfile.open(file) as tar:
        assert [(m.name, m.type, m.size, m.offset_data) for m in tar.getmembers()] == want[:1]
    assert headers_of(file) == want[:1]
    raw = bytearray(good)
    raw[148] ^= 0x01  # a bad checksum in the first header: tarfile refuses the file
    file.write_bytes(bytes(raw))
    with pytest.raises(tarfile.ReadError):
        headers_of(file)


def test_cut_padding_is_refused_as_tarfile_does(tmp_path):
    file = tmp_path / "a.tar"
    with tarfile.open(file, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("b01.x.npy", "b02.x.npy"):
            info = tarfile.TarInfo(name)
            info.size = 10
            tar.addfile(info, io.BytesIO(bytes(10)))
    file.write_bytes(file.read_bytes()[:512 + 100])  # inside the first member's padding
    with pytest.raises(tarfile.ReadError, match="unexpected end of data"):
        headers_of(file)
