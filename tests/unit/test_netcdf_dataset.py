"""Frames file -> NetCDF dataset: layout, padding, attributes, determinism, atomic failure,
and the torch loader reading the real file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import xarray as xr

from trainset.datasets import write_mix_netcdf
from trainset.errors import TrainsetError
from trainset.loaders import FluDataset
from trainset.mixing.build import build_frames
from trainset.mixing.store import write_frames
from trainset.table.validate import validate_table

GROUPS = [("fluview", "fluview", s, 0) for s in (2012, 2013)] + [("flepi", "flepi", 2020, k) for k in range(3)]
MIX = {"families": {"fluview": {"multiplier": 2, "to_scale": True}, "flepi": {"multiplier": 1}},
       "scaling_distribution": {"values": [100.0, 200.0]}}


@pytest.fixture
def frames_file(axis, table_factory, tmp_path):
    table, _ = validate_table(table_factory(GROUPS, drop={GROUPS[0]: ["06"]}), axis)
    frames = build_frames(table, MIX, "M", axis, seed=11)
    path = tmp_path / "frames.parquet"
    write_frames(frames, path, {"inputs": {"table": "abc123"}})
    return path, frames


def test_layout_and_attributes(frames_file, tmp_path):
    path, frames = frames_file
    out = tmp_path / "TS_M.nc"
    write_mix_netcdf(path, out, "M", MIX, {}, seed=11)
    with xr.open_dataset(out) as ds:
        arr = ds["frames"]
        assert arr.dims == ("sample", "feature", "season_week", "place") and arr.dtype == np.float32
        assert arr.shape == (7, 1, 53, 51)
        np.testing.assert_allclose(arr.values[:, 0], frames.values.astype(np.float32))
        assert list(arr["origin"].values[:2]) == ["fluview/fluview/2012/0#0", "fluview/fluview/2012/0#1"]
        assert json.loads(arr.attrs["mix_cfg"]) == MIX
        assert arr.attrs["input_table_sha256"] == "abc123"
        assert list(arr.attrs["main_origins"]) == list(arr["origin"].values)
        np.testing.assert_allclose(arr["scale"].values, frames.frames["scale"])


def test_padding_and_byte_identical_rewrites(frames_file, tmp_path):
    path, _ = frames_file
    mix = {**MIX, "pad_to": [64, 64]}
    write_mix_netcdf(path, tmp_path / "a.nc", "M", mix, {}, seed=11)
    write_mix_netcdf(path, tmp_path / "b.nc", "M", mix, {}, seed=11)
    assert (tmp_path / "a.nc").read_bytes() == (tmp_path / "b.nc").read_bytes()
    with xr.open_dataset(tmp_path / "a.nc") as ds:
        assert ds["frames"].shape == (7, 1, 64, 64)
        assert str(ds["place"].values[51]) == "PAD_51" and int(ds["season_week"].values[-1]) == 64
        assert float(ds["frames"].values[:, :, :, 51:].max()) == 0.0


def test_too_small_padding_fails_without_output(frames_file, tmp_path):
    path, _ = frames_file
    with pytest.raises(TrainsetError, match="pad_to"):
        write_mix_netcdf(path, tmp_path / "c.nc", "M", {**MIX, "pad_to": [40, 40]}, {}, seed=11)
    assert list(tmp_path.glob("c.nc*")) == [] and not list(tmp_path.glob(".c.nc*"))


def test_loader_reads_the_written_dataset(frames_file, tmp_path):
    path, frames = frames_file
    out = tmp_path / "TS_M.nc"
    write_mix_netcdf(path, out, "M", MIX, {}, seed=11)
    ds = FluDataset.from_netcdf(out, transform="sqrt_max")
    assert len(ds) == 7 and ds[0].shape == (1, 53, 51) and ds[0].dtype == torch.float32
    batch = torch.stack([ds[i] for i in range(len(ds))])
    np.testing.assert_allclose(ds.inverse(batch).numpy()[:, 0], frames.values, rtol=1e-5, atol=1e-4)
    assert ds.origins[2] == "fluview/fluview/2013/0#0"


def test_frames_streamed_in_row_groups_must_be_whole_and_in_order(frames_file, tmp_path):
    """write_mix_netcdf streams row groups: cells in any order inside one are fine; row groups
    out of frame order are refused with the fix, and nothing is written."""
    import pyarrow.parquet as pq

    path, frames = frames_file
    table = pq.read_table(path)
    order = np.random.default_rng(0).permutation(table.num_rows)
    pq.write_table(table.take(order), tmp_path / "shuffled.parquet")  # one row group, cells shuffled
    write_mix_netcdf(tmp_path / "shuffled.parquet", tmp_path / "a.nc", "M", MIX, {}, seed=11)
    with xr.open_dataset(tmp_path / "a.nc") as ds:
        np.testing.assert_allclose(ds["frames"].values[:, 0], frames.values.astype(np.float32))
    later_first = table.take(np.argsort(-table.column("frame").to_numpy(), kind="stable"))
    pq.write_table(later_first, tmp_path / "reversed.parquet", row_group_size=2 * 53 * 51)
    with pytest.raises(TrainsetError, match="does not hold whole frames 0.. in order"):
        write_mix_netcdf(tmp_path / "reversed.parquet", tmp_path / "b.nc", "M", MIX, {}, seed=11)
    assert not (tmp_path / "b.nc").exists()
