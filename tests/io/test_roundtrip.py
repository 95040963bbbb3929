"""One dataset written in all four formats yields identical samples through open_dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

import trainset
from trainset.collection import Collection
from trainset.io.base import get_format
from trainset.loaders.mapped import make_loader
from trainset.splits import make_splits

FORMATS = ["netcdf", "hdf5", "zarr", "webdataset"]
SUFFIX = {"netcdf": ".nc", "hdf5": ".h5", "zarr": ".zarr", "webdataset": "-wds"}


def one_part(n: int = 300) -> Collection:
    rng = np.random.default_rng(0)
    data = xr.Dataset(
        {
            "data": (("sample", "time", "feature"), rng.normal(size=(n, 20, 3)).astype(np.float32)),
            "labels": (("sample", "horizon", "target"), rng.normal(size=(n, 5, 2)).astype(np.float32)),
            "klass": (("sample",), rng.integers(0, 4, size=n).astype(np.int64)),
        },
        coords={"origin": ("sample", [f"site{i % 7}/{i}" for i in range(n)]), "site": ("sample", np.arange(n) % 7)},
    )
    return Collection.single(data, name="demo", attrs={"task": "seq2seq_regression", "config": {"seed": 1}})


def two_parts() -> Collection:
    rng = np.random.default_rng(1)
    parts = {}
    for name, n, params, shocks in (("nk", 40, 4, 3), ("var", 25, 6, 2)):
        parts[name] = xr.Dataset(
            {
                "theta": (("sample", "param"), rng.uniform(size=(n, params)).astype(np.float32)),
                "irfs": (("sample", "shock", "horizon", "variable"), rng.normal(size=(n, shocks, 41, 3)).astype(np.float32)),
            },
            coords={"variable": ["output", "inflation", "rate"]},
        )
    return Collection(parts, attrs={"task": "irf"})


def write_all(collection: Collection, folder, splits, **wds):
    paths = {}
    for name in FORMATS:
        path = folder / f"TS_x{SUFFIX[name]}"
        options = wds if name == "webdataset" else {}
        get_format(name).write(collection, path, splits, **options)
        paths[name] = path
    return paths


def samples_of(dataset) -> list[dict]:
    if isinstance(dataset, torch.utils.data.IterableDataset):
        return list(dataset)
    return [dataset[i] for i in range(len(dataset))]


def assert_same_samples(expected: list[dict], got: list[dict], where: str) -> None:
    assert len(got) == len(expected), where
    for want, have in zip(expected, got):
        assert set(have) == set(want), where
        for key, value in want.items():
            if isinstance(value, str):
                assert have[key] == value, where
                continue
            have_value = have[key].numpy() if isinstance(have[key], torch.Tensor) else np.asarray(have[key])
            assert have_value.dtype == np.asarray(value).dtype, (where, key)
            np.testing.assert_array_equal(have_value, value, err_msg=f"{where} {key}")


@pytest.mark.parametrize("per_member", [1, 16])
def test_all_formats_yield_identical_samples(tmp_path, per_member):
    collection = one_part()
    splits = make_splits(len(collection), {"method": "group"}, seed=3, groups=collection.parts["demo"]["site"].values)
    paths = write_all(collection, tmp_path, splits, samples_per_member=per_member, samples_per_shard=64)
    expected = list(collection.iter_samples())
    for name, path in paths.items():
        assert_same_samples(expected, samples_of(trainset.open_dataset(path)), name)
        for split, indices in splits.items():
            want = list(collection.iter_samples(indices))
            assert_same_samples(want, samples_of(trainset.open_dataset(path, split=split)), f"{name}/{split}")


def test_multi_part_collections_round_trip(tmp_path):
    collection = two_parts()
    splits = make_splits(len(collection), {"method": "random"}, seed=2)
    paths = write_all(collection, tmp_path, splits)
    expected = list(collection.iter_samples())
    for name, path in paths.items():
        assert_same_samples(expected, samples_of(trainset.open_dataset(path)), name)
        loaded, stored_splits = get_format(name).load(path)
        for part in collection.parts:
            xr.testing.assert_identical(loaded.parts[part], collection.parts[part])
        assert {k: list(v) for k, v in stored_splits.items()} == {k: list(v) for k, v in splits.items()}


@pytest.mark.parametrize("name", ["netcdf", "hdf5", "zarr"])
def test_shuffled_block_loader_visits_every_sample_once(tmp_path, name):
    collection = one_part(700)
    path = write_all(collection, tmp_path, None)[name]
    dataset = trainset.open_dataset(path)
    loader = make_loader(dataset, batch_size=64, shuffle=True, seed=5, epoch=1)
    batches = list(loader)
    seen = torch.cat([b["index"] for b in batches]).numpy()
    assert sorted(seen.tolist()) == list(range(700))
    first = batches[0]
    np.testing.assert_array_equal(first["data"].numpy(), collection.parts["demo"]["data"].values[first["index"].numpy()])
    again = torch.cat([b["index"] for b in make_loader(dataset, 64, shuffle=True, seed=5, epoch=1)]).numpy()
    other = torch.cat([b["index"] for b in make_loader(dataset, 64, shuffle=True, seed=5, epoch=2)]).numpy()
    assert np.array_equal(seen, again) and not np.array_equal(seen, other)


def test_default_torch_dataloader_works_with_workers(tmp_path):
    collection = one_part(300)
    path = write_all(collection, tmp_path, None)["hdf5"]
    loader = torch.utils.data.DataLoader(trainset.open_dataset(path), batch_size=50, num_workers=2)
    seen = torch.cat([b["index"] for b in loader]).tolist()
    assert seen == list(range(300))
