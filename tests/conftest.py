"""Shared fixtures: small synthetic combined tables built on the real season axis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainset.seasons import SeasonAxis


@pytest.fixture
def axis() -> SeasonAxis:
    return SeasonAxis.from_config({})


def synthetic_table(
    axis: SeasonAxis,
    groups: list[tuple[str, str, int, int]],
    weeks: range = range(5, 41),
    drop: dict[tuple, list[str]] | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """A complete table for ``groups`` (H1, H2, season, sample) over ``weeks`` x axis places.

    ``drop`` maps a group to the place codes it lacks. Values are a smooth epidemic curve per
    place times a random amplitude, so every group/place is distinguishable.
    """
    drop = drop or {}
    rng = np.random.default_rng(seed)
    frames = []
    week = np.asarray(list(weeks))
    for h1, h2, season, sample in groups:
        places = [p for p in axis.places if p not in drop.get((h1, h2, season, sample), [])]
        amp = rng.uniform(10, 100, size=len(places))
        curve = np.exp(-0.5 * ((week - 20) / 5.0) ** 2)
        values = amp[None, :] * curve[:, None]
        ends = [axis.week_end(season, int(w)) for w in week]
        frames.append(pd.DataFrame({
            "datasetH1": h1, "datasetH2": h2, "sample": sample, "fluseason": season,
            "location_code": np.tile(places, len(week)),
            "season_week": np.repeat(week, len(places)),
            "value": values.ravel(),
            "week_enddate": np.repeat(np.asarray(ends, dtype="datetime64[ns]"), len(places)),
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def table_factory(axis):
    def make(groups, **kwargs):
        return synthetic_table(axis, groups, **kwargs)

    return make


def stored_sequences(folder, recipe: str, n: int, seed: int, length: int, fmt: str = "hdf5", **options):
    """A seed-001 demo recipe written as a stored dataset in ``folder`` with ``splits.json`` beside
    it; returns its path (``TS_<recipe>.h5``, ``-wds``, ...)."""
    from trainset.domains.sequences import RECIPES, frame_sequences, make_sequence_tables
    from trainset.io.base import get_format
    from trainset.splits import make_splits, write_splits

    inputs, labels = make_sequence_tables(recipe, n, seed=seed, length=length)
    collection = frame_sequences(inputs, labels, RECIPES[recipe], recipe)
    splits = make_splits(len(collection), {"method": "random"}, seed=seed)
    suffix = {"hdf5": ".h5", "webdataset": "-wds", "zarr": ".zarr", "netcdf": ".nc"}[fmt]
    path = folder / f"TS_{recipe}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    get_format(fmt).write(collection, path, splits, **options)
    write_splits(splits, path.parent / "splits.json")
    return path
