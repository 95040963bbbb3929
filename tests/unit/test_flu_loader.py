"""FluDataset over a real NetCDF file written with xarray in tmp_path."""

import numpy as np
import pytest
import torch
import xarray as xr
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

from trainset.augment import Augment
from trainset.errors import TrainsetError
from trainset.loaders import FluDataset
from trainset.transforms import make_transform

N, W, P = 24, 53, 5
AUG = Augment(poisson=True, max_shift=4, rescale=(0.5, 2.0))


def _frames(n: int = N) -> xr.DataArray:
    rng = np.random.default_rng(1)
    values = rng.poisson(20.0, size=(n, 1, W, P)).astype(np.float32)
    values[:, :, -1] = 0.0  # week 53 padding
    return xr.DataArray(
        values,
        dims=("sample", "feature", "season_week", "place"),
        coords={
            "sample": np.arange(n),
            "feature": ["value"],
            "season_week": np.arange(1, W + 1),
            "place": [f"{i:02d}" for i in range(1, P + 1)],
            "origin": ("sample", [f"fluview/fluview/2015/0/copy{i}" for i in range(n)]),
            "datasetH1": ("sample", ["fluview"] * n),
            "datasetH2": ("sample", ["fluview"] * n),
            "fluseason": ("sample", np.full(n, 2015)),
            "copy": ("sample", np.arange(n)),
            "scale": ("sample", np.ones(n)),
        },
        attrs={"mix_cfg": "{'fluview': {'multiplier': 1}}"},
        name="frames",
    )


@pytest.fixture(scope="module")
def nc_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("nc") / "TS_TEST_2026-01-01.nc"
    _frames().to_netcdf(path, engine="netcdf4")
    return path


def test_reads_netcdf_shape_dtype_metadata(nc_path):
    ds = FluDataset.from_netcdf(nc_path, transform="sqrt_max")
    assert len(ds) == N
    item = ds[3]
    assert isinstance(item, torch.Tensor) and item.dtype == torch.float32
    assert item.shape == (1, W, P)
    assert ds.origins[2] == "fluview/fluview/2015/0/copy2"
    assert ds.attrs["mix_cfg"].startswith("{")
    assert float(ds[0].max()) <= 2.0 + 1e-6


def test_getitems_equals_stacked_getitem_and_inverse(nc_path):
    ds = FluDataset.from_netcdf(nc_path, transform="zscore", augment=AUG, seed=3)
    ds.set_epoch(2)
    idx = [5, 0, 17, -1]
    batch = ds.get_batch(idx)
    assert batch.shape == (4, 1, W, P) and batch.dtype == torch.float32
    torch.testing.assert_close(batch, torch.stack([ds[i] for i in idx]), rtol=0, atol=0)
    torch.testing.assert_close(torch.stack(ds.__getitems__(idx)), batch, rtol=0, atol=0)
    torch.testing.assert_close(ds[idx], batch, rtol=0, atol=0)
    torch.testing.assert_close(ds[-1], ds[N - 1], rtol=0, atol=0)
    plain = FluDataset.from_netcdf(nc_path, transform="zscore")
    back = plain.inverse(plain.get_batch([1, 2]))
    np.testing.assert_allclose(back.numpy(), plain.data[[1, 2]], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(plain.inverse(plain[4].numpy()), plain.data[4], atol=1e-3)


def test_dataloader_batches_equal_getitems(nc_path):
    ds = FluDataset.from_netcdf(nc_path, transform="sqrt_max", augment=AUG, seed=1)
    batches = list(DataLoader(ds, batch_size=8))
    assert [b.shape for b in batches] == [(8, 1, W, P)] * 3
    torch.testing.assert_close(torch.cat(batches), ds.get_batch(range(N)), rtol=0, atol=0)
    sampler = BatchSampler(SequentialSampler(ds), batch_size=8, drop_last=False)
    no_collate = list(DataLoader(ds, sampler=sampler, batch_size=None))
    torch.testing.assert_close(torch.cat(no_collate), torch.cat(batches), rtol=0, atol=0)


def test_epochs_change_draws_and_workers_do_not(nc_path):
    ds = FluDataset.from_netcdf(nc_path, transform="sqrt_max", augment=AUG, seed=5)
    one = torch.cat(list(DataLoader(ds, batch_size=6, num_workers=0)))
    two = torch.cat(list(DataLoader(ds, batch_size=6, num_workers=2)))
    torch.testing.assert_close(one, two, rtol=0, atol=0)
    ds.set_epoch(1)
    again = torch.cat(list(DataLoader(ds, batch_size=6, num_workers=2)))
    assert not torch.equal(one, again)
    perm = np.random.default_rng(0).permutation(N).tolist()  # fetch order does not matter
    shuffled = torch.cat(list(DataLoader(ds, batch_size=5, sampler=perm, num_workers=2)))
    torch.testing.assert_close(shuffled, again[perm], rtol=0, atol=0)


def test_persistent_workers_follow_set_epoch(nc_path):
    ds = FluDataset.from_netcdf(nc_path, transform="sqrt_max", augment=AUG, seed=5)
    loader = DataLoader(ds, batch_size=12, num_workers=1, persistent_workers=True)
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        got = torch.cat(list(loader))
        torch.testing.assert_close(got, ds.get_batch(range(N)), rtol=0, atol=0)


def test_already_fitted_transform_is_used_as_is(nc_path):
    frames = _frames().values
    fitted = make_transform("linear_max").fit(frames[:4] * 10)
    ds = FluDataset.from_netcdf(nc_path, transform=fitted)
    assert ds.transform is fitted
    unfitted = make_transform("linear_max")
    ds2 = FluDataset.from_netcdf(nc_path, transform=unfitted, fit_indices=[0, 1])
    assert not unfitted.fitted and ds2.transform.fitted
    np.testing.assert_allclose(ds2.transform.state["max"], [frames[:2].max()])


def test_bad_files_raise(tmp_path, nc_path):
    with pytest.raises(TrainsetError, match="no such file"):
        FluDataset.from_netcdf(tmp_path / "missing.nc")
    junk = tmp_path / "junk.nc"
    junk.write_text("not netcdf")
    with pytest.raises(TrainsetError, match="junk.nc"):
        FluDataset.from_netcdf(junk)
    with pytest.raises(TrainsetError, match="'other'.*frames"):
        FluDataset.from_netcdf(nc_path, variable="other")
    wrong = tmp_path / "wrong.nc"
    _frames(3).transpose("sample", "feature", "place", "season_week").to_netcdf(wrong)
    with pytest.raises(TrainsetError, match="dims"):
        FluDataset.from_netcdf(wrong)
    with pytest.raises(TrainsetError, match="unknown transform"):
        FluDataset.from_netcdf(nc_path, transform="nope")
