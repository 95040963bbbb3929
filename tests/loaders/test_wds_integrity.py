"""Review findings on the mapped WebDataset batch loader (issue 17): no batch may hold bytes that
changed after their shard was verified, whichever way they reached the window (a view of the
mapping, or the copy of a Fortran-ordered member); a write during a gather is never yielded; a
shard truncated between batches raises TrainsetError instead of killing the process (SIGBUS);
unknown variables are refused on both paths; the reader's cache of mappings stays small (LRU)."""

from __future__ import annotations

import io
import multiprocessing
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.loaders.test_wds_fast import assert_same_batches, reference_batches, store
from trainset.errors import TrainsetError
from trainset.io.wds import members, read
from trainset.loaders import wds
from trainset.loaders.wds import WdsDataset

CHANGED = "changed while it was being read"


def fortran_store(tmp_path: Path) -> Path:
    """One shard of 30 samples in members of 10, every ``data`` member Fortran-ordered."""
    path = store(tmp_path, n=30, per_member=10, per_shard=30)
    file = path / "shard-000000.tar"
    with tarfile.open(file) as tar:
        old = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for info, data in old:
            if info.name.endswith(".data.npy"):
                out = io.BytesIO()
                np.lib.format.write_array(out, np.asfortranarray(np.load(io.BytesIO(data))))
                data = out.getvalue()
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    file.write_bytes(buffer.getvalue())
    rec = read.read_index(path)["shards"][0]
    index = (path / "index.json").read_text().replace(rec["sha256"], members.file_sha256(file))
    (path / "index.json").write_text(index.replace(f'"bytes": {rec["bytes"]}', f'"bytes": {file.stat().st_size}'))
    return path


def flip_in_place(file: Path, member: str) -> None:
    """Flip the last data byte of ``member`` in place (same size; mtime and ctime move)."""
    with tarfile.open(file) as tar:
        info = tar.getmember(member)
    where = info.offset_data + info.size - 4
    with open(file, "r+b") as handle:
        handle.seek(where)
        old = handle.read(1)
        handle.seek(where)
        handle.write(bytes([old[0] ^ 0xFF]))


@pytest.mark.parametrize("options", [
    {"batch_size": 10},  # stored order: the last member is copied after the flip
    {"batch_size": 10, "shuffle": True, "shuffle_buffer": 1000},  # every member copied before it
])
def test_fortran_member_changed_after_verification_is_refused(tmp_path, options):
    path = fortran_store(tmp_path)
    ds = WdsDataset(path, variables=["data"], **options)
    assert_same_batches(list(ds), reference_batches(ds))  # copies are made and read right
    batches = iter(ds)
    next(batches)
    flip_in_place(path / "shard-000000.tar", "b000000020.data.npy")
    with pytest.raises(TrainsetError, match=CHANGED):
        list(batches)


def test_write_during_a_gather_is_not_yielded(tmp_path, monkeypatch):
    path = store(tmp_path, n=120, per_member=10, per_shard=120)
    file = path / "shard-000000.tar"
    real = wds._Window._gather

    def gather_while_written(self, *args):
        rows = real(self, *args)
        flip_in_place(file, "b000000050.data.npy")  # lands between the gather and the yield
        return rows

    monkeypatch.setattr(wds._Window, "_gather", gather_while_written)
    with pytest.raises(TrainsetError, match=CHANGED):
        next(iter(WdsDataset(path, shuffle=True, shuffle_buffer=40, batch_size=8)))


def _truncate_between_batches(path: str) -> None:
    """In a child process: a batch, the shard cut in place, the next batch; exit 3 on TrainsetError."""
    batches = iter(WdsDataset(path, shuffle=True, shuffle_buffer=120, batch_size=8))
    next(batches)
    os.truncate(Path(path) / "shard-000000.tar", 4096)
    try:
        next(batches)
    except TrainsetError as error:
        os._exit(3 if CHANGED in str(error) and "shard-000000.tar" in str(error) else 4)
    os._exit(0)


def test_shard_truncated_between_batches_raises_instead_of_crashing(tmp_path):
    path = store(tmp_path, n=120, per_member=10, per_shard=120)  # one shard, mapped for the whole epoch
    # a child process, so that a regression (SIGBUS) fails this test instead of killing pytest
    child = multiprocessing.get_context("fork").Process(target=_truncate_between_batches, args=(str(path),))
    child.start()
    child.join(60)
    assert child.exitcode == 3, f"exit code {child.exitcode} (-7: SIGBUS, 0: no error, 4: unclear message)"


@pytest.mark.parametrize("batch_size", [None, 8])
def test_unknown_variables_are_refused_on_both_paths(tmp_path, batch_size):
    with pytest.raises(TrainsetError, match=r"no variable\(s\) \['nope'\]"):
        WdsDataset(store(tmp_path), batch_size=batch_size, variables=["data", "nope"])


def test_mapped_shards_are_kept_least_recently_used_first_out(tmp_path, monkeypatch):
    monkeypatch.setattr(read, "MAPPED_SHARDS", 2)
    source = read.WdsSource(store(tmp_path))  # four shards
    first = source.mapped_shard(0)
    source.mapped_shard(1)
    assert source.mapped_shard(0) is first  # a hit makes shard 0 the most recently used
    source.mapped_shard(2)  # evicts shard 1, not shard 0
    assert list(source._maps) == [0, 2] and source.mapped_shard(0) is first
    for shard in range(4):
        source.mapped_shard(shard)
    assert len(source._maps) == 2
    ds = WdsDataset(source, shuffle=True, shuffle_buffer=30, batch_size=8)
    assert_same_batches(list(ds), reference_batches(ds))
    assert torch.cat([b["index"] for b in ds]).sort().values.tolist() == list(range(157))
