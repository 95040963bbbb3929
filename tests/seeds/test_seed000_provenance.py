"""Seed 000: ``open_dataset(..., provenance=True)`` gives flu samples their ``origin`` and ``scale``,
so ``frames / scale`` is the table's unscaled values, in every format; opt-in, refused elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import stored_sequences
from tests.seeds.flu_files import copy_as, flu_mix
from trainset import open_dataset
from trainset.errors import TrainsetError
from trainset.loaders.mapped import make_loader


def _table_frame(table, origin: str, weeks, places) -> np.ndarray:
    """(season_week, place) values of the table group named by an origin ``H1/H2/season/sample#copy``."""
    h1, h2, season, sample = origin.split("#")[0].split("/")
    rows = table[(table["datasetH1"] == h1) & (table["datasetH2"] == h2)
                 & (table["fluseason"] == int(season)) & (table["sample"].astype(str) == sample)]
    grid = rows.pivot_table(index="season_week", columns="location_code", values="value")
    return grid.reindex(index=weeks, columns=places).fillna(0.0).to_numpy()


@pytest.fixture
def mix(tmp_path, axis, table_factory):
    path, table, _ = flu_mix(tmp_path / "d", axis, table_factory)
    return path, table, axis


@pytest.mark.parametrize("fmt", ["netcdf", "hdf5", "zarr", "webdataset"])
def test_frames_over_scale_are_the_unscaled_table_values(mix, fmt):
    path, table, axis = mix
    path = path if fmt == "netcdf" else copy_as(path, fmt)
    samples = list(open_dataset(path, provenance=True))
    assert len(samples) == 10
    scales = [float(s["scale"]) for s in samples]
    assert sum(s != 1.0 for s in scales) == 6  # the fluview frames were rescaled, flepi ones not
    for s in samples:
        assert isinstance(s["origin"], str) and s["scale"].dtype == torch.float64
        expected = _table_frame(table, s["origin"], axis.week_numbers, list(axis.places))
        np.testing.assert_allclose(s["frames"][0].numpy() / s["scale"].numpy(), expected, rtol=1e-5, atol=1e-4)


def test_batches_carry_a_list_of_origins_and_a_scale_tensor(mix):
    path, _, _ = mix
    plain = open_dataset(path, split="train")
    ds = open_dataset(path, split="train", provenance=True)
    batch = next(iter(make_loader(ds, 4)))
    assert isinstance(batch["origin"], list) and len(batch["origin"]) == 4
    assert batch["scale"].shape == (4,) and batch["origin"][0] == "fluview/fluview/2012/0#0"
    assert set(plain[0]) == {"frames", "index"}  # opt-in: the default stays numeric only
    torch.testing.assert_close(ds[[0, 1]]["frames"], plain[[0, 1]]["frames"])


def test_provenance_is_refused_on_a_dataset_without_origins(tmp_path):
    path = stored_sequences(tmp_path, "pulses", 20, seed=1, length=24)
    with pytest.raises(TrainsetError, match=r"provenance=True needs .*lacks \['origin', 'scale'\]"):
        open_dataset(path, provenance=True)
