"""Every validation error of the combined table, through the command line: a clear message
naming the column and the fix, exit code 1, and no output file left behind."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from trainset.errors import TrainsetError
from trainset.table.validate import KEY_COLUMNS, validate_table
from tests.conftest import synthetic_table

GROUPS = [("fluview", "fluview", 2015, 0), ("fluview", "fluview", 2016, 0)]


def run_ingest(tmp_path, table: pd.DataFrame, *extra: str, suffix=".parquet"):
    raw = tmp_path / f"raw{suffix}"
    if suffix == ".csv":
        table.to_csv(raw, index=False)
    else:
        table.to_parquet(raw, index=False)
    out = tmp_path / "out" / "table.parquet"
    result = subprocess.run(
        [sys.executable, "-m", "trainset", "ingest", str(raw), "-o", str(out), *extra],
        capture_output=True, text=True,
    )  # fmt: skip
    return result, out


def assert_refused(result, out, *needles):
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    assert not out.exists()
    assert not out.with_suffix(".summary.json").exists()
    assert not out.parent.exists() or not any(out.parent.iterdir()), "partial output left behind"


@pytest.fixture
def good(axis):
    return synthetic_table(axis, GROUPS)


def test_valid_table_is_written_sorted_with_summary(tmp_path, good):
    shuffled = good.sample(frac=1.0, random_state=1)
    result, out = run_ingest(tmp_path, shuffled)
    assert result.returncode == 0, result.stderr
    written = pd.read_parquet(out)
    assert len(written) == len(good)
    assert written["location_code"].astype(str).str.len().eq(2).all()
    keys = written[KEY_COLUMNS]
    pd.testing.assert_frame_equal(keys, keys.sort_values(KEY_COLUMNS, ignore_index=True))
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["rows_in"] == summary["rows_out"] == len(good)


def test_missing_column(tmp_path, good):
    result, out = run_ingest(tmp_path, good.drop(columns=["value"]))
    assert_refused(result, out, "missing column", "value")


def test_mistyped_column(tmp_path, good):
    bad = good.assign(value=good["value"].map(lambda v: f"{v:.1f} cases"))
    result, out = run_ingest(tmp_path, bad)
    assert_refused(result, out, "column 'value'", "expected numbers", "Fix")


def test_location_code_as_numbers_is_a_type_error(tmp_path, good):
    bad = good.assign(location_code=good["location_code"].astype(int))
    result, out = run_ingest(tmp_path, bad)
    assert_refused(result, out, "column 'location_code'", "expected text", "leading zero")


def test_nan_in_key_column(tmp_path, good):
    bad = good.astype({"sample": "float64"})
    bad.loc[[3, 7], "sample"] = np.nan
    result, out = run_ingest(tmp_path, bad)
    assert_refused(result, out, "column 'sample'", "2 row(s) are empty")


def test_duplicate_keys(tmp_path, good):
    bad = pd.concat([good, good.iloc[:5]], ignore_index=True)
    result, out = run_ingest(tmp_path, bad)
    assert_refused(result, out, "10 row(s) share a key", "deduplicate")


def test_negative_values(tmp_path, good):
    bad = good.copy()
    bad.loc[[0, 1, 2], "value"] = -1.0
    result, out = run_ingest(tmp_path, bad)
    assert_refused(result, out, "column 'value'", "3 row(s) are negative")


def test_weeks_outside_axis(tmp_path, good):
    bad = good.copy()
    bad.loc[0, "season_week"] = 54
    bad.loc[1, "season_week"] = 0
    result, out = run_ingest(tmp_path, bad)
    assert_refused(result, out, "column 'season_week'", "are outside 1..53")


def test_weeks_disagreeing_with_dates(tmp_path, good):
    bad = good.copy()
    bad.loc[0, "season_week"] = 30
    result, out = run_ingest(tmp_path, bad)
    assert_refused(result, out, "disagree with week_enddate")


def test_unknown_places_fail_unless_config_drops_them(tmp_path, good):
    bad = good.copy()
    bad.loc[:9, "location_code"] = "99"
    result, out = run_ingest(tmp_path, bad)
    assert_refused(result, out, "column 'location_code'", "10 row(s) are not known places", "drop_unknown_places")

    result, out = run_ingest(tmp_path, bad, "--drop-unknown-places")
    assert result.returncode == 0, result.stderr
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["dropped_places"] == {"99": 10}
    assert summary["rows_out"] == len(good) - 10


def test_us_and_territories_are_dropped_and_counted(axis, good):
    extra = good.iloc[:4].assign(location_code=["US", "US", "72", "66"])
    table, report = validate_table(pd.concat([good, extra], ignore_index=True), axis)
    assert len(table) == len(good)
    assert report.dropped_places == {"US": 2, "72": 1, "66": 1}


def test_season_columns_are_derived_from_dates(axis, good):
    table, report = validate_table(good.drop(columns=["season_week", "fluseason"]), axis)
    assert report.derived_columns == ["fluseason", "season_week"]
    assert sorted(table["season_week"].unique()) == list(range(5, 41))


def test_csv_input_keeps_leading_zeros(tmp_path, good):
    result, out = run_ingest(tmp_path, good, suffix=".csv")
    assert result.returncode == 0, result.stderr
    assert "01" in set(pd.read_parquet(out)["location_code"].astype(str))


def test_all_problems_reported_together(axis, good):
    bad = good.copy()
    bad.loc[0, "value"] = -5.0
    bad.loc[1, "season_week"] = 60
    with pytest.raises(TrainsetError) as caught:
        validate_table(bad, axis, source="my.csv")
    message = str(caught.value)
    assert message.startswith("my.csv: 2 problem(s)") or "my.csv:" in message
    assert "negative" in message and "outside 1..53" in message
