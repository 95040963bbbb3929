"""The in-memory loader's fast paths (issue 17) give exactly what the plain paths give.

``BlockShuffleSampler.order`` draws every pool's shuffle in one ``Generator.permuted`` call: it
must equal the per-pool ``permutation`` loop it replaced, draw for draw. ``make_loader`` skips
the second position check for its own sampler's positions: its batches must equal
``dataset.get_batch`` of the same positions, while ``dataset[positions]`` still checks.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from trainset.collection import Collection
from trainset.loaders.mapped import MappedDataset, make_loader
from trainset.loaders.memory import MemoryReader
from trainset.loaders.sampler import BlockShuffleSampler

N = 700


def _collection() -> Collection:
    rng = np.random.default_rng(4)
    data = xr.Dataset({"x": (("sample", "t", "f"), rng.normal(size=(N, 3, 2)).astype(np.float32)),
                       "y": (("sample",), rng.integers(0, 9, size=N).astype(np.int64))})
    return Collection.single(data, attrs={"task": "t"})


def _loop_order(size: int, block: int, window: int, seed: int, epoch: int) -> np.ndarray:
    """The order as the sampler drew it before issue 17: one ``permutation`` per pool."""
    rng = np.random.default_rng([seed, epoch, 0xB10C])
    starts = np.arange(0, size, block)
    full = starts[starts + block <= size]
    starts = np.concatenate([full[rng.permutation(full.size)], starts[full.size:]])
    pieces = []
    for first in range(0, starts.size, window):
        pool = np.concatenate([np.arange(s, min(s + block, size)) for s in starts[first:first + window]])
        pieces.append(pool[rng.permutation(pool.size)])
    return np.concatenate(pieces) if pieces else np.arange(0)


@pytest.mark.parametrize("size", [0, 1, 5, 255, 256, 257, 700, 2049])
@pytest.mark.parametrize("block,window", [(1, 1), (3, 1), (64, 1), (256, 1), (1000, 1), (64, 3), (7, 5)])
def test_order_equals_the_per_pool_loop(size, block, window):
    for seed, epoch in [(0, 0), (1, 3)]:
        sampler = BlockShuffleSampler(size, 32, block, True, window, seed)
        sampler.set_epoch(epoch)
        got, want = sampler.order(), _loop_order(size, block, window, seed, epoch)
        assert got.dtype == np.int64 and np.array_equal(got, want), (size, block, window, seed, epoch)


@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_batches_are_the_order_cut_in_batch_size(drop_last):
    for rank, world in [(0, 1), (1, 3)]:
        sampler = BlockShuffleSampler(N, 64, 64, True, 2, 9, drop_last, rank=rank, world=world, arrays=True)
        order = sampler.order()
        stop = N // 64 * 64 if drop_last else N
        want = [order[b:b + 64][rank::world] for b in range(0, stop, 64)]
        got = list(sampler)
        assert len(got) == len(want) and all(g.dtype == np.int64 and np.array_equal(g, w) for g, w in zip(got, want))


def _same(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        assert got[key].dtype == value.dtype and torch.equal(got[key], value), key


@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("shuffle,world", [(False, 1), (True, 1), (True, 2)])
def test_loader_batches_equal_get_batch_and_the_arrays(split, shuffle, world):
    data = _collection()
    indices = np.arange(3, N, 2) if split else None
    dataset = MappedDataset(MemoryReader(data, block_size=64), indices)
    kept = dataset.indices
    for rank in range(world):
        loader = make_loader(dataset, 50, shuffle=shuffle, seed=2, epoch=1, rank=rank, world=world)
        batches = list(loader)
        assert len(batches) == len(list(loader.sampler))
        for positions, batch in zip(loader.sampler, batches):
            _same(batch, dataset.get_batch(positions))
            wanted = kept[positions]
            assert batch["index"].tolist() == wanted.tolist()
            for var in ("x", "y"):
                assert np.array_equal(batch[var].numpy(), data.parts["all"][var].values[wanted])
                assert batch[var].is_contiguous()


def test_public_batches_still_check_positions():
    dataset = MappedDataset(MemoryReader(_collection()), np.arange(10, 20))
    _same(dataset[[-1, 0]], dataset[np.array([9, 0])])  # counted from the end, as for a list
    assert dataset[[]]["index"].numel() == 0
    for bad in ([10], [-11], [0, 10], np.array([3, -11]), torch.tensor([2**40])):
        with pytest.raises(IndexError):
            dataset[bad]
    with pytest.raises(IndexError):
        dataset.reader.take(0, np.array([1, -1]))  # numpy would wrap a negative row


def test_subclass_batches_still_go_through_get_batch():
    class Tagged(MappedDataset):
        def get_batch(self, positions):
            return {**super().get_batch(positions), "tag": torch.ones(1)}

    dataset = Tagged(MemoryReader(_collection()))
    assert all("tag" in batch for batch in make_loader(dataset, 100, shuffle=True))
