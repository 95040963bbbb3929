"""Tables as upstream users have them, through the workflow in one Snakemake call that stops at
frames: a text-sample table with an extra column, a single-source CSV with columns/constants, a
semicolon CSV, US dates with date_format, and a CSV whose codes lost their leading zero
(refused, naming the file and the fix, leaving no table)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import synthetic_table
from tests.workflow.test_workflow import REPO, SNAKEMAKE
from trainset.seasons import SeasonAxis

pytestmark = pytest.mark.workflow

AXIS = SeasonAxis.from_config({})
DEFAULTS = yaml.safe_load((REPO / "config/config.yaml").read_text())
GROUPS = [("SMH_R4", "R4_model01_A", 2023, s) for s in range(3)] + [("fluview", "fluview", 2022, 0)]


def write_tables(data: Path) -> None:
    """Five files written the way people have them (every place present, weeks 5-40)."""
    data.mkdir(parents=True)
    table = synthetic_table(AXIS, GROUPS)
    text = table.assign(sample=table["sample"].map({0: "1.0_NA_101", 1: "10.0", 2: "9.0"}),
                        fluseason_fraction=0.25)
    text.to_csv(data / "upstream.csv", index=False)
    table.to_csv(data / "semicolon.csv", index=False, sep=";")
    single = table[table.datasetH1 == "fluview"]
    single[["week_enddate", "location_code", "value"]].set_axis(["date", "location", "value"], axis=1).to_csv(
        data / "nhsn.csv", index=False)
    us = single.drop(columns=["fluseason", "season_week"])
    us.assign(week_enddate=pd.to_datetime(us["week_enddate"]).dt.strftime("%m/%d/%Y")).to_csv(
        data / "usdates.csv", index=False)
    lost = single.assign(location_code=single["location_code"].astype(int))  # a spreadsheet round trip
    lost.to_csv(data / "intcodes.csv", index=False)


def config() -> dict:
    tables = {
        "upstream": {"path": "data/upstream.csv"},
        "semicolon": {"path": "data/semicolon.csv"},
        "nhsn": {"path": "data/nhsn.csv", "columns": {"date": "week_enddate", "location": "location_code"},
                 "constants": {"datasetH1": "nhsn", "datasetH2": "nhsn", "sample": 0}},
        "usdates": {"path": "data/usdates.csv", "date_format": "%m/%d/%Y"},
        "intcodes": {"path": "data/intcodes.csv"},
    }
    mixes = {
        "UPSTREAM": {"table": "upstream", "total": 12,
                     "families": {"SMH_R4": {"proportion": 0.75}, "fluview": {"proportion": 0.25}}},
        "SEMICOLON": {"table": "semicolon", "families": {"SMH_R4": {"multiplier": 2}}},
        "NHSN": {"table": "nhsn", "families": {"nhsn": {"multiplier": 1}}},
        "USDATES": {"table": "usdates", "families": {"fluview": {"multiplier": 1}}},
    }
    nulls = {section: {name: None for name in DEFAULTS[section]}
             for section in ("tables", "mixes", "datasets", "runs", "searches")}
    return {**nulls, "tables": {**nulls["tables"], **tables}, "mixes": {**nulls["mixes"], **mixes}}


def test_upstream_tables_become_frames_or_are_refused_with_the_fix(tmp_path):
    work = tmp_path / "work"
    write_tables(work / "data")
    configfile = tmp_path / "upstream.yaml"
    configfile.write_text(yaml.safe_dump(config(), sort_keys=False))
    targets = [f"results/frames/{mix}.parquet" for mix in config()["mixes"] if config()["mixes"][mix]]
    command = [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(work), "--configfile",
               str(configfile), "--cores", "2", "--keep-going", *targets, "results/tables/intcodes.parquet"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode != 0  # intcodes is refused; everything else is built
    results = work / "results"

    upstream = json.loads((results / "tables/upstream.summary.json").read_text())
    assert upstream["ignored_columns"] == ["fluseason_fraction"]
    cells = pq.read_table(results / "frames/UPSTREAM.parquet", columns=["frame", "sample", "datasetH1"]).to_pandas()
    samples = cells.drop_duplicates("frame")
    assert list(dict.fromkeys(samples.loc[samples.datasetH1.astype(str) == "SMH_R4", "sample"].astype(str))) == [
        "1.0_NA_101", "10.0", "9.0"]
    assert samples["datasetH1"].astype(str).value_counts().to_dict() == {"SMH_R4": 9, "fluview": 3}

    nhsn = json.loads((results / "frames/NHSN.summary.json").read_text())
    assert nhsn["frames"] == 1 and nhsn["families"]["nhsn"]["frames"] == 1
    record = json.loads((results / "tables/nhsn.summary.json").read_text())["provenance"]["config"]["table"]
    assert record["constants"] == {"datasetH1": "nhsn", "datasetH2": "nhsn", "sample": 0}

    for name, mix in (("semicolon", "SEMICOLON"), ("usdates", "USDATES")):
        table = pq.read_table(results / f"tables/{name}.parquet").to_pandas()
        assert len(table) == {"semicolon": 4, "usdates": 1}[name] * 36 * 51  # groups x weeks x places
        assert (results / f"frames/{mix}.parquet").exists()
    usdates = pq.read_table(results / "tables/usdates.parquet", columns=["fluseason", "season_week"]).to_pandas()
    assert set(usdates["fluseason"]) == {2022} and usdates["season_week"].min() == 5

    log = (results / "logs/ingest_table/intcodes.log").read_text()
    assert "data/intcodes.csv" in log and "leading zero" in log and "pad_location_codes: true" in log
    assert "Traceback" not in log
    assert not (results / "tables/intcodes.parquet").exists()
