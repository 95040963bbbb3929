"""Flight forecasts (seed 002): synthetic site-day table, framing to thresholds, date-block splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from trainset.domains.flights import (DATE_FEATURES, HOURS, SITE_FEATURES, THRESHOLDS, WEATHER_FEATURES,
                                      date_block_splits, frame_flights, make_flight_table)
from trainset.errors import TrainsetError

SITES, YEARS = 15, 2


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return make_flight_table(n_sites=SITES, years=YEARS, seed=3)


@pytest.fixture(scope="module")
def collection(table):
    return frame_flights(table, "flights")


def test_one_row_per_site_and_day(table):
    assert len(table) == SITES * YEARS * 365
    assert not table.duplicated(["site_id", "date"]).any()
    assert table.groupby("site_id").size().eq(YEARS * 365).all()
    assert len(WEATHER_FEATURES) >= 20
    assert all(f"{name}_{hour}" in table for name in WEATHER_FEATURES for hour in HOURS)


def test_table_is_deterministic_under_the_seed(table):
    pd.testing.assert_frame_equal(table, make_flight_table(n_sites=SITES, years=YEARS, seed=3))
    other = make_flight_table(n_sites=SITES, years=YEARS, seed=4)
    assert not np.allclose(table["temp_2m_h12"], other["temp_2m_h12"])


def test_many_zero_days_but_not_most(table):
    zero = (table["score"] == 0).mean()
    assert 0.2 <= zero <= 0.7
    assert (table["score"] >= 0).all() and table["score"].max() <= 200
    assert (table["score"] > 100).mean() > 0.01  # the top threshold is reachable


def test_score_follows_its_drivers(table):
    score = table["score"]
    def rho(column):
        return table[column].corr(score, method="spearman")
    assert rho("boundary_layer_height_h15") > 0.3
    assert rho("shortwave_radiation_h12") > 0.2
    assert rho("lapse_rate_h12") > 0.1
    assert rho("precipitation_h12") < -0.1
    assert rho("wind_speed_850hpa_h12") < 0
    weekend = pd.to_datetime(table["date"]).dt.day_of_week >= 5
    assert score[weekend].mean() > score[~weekend].mean()


def test_weather_persists_and_follows_the_season(table):
    site = table[table["site_id"] == table["site_id"].iloc[0]]
    temp = site["temp_850hpa_h12"].to_numpy()
    assert np.corrcoef(temp[:-1], temp[1:])[0, 1] > 0.6
    month = pd.to_datetime(site["date"]).dt.month
    assert temp[month.isin([6, 7, 8]).to_numpy()].mean() > temp[month.isin([12, 1, 2]).to_numpy()].mean() + 8


def test_frame_features_targets_and_order(table, collection):
    part = collection.parts["flights"]
    n, n_features = len(table), len(WEATHER_FEATURES) * len(HOURS) + len(SITE_FEATURES) + len(DATE_FEATURES)
    assert part["features"].shape == (n, n_features) and part["features"].dtype == np.float32
    assert part["site"].dtype == np.int64 and part["date"].dtype == np.int64
    assert part["targets"].shape == (n, len(THRESHOLDS)) and part["targets"].dtype == np.float32
    names = list(part["feature"].values)
    assert names == collection.attrs["feature_names"]
    assert names[0] == f"{WEATHER_FEATURES[0]}_h09" and names[len(WEATHER_FEATURES)] == f"{WEATHER_FEATURES[0]}_h12"
    assert names[-len(DATE_FEATURES):] == list(DATE_FEATURES)
    assert collection.attrs["task"] == "thresholds" and collection.attrs["thresholds"] == list(THRESHOLDS)
    # samples by (date, site_id); site indexes the sorted ids; date and day agree
    date, site_id = part["date"].values, part["site_id"].values
    assert (np.diff(date) >= 0).all() and all(np.diff(site_id[date == date[0]]) > 0)
    ids = np.sort(table["site_id"].unique())
    np.testing.assert_array_equal(ids[part["site"].values], site_id)
    np.testing.assert_array_equal(part["day"].values.astype("datetime64[D]").astype(np.int64), date)
    # features agree with the table row of the same (site_id, day)
    rows = table.set_index(["site_id", "date"]).loc[list(zip(site_id[:50], pd.to_datetime(part["day"].values[:50])))]
    np.testing.assert_array_equal(part["features"].values[:50, names.index("cape_h15")], rows["cape_h15"].to_numpy())
    # date features: weekend, year offset, unit circle
    feature = part["features"].values
    weekend = pd.to_datetime(part["day"].values).day_of_week.to_numpy() >= 5
    np.testing.assert_array_equal(feature[:, names.index("weekend")], weekend.astype(np.float32))
    year = feature[:, names.index("year")]
    assert year.min() == 0 and year.max() == YEARS - 1
    np.testing.assert_allclose(feature[:, names.index("doy_sin")] ** 2 + feature[:, names.index("doy_cos")] ** 2, 1,
                               rtol=1e-5)


def test_targets_are_monotone_and_match_the_score(table, collection):
    targets = collection.parts["flights"]["targets"].values
    assert set(np.unique(targets)) == {0.0, 1.0}
    assert (np.diff(targets, axis=1) <= 0).all()  # exceeding 50 km implies exceeding 40 km
    score = np.sort(table["score"].to_numpy())
    np.testing.assert_array_equal(np.sort(targets.sum(1)), np.sort((score[:, None] > np.array(THRESHOLDS)).sum(1)))


def test_framing_ignores_row_order(table, collection):
    shuffled = frame_flights(table.sample(frac=1, random_state=0), "flights")
    xr.testing.assert_identical(shuffled.parts["flights"], collection.parts["flights"])


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t.drop(columns="score"), "missing column 'score'"),
    (lambda t: t.drop(columns="cloud_base_h12"), "missing column 'cloud_base_h12'"),
    (lambda t: pd.concat([t, t.iloc[:1]]), r"duplicate \(site_id, date\)"),
    (lambda t: t.assign(lapse_rate_h09=t["lapse_rate_h09"].where(t.index != 5)), "column 'lapse_rate_h09' has 1 missing"),
    (lambda t: t.assign(score=t["score"].where(t.index != 3, -1.0)), "column 'score' has 1 negative"),
    (lambda t: t.assign(altitude=t["altitude"].where(t.index != 40, 9.0)), "column 'altitude' varies within a site"),
])
def test_bad_tables_are_refused_naming_the_column(table, change, message):
    with pytest.raises(TrainsetError, match=message):
        frame_flights(change(table.iloc[:2000]), "x")


def test_date_block_splits_keep_days_apart(collection):
    date = collection.parts["flights"]["date"].values
    for shuffle in (False, True):
        splits = date_block_splits(collection, seed=1, block_days=28, shuffle=shuffle)
        assert set(splits) == {"train", "val", "test"} and all(ix.size for ix in splits.values())
        assert sum(ix.size for ix in splits.values()) == len(date)
        days = {name: set(date[ix]) for name, ix in splits.items()}
        assert not (days["train"] & days["val"] or days["train"] & days["test"] or days["val"] & days["test"])
        block = (date - date.min()) // 28
        owner = np.empty(len(date), dtype=object)
        for name, ix in splits.items():
            owner[ix] = name
        assert pd.Series(owner).groupby(block).nunique().eq(1).all()  # whole blocks only
    chrono = date_block_splits(collection, seed=1)
    assert date[chrono["train"]].max() < date[chrono["val"]].min() <= date[chrono["val"]].max() < date[chrono["test"]].min()
    a, b = (date_block_splits(collection, seed=s, shuffle=True) for s in (1, 2))
    assert all(np.array_equal(x, y) for x, y in zip(a.values(), date_block_splits(collection, 1, shuffle=True).values()))
    assert not np.array_equal(a["val"], b["val"])
    with pytest.raises(TrainsetError, match="lower block_days"):
        date_block_splits(collection, seed=1, block_days=400)
