"""Tables as people really have them: text sample ids, extra columns, single-source surveillance
CSVs with other column names, other delimiters, US dates and codes that lost their leading zero.

Every test writes a real file, runs the ingest stage on it and reads what it wrote (or checks
that the refusal names the file, the column or config key and the fix, and leaves no output).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.conftest import synthetic_table
from trainset.errors import TrainsetError
from trainset.seasons import SeasonAxis
from trainset.table.ingest import ingest_table
from trainset.table.io import read_provenance, read_table
from trainset.table.validate import validate_table

AXIS = SeasonAxis.from_config({})
SINGLE_SOURCE = {"columns": {"date": "week_enddate", "location": "location_code"},
                 "constants": {"datasetH1": "nhsn", "datasetH2": "nhsn", "sample": 0}}


def ingest(tmp_path: Path, cfg: dict, name: str = "mine") -> tuple[dict, pd.DataFrame]:
    """Run the ingest stage on ``cfg``; return the summary JSON as written and the table."""
    out = tmp_path / "out" / f"{name}.parquet"
    summary = tmp_path / "out" / f"{name}.summary.json"
    ingest_table(cfg, {}, 0, out, summary, name=name)
    return json.loads(summary.read_text()), read_table(out)


def refused(tmp_path: Path, cfg: dict, *needles: str, name: str = "mine") -> str:
    """Ingest must fail with every needle in the message and leave nothing behind."""
    with pytest.raises(TrainsetError) as caught:
        ingest(tmp_path, cfg, name)
    message = str(caught.value)
    for needle in needles:
        assert needle in message, message
    out = tmp_path / "out"
    assert not out.exists() or not any(out.iterdir()), "partial output left behind"
    return message


def surveillance_csv(path: Path, dates: list[str], codes: list[str], sep: str = ",",
                     header: tuple[str, str, str] = ("date", "location", "value")) -> Path:
    """A single-source file as a surveillance download has it: one row per date and place."""
    lines = [sep.join(header)]
    lines += [sep.join([d, c, f"{10 + i}.5"]) for i, (d, c) in enumerate((d, c) for d in dates for c in codes)]
    path.write_text("\n".join(lines) + "\n")
    return path


WEEKS = ["2022-11-26", "2022-12-03", "2022-12-10"]  # season 2022, weeks 17, 18, 19


# --- sample ids and extra columns --------------------------------------------------------------


def test_text_sample_ids_stay_text_and_extra_columns_are_ignored(tmp_path):
    groups = [("SMH_R4-R5", "R4_model01_A", 2023, "1.0_NA_101"),
              ("flepiR1", "R1", 2023, "10.0"), ("flepiR1", "R1", 2023, "9.0")]
    table = synthetic_table(AXIS, groups, weeks=range(5, 8))
    table["fluseason_fraction"] = table["season_week"] / 53
    path = tmp_path / "combined.csv"
    table.to_csv(path, index=False)

    summary, written = ingest(tmp_path, {"path": str(path)})
    assert summary["ignored_columns"] == ["fluseason_fraction"]
    assert list(written.columns) == ["datasetH1", "datasetH2", "sample", "fluseason", "location_code",
                                     "season_week", "value", "week_enddate"]
    assert pq.read_schema(tmp_path / "out" / "mine.parquet").field("sample").type.value_type == "string"
    flepi = written.loc[written["datasetH1"] == "flepiR1", "sample"].astype(str)
    assert list(dict.fromkeys(flepi)) == ["10.0", "9.0"]  # code-point order, not numeric
    assert set(written["sample"].astype(str)) == {"1.0_NA_101", "10.0", "9.0"}
    assert summary["families"]["flepiR1"]["groups"] == 2


def test_csv_sample_ids_written_as_decimals_are_not_parsed(tmp_path):
    table = synthetic_table(AXIS, [("flepiR1", "R1", 2023, "10.0"), ("flepiR1", "R1", 2023, "9.0")],
                            weeks=range(5, 7))
    path = tmp_path / "flepi.csv"
    table.to_csv(path, index=False)
    _, written = ingest(tmp_path, {"path": str(path)})
    assert set(written["sample"].astype(str)) == {"10.0", "9.0"}


def test_integer_sample_ids_stay_integers(tmp_path):
    table = synthetic_table(AXIS, [("flepiR1", "R1", 2023, 10), ("flepiR1", "R1", 2023, 9)], weeks=range(5, 7))
    path = tmp_path / "flepi.csv"
    table.to_csv(path, index=False)
    _, written = ingest(tmp_path, {"path": str(path)})
    assert written["sample"].dtype == np.int64
    assert list(dict.fromkeys(written["sample"])) == [9, 10]


def test_fractional_and_mixed_sample_ids_are_refused(tmp_path):
    table = synthetic_table(AXIS, [("flepiR1", "R1", 2023, 0)], weeks=range(5, 7)).astype({"sample": float})
    table.loc[0, "sample"] = 1.5
    path = tmp_path / "flepi.parquet"
    table.to_parquet(path, index=False)
    refused(tmp_path, {"path": str(path)}, str(path), "column 'sample' has non-integer values")

    mixed = table.astype({"sample": object})
    mixed.loc[0, "sample"] = "r1"
    with pytest.raises(TrainsetError, match="column 'sample' mixes text"):
        validate_table(mixed, AXIS, source="mixed.parquet")


def test_empty_text_sample_id_is_refused(tmp_path):
    table = synthetic_table(AXIS, [("SMH_R4-R5", "R4_A", 2023, "1.0_NA_101")], weeks=range(5, 7))
    table.loc[[0, 1], "sample"] = ""
    path = tmp_path / "smh.parquet"
    table.to_parquet(path, index=False)
    refused(tmp_path, {"path": str(path)}, "column 'sample': 2 row(s) are empty")


# --- single-source tables: columns and constants ------------------------------------------------


def test_single_source_csv_with_columns_and_constants(tmp_path):
    path = surveillance_csv(tmp_path / "nhsn.csv", WEEKS, ["01", "06", "36"])
    cfg = {"path": str(path), **SINGLE_SOURCE}
    summary, written = ingest(tmp_path, cfg)
    assert summary["derived_columns"] == ["fluseason", "season_week"]
    assert summary["rows_out"] == 9
    assert set(written["datasetH1"].astype(str)) == {"nhsn"}
    assert written["sample"].dtype == np.int64 and set(written["sample"]) == {0}
    assert set(written["fluseason"]) == {2022}
    assert sorted(set(written["season_week"])) == [17, 18, 19]
    for record in (summary["provenance"], read_provenance(tmp_path / "out" / "mine.parquet")):
        assert record["config"]["table"]["columns"] == SINGLE_SOURCE["columns"]
        assert record["config"]["table"]["constants"] == SINGLE_SOURCE["constants"]


@pytest.mark.parametrize(
    ("columns", "constants", "needles"),
    [
        ({"Date": "week_enddate", "location": "location_code"}, SINGLE_SOURCE["constants"],
         ["tables.mine.columns renames 'Date'", "not a column of the file", "['date', 'location', 'value']"]),
        ({"date": "week_end", "location": "location_code"}, SINGLE_SOURCE["constants"],
         ["tables.mine.columns renames 'date' to 'week_end'", "not a trainset column"]),
        ({"date": "week_enddate", "location": "value"}, SINGLE_SOURCE["constants"],
         ["tables.mine.columns would make 2 columns named 'value'", "['location', 'value']"]),
        (SINGLE_SOURCE["columns"], {**SINGLE_SOURCE["constants"], "region": "south"},
         ["tables.mine.constants sets 'region'", "not a trainset column"]),
        (SINGLE_SOURCE["columns"], {**SINGLE_SOURCE["constants"], "location_code": "06"},
         ["tables.mine.constants sets 'location_code', which cannot be a constant"]),
        (SINGLE_SOURCE["columns"], {**SINGLE_SOURCE["constants"], "value": 1},
         ["tables.mine.constants sets 'value', which cannot be a constant"]),
        (SINGLE_SOURCE["columns"], {**SINGLE_SOURCE["constants"], "week_enddate": "2022-12-03"},
         ["tables.mine.constants sets 'week_enddate', which cannot be a constant"]),
        ({"date": "week_enddate"}, {**SINGLE_SOURCE["constants"], "location": "06"},
         ["tables.mine.constants sets 'location', which is not a trainset column"]),
        ({"location": "location_code"}, {**SINGLE_SOURCE["constants"], "datasetH1": "nhsn", "fluseason": 2022},
         ["missing column(s) ['season_week', 'week_enddate']", "tables.mine.columns"]),
        (SINGLE_SOURCE["columns"], {**SINGLE_SOURCE["constants"], "sample": 0.5},
         ["tables.mine.constants.sample is 0.5", "text or an integer"]),
    ],
)
def test_bad_columns_and_constants_are_refused(tmp_path, columns, constants, needles):
    path = surveillance_csv(tmp_path / "nhsn.csv", WEEKS, ["01", "06"])
    refused(tmp_path, {"path": str(path), "columns": columns, "constants": constants}, str(path), *needles)


def test_constant_duplicating_a_file_column_is_refused(tmp_path):
    path = tmp_path / "nhsn.csv"
    path.write_text("date,location,value,datasetH1\n2022-12-03,01,3.5,nhsn\n")
    cfg = {"path": str(path), **SINGLE_SOURCE}
    refused(tmp_path, cfg, str(path), "tables.mine.constants sets 'datasetH1', but the table already has a column",
            "remove it from constants or from the file")


# --- delimiters and compression -----------------------------------------------------------------


def test_semicolon_csv_is_sniffed(tmp_path):
    path = surveillance_csv(tmp_path / "nhsn.csv", WEEKS, ["01", "06"], sep=";")
    summary, written = ingest(tmp_path, {"path": str(path), **SINGLE_SOURCE})
    assert summary["rows_out"] == 6
    assert written["value"].iloc[0] == 10.5


def test_tab_separated_csv_is_sniffed(tmp_path):
    path = surveillance_csv(tmp_path / "nhsn.csv", WEEKS, ["01", "06"], sep="\t")
    summary, _ = ingest(tmp_path, {"path": str(path), **SINGLE_SOURCE})
    assert summary["rows_out"] == 6


def test_given_separator_is_used(tmp_path):
    path = surveillance_csv(tmp_path / "nhsn.csv", WEEKS, ["01", "06"], sep="|")
    summary, written = ingest(tmp_path, {"path": str(path), "sep": "|", **SINGLE_SOURCE})
    assert summary["rows_out"] == 6
    assert set(written["location_code"].astype(str)) == {"01", "06"}


def test_separator_for_a_parquet_file_is_refused(tmp_path):
    path = tmp_path / "table.parquet"
    synthetic_table(AXIS, [("fluview", "fluview", 2015, 0)], weeks=range(5, 7)).to_parquet(path, index=False)
    refused(tmp_path, {"path": str(path), "sep": ";"}, str(path), "tables.mine.sep", "Parquet")


def test_plain_csv_named_gz_is_a_clear_error(tmp_path):
    path = surveillance_csv(tmp_path / "nhsn.csv.gz", WEEKS, ["01"])
    refused(tmp_path, {"path": str(path), **SINGLE_SOURCE}, str(path), "not gzip-compressed", "rename it to nhsn.csv")


def test_gzipped_csv_is_read(tmp_path):
    plain = surveillance_csv(tmp_path / "nhsn.csv", WEEKS, ["01", "06"], sep=";")
    path = tmp_path / "nhsn.csv.gz"
    pd.read_csv(plain, sep=";", dtype=str).to_csv(path, sep=";", index=False, compression="gzip")
    summary, _ = ingest(tmp_path, {"path": str(path), **SINGLE_SOURCE})
    assert summary["rows_out"] == 6


# --- location codes that lost their leading zero -------------------------------------------------


def test_codes_that_lost_their_leading_zero_are_refused(tmp_path):
    path = surveillance_csv(tmp_path / "nhsn.csv", WEEKS, ["1", "6", "36"])
    message = refused(tmp_path, {"path": str(path), **SINGLE_SOURCE}, str(path), "column 'location_code'",
                      "6 row(s) lost their leading zero", "tables.mine.pad_location_codes: true")
    assert "drop_unknown_places" not in message and "not known places" not in message


def test_drop_unknown_places_never_drops_codes_that_lost_their_zero(tmp_path):
    path = surveillance_csv(tmp_path / "nhsn.csv", WEEKS, ["1", "6", "36", "99"])
    cfg = {"path": str(path), "drop_unknown_places": True, **SINGLE_SOURCE}
    refused(tmp_path, cfg, str(path), "6 row(s) lost their leading zero", "pad_location_codes")


def test_pad_location_codes_pads_and_counts(tmp_path):
    path = surveillance_csv(tmp_path / "nhsn.csv", WEEKS, ["1", "6", "36"])
    summary, written = ingest(tmp_path, {"path": str(path), "pad_location_codes": True, **SINGLE_SOURCE})
    assert summary["padded_location_codes"] == 6
    assert sorted(set(written["location_code"].astype(str))) == ["01", "06", "36"]
    assert summary["rows_out"] == 9


def test_integer_location_column_in_parquet(tmp_path):
    table = synthetic_table(AXIS, [("fluview", "fluview", 2015, 0)], weeks=range(5, 7))
    path = tmp_path / "table.parquet"
    table.assign(location_code=table["location_code"].astype(int)).to_parquet(path, index=False)
    refused(tmp_path, {"path": str(path)}, str(path), "column 'location_code'", "is int64, expected text",
            "lost their leading zero", "pad_location_codes")
    summary, written = ingest(tmp_path, {"path": str(path), "pad_location_codes": True})
    assert summary["padded_location_codes"] == 2 * 7  # 2 weeks x AL AK AZ AR CA CO CT
    assert set(written["location_code"].astype(str)) == set(AXIS.places)


def test_drop_unknown_places_still_drops_truly_unknown_codes(tmp_path):
    path = surveillance_csv(tmp_path / "nhsn.csv", WEEKS, ["01", "99", "7"])
    summary, written = ingest(tmp_path, {"path": str(path), "drop_unknown_places": True, **SINGLE_SOURCE})
    assert summary["dropped_places"] == {"7": 3, "99": 3}  # '07' is no place either
    assert set(written["location_code"].astype(str)) == {"01"}


# --- dates ----------------------------------------------------------------------------------------


US_WEEKS = ["11/26/2022", "12/03/2022", "12/10/2022"]


def test_us_dates_without_date_format_are_refused(tmp_path):
    path = surveillance_csv(tmp_path / "nhsn.csv", US_WEEKS, ["01", "06"])
    message = refused(tmp_path, {"path": str(path), **SINGLE_SOURCE}, str(path), "column 'week_enddate'",
                      "6 row(s) are not ISO dates", "tables.mine.date_format", "'%m/%d/%Y' for 12/03/2022")
    assert "missing column" not in message


def test_us_dates_in_a_full_table_are_refused(tmp_path):
    table = synthetic_table(AXIS, [("fluview", "fluview", 2022, 0)], weeks=range(17, 19))
    table["week_enddate"] = table["week_enddate"].dt.strftime("%m/%d/%Y")
    path = tmp_path / "table.csv"
    table.to_csv(path, index=False)
    refused(tmp_path, {"path": str(path)}, "column 'week_enddate'", "are not ISO dates", "tables.mine.date_format")


def test_date_format_reads_us_dates(tmp_path):
    path = surveillance_csv(tmp_path / "nhsn.csv", US_WEEKS, ["01", "06"])
    summary, written = ingest(tmp_path, {"path": str(path), "date_format": "%m/%d/%Y", **SINGLE_SOURCE})
    assert summary["rows_out"] == 6
    dec3 = written["week_enddate"] == pd.Timestamp("2022-12-03")
    assert set(written.loc[dec3, "fluseason"]) == {2022}
    assert set(written.loc[dec3, "season_week"]) == {18}


def test_dates_not_matching_date_format_are_refused(tmp_path):
    path = surveillance_csv(tmp_path / "nhsn.csv", ["12/03/2022", "2022-12-10"], ["01"])
    refused(tmp_path, {"path": str(path), "date_format": "%m/%d/%Y", **SINGLE_SOURCE},
            "1 row(s) do not match tables.mine.date_format '%m/%d/%Y'")


def test_date_format_for_stored_dates_is_refused(tmp_path):
    path = tmp_path / "table.parquet"
    synthetic_table(AXIS, [("fluview", "fluview", 2015, 0)], weeks=range(5, 7)).to_parquet(path, index=False)
    refused(tmp_path, {"path": str(path), "date_format": "%m/%d/%Y"}, "already holds dates",
            "remove tables.mine.date_format")
