"""make_loader's main-process fast paths (BatchLoader, StreamLoader) must leave torch's global
random state exactly where DataLoader's own iterator leaves it, so that training results do not
depend on num_workers or pin_memory; and MappedDataset must obey a reader subclass's own take()."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from tests.loaders.test_memory_fast import _collection
from tests.loaders.test_wds_fast import store
from trainset.loaders.mapped import BatchLoader, MappedDataset, StreamLoader, make_loader
from trainset.loaders.memory import MemoryReader
from trainset.loaders.wds import WdsDataset


def state_after(loader: DataLoader, through_dataloader: bool) -> tuple[float, list]:
    """torch.rand(1) after two epochs of ``loader`` (its own path, or DataLoader's iterator)."""
    torch.manual_seed(0)
    seen = []
    for _ in range(2):
        batches = DataLoader.__iter__(loader) if through_dataloader else iter(loader)
        seen.extend(batch["index"].tolist() for batch in batches)
    return torch.rand(1).item(), seen


def test_stream_loader_draws_as_dataloader_does(tmp_path: Path) -> None:
    loader = make_loader(WdsDataset(store(tmp_path), batch_size=16), 16)
    assert isinstance(loader, StreamLoader)
    assert state_after(loader, False) == state_after(loader, True)
    torch.manual_seed(0)
    assert state_after(loader, False)[0] != torch.rand(1).item()  # the draw happens


def test_batch_loader_draws_as_dataloader_does() -> None:
    loader = make_loader(MappedDataset(MemoryReader(_collection())), 64, shuffle=True, seed=3)
    assert isinstance(loader, BatchLoader)
    assert state_after(loader, False) == state_after(loader, True)


class Doubling(MemoryReader):
    """A reader whose take() changes what it returns (and inherits take_valid)."""

    def take(self, part, rows, variables=None):
        return {var: a * 2 for var, a in super().take(part, rows, variables).items()}


def test_a_subclass_take_is_not_bypassed() -> None:
    collection = _collection()
    plain = make_loader(MappedDataset(MemoryReader(collection)), 50)
    doubled = make_loader(MappedDataset(Doubling(collection)), 50)
    for a, b in zip(plain, doubled):
        assert np.array_equal(b["x"].numpy(), 2 * a["x"].numpy())
    reader = MemoryReader(collection)
    assert MappedDataset(reader)._take_valid == reader.take_valid  # the plain reader keeps its fast path
