"""WebDataset shards are sha256-checked once per process (not per epoch, not per reader), and a
shard changed afterwards is checked again and refused."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from trainset.collection import Collection
from trainset.errors import TrainsetError
from trainset.io.base import get_format
from trainset.io.wds import members
from trainset.io.wds.read import WdsSource


def _store(tmp_path):
    data = xr.Dataset({"x": (("sample", "t"), np.arange(600, dtype=np.float32).reshape(200, 3))})
    fmt = get_format("webdataset")
    path = fmt.path_for(tmp_path, "d")
    fmt.write(Collection.single(data, attrs={"task": "t"}), path, None, samples_per_member=50, samples_per_shard=100)
    return path


def test_hashed_once_per_process_and_tampering_refused(tmp_path, monkeypatch):
    path = _store(tmp_path)
    hashed = []
    real = members.file_sha256
    monkeypatch.setattr(members, "file_sha256", lambda file: hashed.append(file) or real(file))
    first = [b.arrays["x"] for b in WdsSource(path).iter_blocks()]
    assert len(hashed) == 2  # two shards
    again = [b.arrays["x"] for b in WdsSource(path).iter_blocks()]  # a new reader, a new epoch: no re-hash
    assert len(hashed) == 2 and all(np.array_equal(a, b) for a, b in zip(first, again))
    shard = sorted(path.glob("*.tar"))[0]
    raw = bytearray(shard.read_bytes())
    raw[-2000] ^= 0xFF  # same size, different bytes (and a new ctime)
    shard.write_bytes(bytes(raw))
    with pytest.raises(TrainsetError, match="sha256 mismatch"):
        list(WdsSource(path).iter_blocks())
