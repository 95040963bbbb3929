"""The WebDataset batch loader plans each shuffle window at once (issue 17): a batch whose samples
lie in several sources is gathered whole from its major source and then patched with the others'
rows. Its batches must still be exactly the concatenating loader's, over windows of one, two and
three sources and rows of zero bytes, and every shard a batch reads must be checked before and
after its gather."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from tests.loaders.test_wds_fast import FMT, assert_same_batches, reference_batches
from trainset.collection import Collection
from trainset.io.wds import read
from trainset.loaders import wds
from trainset.loaders.wds import WdsDataset


def mixed_store(tmp_path: Path) -> Path:
    """60 samples in members of 7 and shards of 20: data [3], a zero-byte variable, labels."""
    rng = np.random.default_rng(7)
    data = xr.Dataset({"data": (("sample", "time"), rng.normal(size=(60, 3)).astype(np.float32)),
                       "empty": (("sample", "k"), np.zeros((60, 0), np.float32)),
                       "labels": (("sample",), rng.integers(0, 9, size=60))})
    path = FMT.path_for(tmp_path, "mixed")
    FMT.write(Collection.single(data, attrs={"task": "t"}), path, None, samples_per_member=7, samples_per_shard=20)
    return path


@pytest.mark.parametrize("seed", range(6))
def test_layout_agrees_with_counting_each_batch(seed):
    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, 9))
    sources = rng.choice(rng.choice(9, size=int(rng.integers(1, 5)), replace=False), size=int(rng.integers(1, 60)))
    layout = wds._layout(sources, size)
    patched = {}  # position -> source it is patched from
    for b, c, lo, hi in layout.groups:
        for position in (layout.others[lo:hi] if layout.others is not None else []):
            assert position // size == b and sources[position] == layout.used[c] and position not in patched
            patched[int(position)] = layout.used[c]
    stand_ins = dict(zip(*(a.tolist() for a in (layout.minor, layout.stand_in)))) if layout.minor is not None else {}
    for b, begin in enumerate(range(0, len(sources), size)):
        counts = Counter(sources[begin:begin + size].tolist())
        major = layout.used[layout.major[b]]
        assert counts[major] == max(counts.values())
        assert list(layout.present[b]) == sorted(counts)
        for position in range(begin, min(begin + size, len(sources))):
            if sources[position] == major:
                assert position not in patched
            else:  # patched from its own source, after a stand-in row of the major source of its batch
                assert patched[position] == sources[position]
                assert stand_ins[position] // size == b and sources[stand_ins[position]] == major
    assert len(patched) == len(stand_ins)


@pytest.mark.parametrize("options,patched", [  # patched: how many other sources batches were patched from
    ({"shuffle": True, "shuffle_buffer": 16, "batch_size": 8}, {0, 1}),  # tails carried into the next window
    ({"shuffle": True, "shuffle_buffer": 45, "batch_size": 6}, {1, 2}),  # windows over three shards
    ({"shuffle": False, "batch_size": 9}, {0, 1}),
])
def test_batches_over_several_sources_equal_the_concatenating_loader(tmp_path, monkeypatch, options, patched):
    ds = WdsDataset(mixed_store(tmp_path), seed=3, **options)
    patches = Counter()
    real = wds._Window._gather

    def counting(self, var, take):
        patches[len(take.fixes)] += 1
        return real(self, var, take)

    monkeypatch.setattr(wds._Window, "_gather", counting)
    for epoch in range(3):
        ds.set_epoch(epoch)
        got = list(ds)
        assert_same_batches(got, reference_batches(ds))
        assert [tuple(b["empty"].shape) for b in got] == [(len(b["index"]), 0) for b in got]
    assert set(patches) == patched


def test_every_shard_a_batch_reads_is_checked_before_and_after_its_gather(tmp_path, monkeypatch):
    path = mixed_store(tmp_path)
    checked, gathered = [], []
    real_check, real_gather = read.MappedShard.check, wds._Window._gather
    monkeypatch.setattr(read.MappedShard, "check", lambda shard: checked.append(shard.name) or real_check(shard))
    monkeypatch.setattr(wds._Window, "_gather",
                        lambda self, var, take: gathered.append(len(checked)) or real_gather(self, var, take))
    firsts = [rec["first"] for rec in read.read_index(path)["shards"]]
    for batch in WdsDataset(path, shuffle=True, shuffle_buffer=45, batch_size=6, seed=1):
        shards = np.searchsorted(firsts, batch["index"].numpy(), side="right") - 1
        files = {path / f"shard-{shard:06d}.tar" for shard in shards.tolist()}
        before, after = checked[:gathered[0]], checked[gathered[-1]:]
        assert files <= set(before) and files <= set(after)
        checked.clear()
        gathered.clear()


@pytest.mark.parametrize("options", [
    {"shuffle": True, "shuffle_buffer": 16, "batch_size": 8},
    {"shuffle": False, "batch_size": 9},
])
def test_no_variables_yields_index_only_batches(tmp_path, options):
    path = mixed_store(tmp_path)
    every = list(WdsDataset(path, seed=3, **options))
    none = list(WdsDataset(path, seed=3, variables=[], **options))
    assert none and [sorted(batch) for batch in none] == [["index"]] * len(every)
    for got, want in zip(none, every):  # the same samples in the same order as when variables are read
        assert got["index"].tolist() == want["index"].tolist()


def test_layout_does_not_depend_on_how_large_source_numbers_are():
    # numbers only grow within a window (each Fortran-ordered member copy is a new source): the
    # layout must be sized by the sources used, not by the largest number
    small = np.array([1, 0, 1, 1, 2, 0, 2, 2, 1])
    layout = wds._layout(small, 4)
    big = wds._layout(np.array([0, 10**12, 2**62])[small], 4)
    assert big.used == [0, 10**12, 2**62]
    assert (big.major, big.groups) == (layout.major, layout.groups)
    assert big.present == [tuple(big.used[i] for i in batch) for batch in layout.present]
    for name in ("minor", "stand_in", "others"):
        np.testing.assert_array_equal(getattr(big, name), getattr(layout, name))
