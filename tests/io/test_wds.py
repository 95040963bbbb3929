"""WebDataset adapter: round trips, byte-identical shards, refusal of unsafe shards, the loader."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from trainset.collection import Collection
from trainset.errors import TrainsetError
from trainset.io.base import FORMATS
from trainset.io.wds import WdsSource, WebDatasetFormat
from trainset.loaders.wds import WdsDataset
from trainset.splits import make_splits

FMT = WebDatasetFormat()


# ------------------------------------------------------------------------------------ fixtures
def classification(n: int = 150, t: int = 8, d: int = 3) -> Collection:
    """(a) float32 data [N,T,D], int64 labels [N], string and numeric per-sample coords."""
    rng = np.random.default_rng(0)
    data = xr.Dataset(
        {"data": (("sample", "time", "feature"), rng.normal(size=(n, t, d)).astype(np.float32)),
         "labels": (("sample",), rng.integers(0, 5, size=n).astype(np.int64), {"classes": 5})},
        coords={"origin": ("sample", np.array([f"site{i % 7}/day{i}" for i in range(n)], dtype=object)),
                "site": ("sample", (np.arange(n) % 7).astype(np.int32), {"kind": "site id"})},
        attrs={"part_note": "only part"},
    )  # fmt: skip
    return Collection.single(data, name="flights", attrs={"task": "seq2static_classification", "config": {"a": 1}})


def regression(n: int = 120, t: int = 8, d: int = 3, k: int = 2) -> Collection:
    """(b) float32 regression targets [N,T,K] (must never become integers)."""
    rng = np.random.default_rng(1)
    data = xr.Dataset(
        {"data": (("sample", "time", "feature"), rng.normal(size=(n, t, d)).astype(np.float32)),
         "labels": (("sample", "time", "target"), rng.normal(size=(n, t, k)).astype(np.float32))},
        coords={"origin": ("sample", [f"o{i}" for i in range(n)]), "site": ("sample", np.arange(n) * 0.5)},
    )  # fmt: skip
    return Collection.single(data, attrs={"task": "seq2seq_regression", "config": {"a": 1}})


def worlds() -> Collection:
    """(c) two parts whose parameter and shock counts differ, plus a non-sample coordinate."""
    rng = np.random.default_rng(2)
    parts = {}
    for name, n, params, shocks in (("nk", 70, 4, 3), ("var", 45, 6, 2)):
        parts[name] = xr.Dataset(
            {"theta": (("sample", "param"), rng.uniform(size=(n, params)).astype(np.float32)),
             "irfs": (("sample", "shock", "horizon", "variable"), rng.normal(size=(n, shocks, 41, 3)))},
            coords={"variable": ["output", "inflation", "rate"]},
            attrs={"world": name},
        )  # fmt: skip
    return Collection(parts, attrs={"task": "irf", "config": {"a": 1}})


MAKERS = {"classification": classification, "regression": regression, "worlds": worlds}


def splits_of(collection: Collection) -> dict[str, np.ndarray]:
    return make_splits(len(collection), {"method": "random"}, seed=4)


def write(tmp_path: Path, collection: Collection, name: str = "x", **options) -> Path:
    path = FMT.path_for(tmp_path, name)
    options.setdefault("samples_per_shard", 40)
    FMT.write(collection, path, splits_of(collection), **options)
    return path


def tree_hashes(folder: Path) -> dict[str, str]:
    return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(folder.rglob("*")) if f.is_file()}


def assert_samples_equal(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want)
    for have, expected in zip(got, want):
        assert set(have) == set(expected)
        for key, value in expected.items():
            if key == "part":
                assert have[key] == value
                continue
            array = have[key].numpy() if isinstance(have[key], torch.Tensor) else np.asarray(have[key])
            assert array.dtype == np.asarray(value).dtype and array.shape == np.shape(value), key
            np.testing.assert_array_equal(array, value)


# ---------------------------------------------------------------------------------- round trip
@pytest.mark.parametrize("per_member", [1, 64])
@pytest.mark.parametrize("which", sorted(MAKERS))
def test_round_trip(tmp_path, which, per_member):
    collection = MAKERS[which]()
    path = write(tmp_path, collection, samples_per_shard=100, samples_per_member=per_member)
    assert FMT.check(path) == []
    loaded, splits = FMT.load(path)
    assert list(loaded.parts) == list(collection.parts) and loaded.attrs == collection.attrs
    for name, part in collection.parts.items():
        xr.testing.assert_identical(loaded.parts[name], part)
        for var in part.data_vars:
            assert loaded.parts[name][var].dtype == part[var].dtype
    expected_splits = splits_of(collection)
    assert {k: v.tolist() for k, v in splits.items()} == {k: v.tolist() for k, v in expected_splits.items()}

    source = FMT.reader(path)
    assert len(source) == len(collection) and source.block_size == per_member
    assert [(p.name, p.size) for p in source.parts] == list(collection.sizes.items())
    assert_samples_equal(list(source.iter_samples()), list(collection.iter_samples()))
    for split, indices in expected_splits.items():
        got = list(source.iter_samples(split=split))
        assert [int(s["index"]) for s in got] == indices.tolist()
        assert_samples_equal(got, list(collection.iter_samples(indices)))


def test_variable_selection_and_multi_part_samples(tmp_path):
    collection = worlds()
    source = FMT.reader(write(tmp_path, collection, samples_per_member=16))
    samples = list(source.iter_samples(split="val", variables=["theta"]))
    assert samples and all(set(s) == {"theta", "index", "part"} for s in samples)
    assert {s["part"] for s in samples} == {"nk", "var"}
    assert {s["theta"].shape for s in samples} == {(4,), (6,)}
    with pytest.raises(TrainsetError, match="no variable"):
        list(source.iter_samples(variables=["nope"]))
    with pytest.raises(TrainsetError, match="no split"):
        list(source.iter_samples(split="holdout"))


def test_blocks_never_straddle_parts_or_shards(tmp_path):
    path = write(tmp_path, worlds(), samples_per_shard=50, samples_per_member=32)
    index = json.loads((path / "index.json").read_text())
    assert [(s["first"], s["last"]) for s in index["shards"]] == [(0, 49), (50, 99), (100, 114)]
    with tarfile.open(path / "shard-000001.tar") as tar:
        keys = sorted({m.name.split(".")[0] for m in tar.getmembers()})
    assert keys == ["b000000050", "b000000070"]  # cut at the part boundary (70) and the shard end


def test_writes_are_byte_identical_and_tar_metadata_is_fixed(tmp_path):
    collection = worlds()
    first = write(tmp_path, collection, "one", samples_per_member=8)
    second = write(tmp_path, collection, "two", samples_per_member=8)
    assert tree_hashes(first) == tree_hashes(second)
    write(tmp_path, collection, "one", samples_per_member=8)  # overwrite in place
    assert tree_hashes(first) == tree_hashes(second)
    with tarfile.open(first / "shard-000000.tar") as tar:
        members = tar.getmembers()
    assert all((m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) == (0, 0, 0, "", "", 0o644) for m in members)
    assert all(m.name.endswith(".npy") and not m.pax_headers for m in members)
    assert not list(tmp_path.glob(".*"))  # no temporaries left behind


def test_shard_size_options_and_bad_input(tmp_path):
    collection = classification(100)  # 8*3*4 + 8 = 104 bytes a sample
    path = FMT.path_for(tmp_path, "mb")
    FMT.write(collection, path, shard_size_mb=0.002)
    assert len(list(path.glob("shard-*.tar"))) == 6  # 19 samples a shard
    with pytest.raises(TrainsetError, match="unknown option"):
        FMT.write(collection, path, shards=3)
    with pytest.raises(TrainsetError, match="not both"):
        FMT.write(collection, path, shard_size_mb=1, samples_per_shard=5)
    bad = Collection.single(collection.parts["flights"].rename({"labels": "index"}))
    with pytest.raises(TrainsetError, match="index"):
        FMT.write(bad, tmp_path / "bad-wds")
    objects = Collection.single(xr.Dataset({"o": ("sample", np.array([{"a": 1}] * 3, dtype=object))}))
    with pytest.raises(TrainsetError, match="object dtype"):
        FMT.write(objects, tmp_path / "obj-wds")
    assert not (tmp_path / "bad-wds").exists() and not (tmp_path / "obj-wds").exists()


def test_registry_guess_and_pickled_source(tmp_path):
    path = write(tmp_path, classification(60))
    assert FORMATS["webdataset"].name == "webdataset"
    assert FMT.guess_can_open(path) and not FMT.guess_can_open(tmp_path / "x.nc")
    source = FMT.reader(path)
    clone = pickle.loads(pickle.dumps(source))
    assert clone._meta is None  # opened lazily in the receiving process
    assert [int(s["index"]) for s in clone.iter_samples()] == list(range(60))


# ---------------------------------------------------------------------------- unsafe shards
class Marker:
    """Unpickling this creates ``path``: proof that a pickle was executed."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def rewrite_shard(path: Path, shard: int = 0, extra: list[tuple[tarfile.TarInfo, bytes]] = (),
                  cut: int | None = None) -> Path:
    """Insert ``extra`` members first (or cut the file at byte ``cut``) and re-record its hash."""
    file = path / f"shard-{shard:06d}.tar"
    if extra:
        with tarfile.open(file) as tar:
            members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for info, data in [*extra, *members]:
                tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
        file.write_bytes(buffer.getvalue())
    if cut is not None:
        file.write_bytes(file.read_bytes()[:cut])
    index = json.loads((path / "index.json").read_text())
    index["shards"][shard].update(sha256=hashlib.sha256(file.read_bytes()).hexdigest(), bytes=file.stat().st_size)
    (path / "index.json").write_text(json.dumps(index))
    return file


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.type = len(data), kind
    if kind == tarfile.SYMTYPE:
        info.linkname = "/etc/passwd"
    return info, data


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.fixture
def stored(tmp_path) -> Path:
    return write(tmp_path, classification(100), samples_per_shard=40)


@pytest.mark.parametrize("name,words", [
    ("000000000.features.pth", "pickle"),
    ("000000000.targets.pkl", "pickle"),
    ("../evil.npy", "'..'"),
    ("/tmp/x.npy", "absolute"),
])  # fmt: skip
def test_pickle_and_bad_member_names_are_refused_unread(stored, tmp_path, name, words):
    marker = tmp_path / "executed"
    payload = pickle.dumps(Marker(marker))
    if name.endswith(".pth"):
        buffer = io.BytesIO()
        torch.save(Marker(marker), buffer)
        payload = buffer.getvalue()
    elif name.endswith(".npy"):
        payload = npy_bytes(np.zeros(3))
    pickle.loads(pickle.dumps(Marker(tmp_path / "live")))
    assert (tmp_path / "live").exists()  # the payload really would run if unpickled
    shard = rewrite_shard(stored, extra=[member(name, payload)])
    with tarfile.open(shard) as tar:
        assert tar.getnames()[0] == name

    problems = FMT.check(stored)
    assert any(shard.name in p and repr(name) in p and words in p for p in problems), problems
    with pytest.raises(TrainsetError, match=words) as raised:
        list(FMT.reader(stored).iter_samples())
    assert str(shard) in str(raised.value) and repr(name) in str(raised.value)
    with pytest.raises(TrainsetError):
        FMT.load(stored)
    assert not marker.exists()
    assert not (stored.parent / "evil.npy").exists() and not Path("/tmp/x.npy").exists()


def test_links_and_unexpected_members_are_refused(stored):
    shard = rewrite_shard(stored, extra=[member("000000000.data.npy", kind=tarfile.SYMTYPE)])
    with pytest.raises(TrainsetError, match="not a regular file"):
        list(FMT.reader(stored).iter_samples())
    rewrite_shard(stored, shard=1, extra=[member("000000040.extra.npy", npy_bytes(np.zeros(2)))])
    problems = FMT.check(stored)
    assert any(shard.name in p and "regular file" in p for p in problems)
    assert any("shard-000001.tar" in p and "'extra' is not stored" in p for p in problems)


def test_truncated_shard_is_reported_and_refused(stored):
    file = stored / "shard-000001.tar"
    with tarfile.open(file) as tar:
        victim = tar.getmembers()[10]
    rewrite_shard(stored, shard=1, cut=victim.offset_data + 20)  # inside the member's data
    problems = FMT.check(stored)
    assert any(file.name in p and "truncated" in p for p in problems), problems
    with pytest.raises(TrainsetError, match="truncated") as raised:
        list(FMT.reader(stored).iter_samples())
    assert str(file) in str(raised.value) and victim.name in str(raised.value)


def test_size_and_sha256_mismatch_missing_shard_and_index(stored):
    file = stored / "shard-000000.tar"
    data = bytearray(file.read_bytes())
    file.write_bytes(data[: len(data) // 2])
    with pytest.raises(TrainsetError, match="truncated") as raised:
        next(FMT.reader(stored).iter_samples())
    assert str(file) in str(raised.value)
    data[1200] ^= 0xFF  # same size, one flipped byte
    file.write_bytes(bytes(data))
    with pytest.raises(TrainsetError, match="sha256 mismatch"):
        next(FMT.reader(stored).iter_samples())
    assert any("sha256 mismatch" in p for p in FMT.check(stored))
    (stored / "shard-000002.tar").unlink()
    assert any("shard-000002.tar" in p and "missing" in p for p in FMT.check(stored))
    (stored / "index.json").unlink()
    problems = FMT.check(stored)
    assert len(problems) == 1 and "index.json" in problems[0] and "Fix" in problems[0]
    with pytest.raises(TrainsetError, match="index.json"):
        len(FMT.reader(stored))


def test_counts_not_matching_index_are_reported(stored):
    index = json.loads((stored / "index.json").read_text())
    index["shards"][1]["members"] += 1
    (stored / "index.json").write_text(json.dumps(index))
    assert any("members, index.json says" in p for p in FMT.check(stored))
    index["shards"][1]["last"] += 1
    (stored / "index.json").write_text(json.dumps(index))
    assert any("contiguously" in p for p in FMT.check(stored))


# ------------------------------------------------------------------------------------- loader
def test_loader_with_two_workers_yields_each_sample_once(tmp_path):
    collection = classification(300)
    path = write(tmp_path, collection, samples_per_shard=30, samples_per_member=8)
    loader = torch.utils.data.DataLoader(WdsDataset(FMT.reader(path)), batch_size=16, num_workers=2)
    batches = list(loader)
    seen = torch.cat([b["index"] for b in batches]).numpy()
    assert sorted(seen.tolist()) == list(range(300))
    values = collection.parts["flights"]
    for batch in batches[:3]:
        np.testing.assert_array_equal(batch["data"].numpy(), values["data"].values[batch["index"].numpy()])
        np.testing.assert_array_equal(batch["labels"].numpy(), values["labels"].values[batch["index"].numpy()])
    val = WdsDataset(path, split="val")
    seen = torch.cat([b["index"] for b in torch.utils.data.DataLoader(val, batch_size=7, num_workers=2)])
    assert len(val) == len(seen) and sorted(seen.tolist()) == splits_of(collection)["val"].tolist()


def test_loader_order_and_deterministic_shuffle(tmp_path):
    collection = classification(200)
    path = write(tmp_path, collection, samples_per_shard=25, samples_per_member=4)
    plain = [int(s["index"]) for s in WdsDataset(path)]
    assert plain == list(range(200))

    dataset = WdsDataset(path, split="train", shuffle=True, seed=7, shuffle_buffer=30)

    def order(epoch: int) -> list[int]:
        dataset.set_epoch(epoch)
        return [int(s["index"]) for s in dataset]

    first = order(0)
    assert sorted(first) == splits_of(collection)["train"].tolist() and len(dataset) == len(first)
    assert first == order(0) and first != sorted(first)
    assert order(1) != first and sorted(order(1)) == sorted(first)
    with pytest.raises(TrainsetError):
        dataset.set_epoch(-1)


def test_loader_samples_are_tensors_that_collate(tmp_path):
    path = write(tmp_path, worlds(), samples_per_member=16)
    sample = next(iter(WdsDataset(path, variables=["theta"])))
    assert set(sample) == {"theta", "index", "part"} and sample["part"] == "nk"
    assert sample["index"].dtype == torch.int64 and sample["theta"].dtype == torch.float32


def test_tampered_index_is_refused(stored):
    index = json.loads((stored / "index.json").read_text())
    bad = json.loads(json.dumps(index))
    bad["shards"][0]["file"] = "../../etc/passwd"
    (stored / "index.json").write_text(json.dumps(bad))
    with pytest.raises(TrainsetError, match="shard file name"):
        len(FMT.reader(stored))
    assert any("shard file name" in p for p in FMT.check(stored))
    bad = json.loads(json.dumps(index))
    bad["parts"][0]["variables"]["labels"]["dtype"] = "<i4"
    (stored / "index.json").write_text(json.dumps(bad))
    assert any("'000000000.labels.npy'" in p and "<i4" in p for p in FMT.check(stored))
    with pytest.raises(TrainsetError, match="wrong dtype"):
        next(FMT.reader(stored).iter_samples())


@pytest.mark.parametrize("garbage", [b"", b"{", b'{"format": "trainset-webdataset", "version": 1}', b"[1, 2]"])
def test_check_never_raises_on_garbage(stored, garbage):
    (stored / "shard-000001.tar").write_bytes(os.urandom(3000))
    assert any("shard-000001.tar" in p for p in FMT.check(stored))
    with pytest.raises(TrainsetError, match="shard-000001.tar"):
        list(WdsSource(stored, verify=False).iter_samples())
    (stored / "index.json").write_bytes(garbage)
    problems = FMT.check(stored)
    assert len(problems) == 1 and "index.json" in problems[0]
    assert FMT.check(stored / "nothing-here-wds")


def test_ddp_ranks_split_the_shards(tmp_path, monkeypatch):
    path = write(tmp_path, classification(200), samples_per_shard=20, samples_per_member=4)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda group=None: 2)
    seen = []
    for rank in (0, 1):
        monkeypatch.setattr(torch.distributed, "get_rank", lambda group=None, rank=rank: rank)
        seen.append([int(s["index"]) for s in WdsDataset(path, shuffle=True, seed=1)])
    assert seen[0] and seen[1] and sorted(seen[0] + seen[1]) == list(range(200))


def test_unrequested_members_are_never_read(stored, monkeypatch):
    import trainset.io.wds.members as wds

    calls = []
    real = wds.npy_header
    monkeypatch.setattr(wds, "npy_header", lambda data: calls.append(len(data)) or real(data))
    samples = list(FMT.reader(stored).iter_samples(variables=["labels"]))
    assert len(samples) == 100 and len(calls) == 100  # one labels member each, no data member
    assert max(calls) < 200  # only the small labels members were read
