"""Tests for the synthetic combined flu table (trainset.demo.flu)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from trainset.demo import make_flu_table
from trainset.demo.flu import COLUMNS, KEYS, SAMPLES
from trainset.errors import TrainsetError
from trainset.seasons import SeasonAxis

TERRITORIES = {"60", "66", "69", "72", "78"}
DTYPES = {
    "datasetH1": "str", "datasetH2": "str", "sample": "int64", "fluseason": "int64",
    "location_code": "str", "season_week": "int64", "value": "float64",
    "week_enddate": "datetime64[ns]",
}


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    return make_flu_table("small", seed=0)


def _family(df: pd.DataFrame, h1: str) -> pd.DataFrame:
    return df[df["datasetH1"] == h1]


def _states(df: pd.DataFrame) -> pd.DataFrame:
    return df[~df["location_code"].isin(TERRITORIES | {"US"})]


def _csv_sha256(df: pd.DataFrame) -> str:
    return hashlib.sha256(df.to_csv().encode()).hexdigest()


def test_columns_and_dtypes_exact(small):
    assert list(small.columns) == COLUMNS == list(DTYPES)
    assert {col: str(dtype) for col, dtype in small.dtypes.items()} == DTYPES


def test_keys_unique_and_rows_sorted(small):
    assert not small.duplicated(KEYS).any()
    pd.testing.assert_frame_equal(small, small.sort_values(KEYS, ignore_index=True))


def test_values_non_negative_and_finite(small):
    assert np.isfinite(small["value"]).all()
    assert (small["value"] >= 0).all()
    assert small["week_enddate"].notna().all()


def test_season_and_week_agree_with_week_enddate(small):
    season, week = SeasonAxis.from_config({}).season_and_week(small["week_enddate"])
    np.testing.assert_array_equal(season, small["fluseason"].to_numpy())
    np.testing.assert_array_equal(week, small["season_week"].to_numpy())
    assert small["season_week"].between(1, 53).all()


def test_explicit_default_axis_gives_same_table(small):
    explicit = make_flu_table("small", 0, axis=SeasonAxis.from_config({}))
    pd.testing.assert_frame_equal(small, explicit)


@pytest.mark.parametrize(
    ("h1", "h2s", "seasons", "n_samples"),
    [
        ("fluview", {"fluview"}, set(range(2010, 2023)), 1),
        ("flusurv", {"csp_flusurv"}, set(range(2015, 2022)), 1),
        ("flepiR1", {"flepiR1"}, {2022, 2023}, SAMPLES["small"]["flepiR1"]),
    ],
)
def test_single_dataset_families(small, h1, h2s, seasons, n_samples):
    fam = _family(small, h1)
    assert set(fam["datasetH2"]) == h2s
    assert set(fam["fluseason"]) == seasons
    per_season = fam.groupby("fluseason")["sample"].agg(lambda s: sorted(s.unique()))
    assert all(samples == list(range(n_samples)) for samples in per_season)


def test_smh_has_54_datasets_one_season_each(small):
    smh = _family(small, "SMH_R4-R5")
    names = smh["datasetH2"].unique()
    assert len(names) == 54
    assert all(name.split("_")[0] in {"R4", "R5"} and name.count("_") == 2 for name in names)
    assert (smh.groupby("datasetH2")["fluseason"].nunique() == 1).all()
    assert set(smh.groupby("datasetH2")["fluseason"].first()) == {2023, 2024}
    n_samples = SAMPLES["small"]["SMH_R4-R5"]
    assert (smh.groupby("datasetH2")["sample"].agg(lambda s: set(s) == set(range(n_samples)))).all()


def test_fluview_states_missing_in_early_seasons(small):
    per_season = _family(small, "fluview").groupby("fluseason")["location_code"].nunique()
    assert per_season.loc[2010:2012].between(51 - 6, 51 - 4).all()  # FL plus 3-5 late joiners
    assert (per_season.loc[2013:] == 50).all()  # FL never reports
    assert "12" not in set(_family(small, "fluview")["location_code"])


def test_fluview_has_interior_gaps(small):
    fluview = _family(small, "fluview")
    step = fluview.groupby(["fluseason", "location_code"])["season_week"].diff().dropna()
    gap_lengths = sorted((step[step > 1] - 1).astype(int))
    assert gap_lengths.count(1) >= 4
    assert any(length in (2, 3) for length in gap_lengths)
    weeks = fluview.groupby(["fluseason", "location_code"])["season_week"]
    full_seasons = weeks.agg(["min", "max"])
    assert (full_seasons["min"] == 1).all() and full_seasons["max"].isin([52, 53]).all()


def test_flusurv_weeks_and_one_late_state(small):
    flusurv = _family(small, "flusurv")
    assert flusurv["season_week"].between(10, 45).all()
    seasons = sorted(flusurv["fluseason"].unique())
    present = flusurv.groupby("location_code")["fluseason"].nunique()
    assert sorted(present.value_counts().items()) == [(len(seasons) - 5, 1), (len(seasons), 50)]


def test_smh_national_is_state_sum_and_territories_present(small):
    smh = _family(small, "SMH_R4-R5")
    group = ["datasetH2", "fluseason", "sample", "season_week"]
    us = smh[smh["location_code"] == "US"].set_index(group)["value"]
    state_sum = _states(smh).groupby(group)["value"].sum()
    pd.testing.assert_series_equal(us.sort_index(), state_sum.sort_index(), check_names=False)
    assert TERRITORIES <= set(smh["location_code"])
    assert _states(smh)["location_code"].nunique() == 51


def test_only_smh_carries_national_and_territories(small):
    other = small[small["datasetH1"] != "SMH_R4-R5"]
    assert not other["location_code"].isin(TERRITORIES | {"US"}).any()


@pytest.mark.parametrize(("h1", "weekday"), [("fluview", 5), ("flusurv", 5), ("SMH_R4-R5", 5),
                                             ("flepiR1", 6)])
def test_week_end_weekdays(small, h1, weekday):
    assert (_family(small, h1)["week_enddate"].dt.day_of_week == weekday).all()


def test_magnitudes_and_peak_timing_are_plausible(small):
    assert _family(small, "fluview")["value"].max() < 15
    states = _states(small)
    keys = ["datasetH1", "datasetH2", "fluseason", "sample", "location_code"]
    peaks = states.loc[states.groupby(keys)["value"].idxmax()]
    peak_week = peaks.groupby("datasetH1")["season_week"]
    assert peak_week.median().between(12, 30).all()
    national = states.groupby(keys[:-1] + ["season_week"])["value"].sum().groupby(keys[:-1]).max()
    smh_peaks = national.loc["SMH_R4-R5"]
    assert 1_000 <= smh_peaks.median() <= 50_000


def test_deterministic_within_process():
    pd.testing.assert_frame_equal(make_flu_table("small", 3), make_flu_table("small", 3))


def test_independent_of_pythonhashseed(small):
    code = ("import hashlib; from trainset.demo import make_flu_table; "
            "print(hashlib.sha256(make_flu_table('small', 0).to_csv().encode()).hexdigest())")
    digests = {
        subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": hashseed},
                       capture_output=True, text=True, check=True).stdout.strip()
        for hashseed in ("1", "987654")
    }
    assert digests == {_csv_sha256(small)}


def test_different_seed_changes_values(small):
    other = make_flu_table("small", seed=1)
    assert not np.array_equal(other["value"].to_numpy()[:1000], small["value"].to_numpy()[:1000])
    assert not small["value"].equals(other["value"])


@pytest.mark.parametrize("size", ["medium", "", "FULL"])
def test_bad_size_raises(size):
    with pytest.raises(TrainsetError, match="small, full"):
        make_flu_table(size)


def test_full_row_counts():
    counts = make_flu_table("full", seed=0)["datasetH1"].value_counts()
    assert 2_200_000 <= counts.sum() <= 3_000_000
    expected = {"fluview": 31_000, "flusurv": 11_000, "flepiR1": 190_000, "SMH_R4-R5": 2_300_000}
    for h1, rows in expected.items():
        assert abs(counts[h1] - rows) <= 0.15 * rows, (h1, counts[h1])
