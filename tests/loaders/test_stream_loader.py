"""make_loader's StreamLoader iterates a self-batching streamed dataset directly in the main
process: its batches must be exactly DataLoader's own (same order, keys, dtypes, values)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader

from tests.loaders.test_wds_fast import store
from trainset.loaders.mapped import StreamLoader, make_loader
from trainset.loaders.wds import WdsDataset


def batches(loader) -> list[dict]:
    return [dict(batch) for batch in loader]


def test_stream_loader_equals_dataloader(tmp_path: Path) -> None:
    path = store(tmp_path)
    for epoch in range(2):
        ds = WdsDataset(path, split="train", shuffle=True, seed=5, shuffle_buffer=30, batch_size=16)
        fast = make_loader(ds, 16, shuffle=True, epoch=epoch)
        assert isinstance(fast, StreamLoader)
        got = batches(fast)
        ds.set_epoch(epoch)
        want = batches(DataLoader(ds, batch_size=None))
        assert len(got) == len(want) > 3
        for a, b in zip(got, want):
            assert a.keys() == b.keys()
            for key in a:
                assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key])


def test_stream_loader_with_workers_uses_dataloader(tmp_path: Path) -> None:
    """With workers DataLoader's own iterator runs (each worker reads its own shards)."""
    ds = WdsDataset(store(tmp_path), shuffle=False, batch_size=8)
    loader = make_loader(ds, 8, num_workers=2)
    seen = torch.cat([b["index"] for b in loader])
    assert sorted(seen.tolist()) == list(range(157))
