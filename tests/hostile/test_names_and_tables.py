"""Names that would become paths outside results/, and table or config values that used to be
repaired or accepted without a word, are refused with the key or column and the fix.

Every hostile input is built here: config overlays with ``../../escaped`` and ``sub/evil``
names, CSV text with a duplicated header, a Parquet file with 0 rows, booleans, NUL bytes,
values beyond float32, dates with UTC offsets, a plain CSV named ``.csv.gz``, seeds past 64
bits. Refusals go through the library, the ``python -m trainset`` CLI and the workflow's
start-up (``snakemake -n`` in a temporary ``--directory``); each leaves no output behind.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from trainset.errors import TrainsetError
from trainset.io.base import get_format
from trainset.mixing.config import check_mix
from trainset.mixing.scaling import scaling_targets
from trainset.provenance import NAME_PATTERN, safe_name
from trainset.rng import MAX_SEED, named_rng
from trainset.table.ingest import ingest_table

REPO = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
DEFAULTS = yaml.safe_load((REPO / "config/config.yaml").read_text())
HEADER = "datasetH1,datasetH2,sample,fluseason,location_code,season_week,value,week_enddate"
ROWS = ["fluview,fluview,0,2015,06,1,1.5,2015-08-01", "fluview,fluview,0,2015,06,2,2.5,2015-08-08"]
BAD_NAMES = ["../../escaped", "sub/evil"]


# ---------------------------------------------------------------- names used in paths

def snakemake(workdir: Path, overlay: dict, *args: str) -> subprocess.CompletedProcess:
    """The workflow on ``overlay`` (merged over config/config.yaml) in ``workdir``."""
    config = workdir.parent / "overlay.yaml"
    config.write_text(yaml.safe_dump(overlay, sort_keys=False))
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(config), "--cores", "1", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "SOURCE_DATE_EPOCH": "1764000000"})


def written_outside_results(root: Path, workdir: Path) -> list[str]:
    """Files under ``root`` other than the overlay, Snakemake's own folder and results/."""
    allowed = (workdir / "results", workdir / ".snakemake")
    return sorted(str(p) for p in root.rglob("*") if p.is_file() and p.name != "overlay.yaml"
                  and not any(p.is_relative_to(a) for a in allowed))


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_mix_name_that_leaves_results_is_refused_at_start_up(tmp_path, name):
    root = tmp_path / "deep" / "er"
    workdir = root / "work"
    workdir.mkdir(parents=True)
    overlay = {"mixes": {name: {"table": "flu_demo", "families": {"fluview": {"multiplier": 1}}}}}
    for args in (("-n",), ()):  # a dry run and a real one: both stop before any job
        result = snakemake(workdir, overlay, *args)
        output = result.stdout + result.stderr
        assert result.returncode != 0, output
        assert f"mixes: the name {name!r}" in output and "Fix: rename it" in output, output
        assert "Traceback" not in output
    assert written_outside_results(tmp_path, workdir) == []
    assert not any(p.name == "escaped" or p.name == "evil" for p in tmp_path.rglob("*"))


@pytest.mark.parametrize("section", ["tables", "mixes", "datasets", "runs", "searches"])
@pytest.mark.parametrize("name", [*BAD_NAMES, "..", ".hidden", "a b", "x..y"])
def test_the_schema_refuses_path_names_in_every_named_section(section, name):
    config = copy.deepcopy(DEFAULTS)
    entries = config[section]
    entries[name] = next(iter(entries.values()))
    errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(config))
    assert [e for e in errors if "propertyNames" in e.schema_path and e.instance == name], errors
    with pytest.raises(TrainsetError, match=f"{section}: the name"):
        safe_name(name, section)


def test_the_schema_pattern_is_the_library_pattern_and_accepts_the_shipped_names():
    assert NAME_PATTERN in SCHEMA["$defs"]["name"]["pattern"]
    assert list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(DEFAULTS)) == []
    for name in ("SURV_ONLY", "MIX_70S30M", "T_PULSES", "t_pulses", "v1.2-final", "7days"):
        assert safe_name(name, "mixes") == name


def test_library_path_builders_refuse_names_that_leave_their_folder(tmp_path):
    fmt = get_format("netcdf")
    assert fmt.path_for(tmp_path, "ok") == tmp_path / "TS_ok.nc"
    for name in BAD_NAMES:
        with pytest.raises(TrainsetError, match="dataset name: the name"):
            fmt.path_for(tmp_path, name)


def test_cli_train_refuses_a_run_name_that_leaves_results(tmp_path, capsys):
    from trainset.cli import main

    dataset = tmp_path / "TS_x.nc"
    dataset.write_bytes(b"")  # never opened: the name is refused first
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"name": "../../escaped", "dataset": str(dataset)}))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert main(["train", "--config", str(config)]) == 1
    finally:
        os.chdir(cwd)
    assert "run.yaml: name: the name '../../escaped' becomes a file or folder name" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["TS_x.nc", "run.yaml"]


# ---------------------------------------------------------------- tables

def ingest(tmp_path: Path, raw: Path) -> Path:
    """Ingest ``raw``; returns the output folder (which must stay empty on a refusal)."""
    out = tmp_path / "out"
    ingest_table({"path": str(raw)}, {}, 0, out / "t.parquet", out / "t.summary.json", name="t")
    return out


def refused(tmp_path: Path, raw: Path, *needles: str) -> str:
    with pytest.raises(TrainsetError) as caught:
        ingest(tmp_path, raw)
    message = str(caught.value)
    for needle in needles:
        assert needle in message, message
    out = tmp_path / "out"
    assert not out.exists() or not any(out.iterdir()), "partial output left behind"
    return message


def csv_file(tmp_path: Path, lines: list[str], name: str = "raw.csv", header: str = HEADER) -> Path:
    path = tmp_path / name
    path.write_bytes(("\n".join([header, *lines]) + "\n").encode())
    return path


def frame(**changes) -> pd.DataFrame:
    """The two good rows as a typed frame (Parquet input), with columns replaced by ``changes``."""
    table = pd.DataFrame({"datasetH1": ["fluview"] * 2, "datasetH2": ["fluview"] * 2, "sample": [0, 0],
                          "fluseason": [2015, 2015], "location_code": ["06", "06"], "season_week": [1, 2],
                          "value": [1.5, 2.5], "week_enddate": pd.to_datetime(["2015-08-01", "2015-08-08"])})
    return table.assign(**changes)


def parquet_file(tmp_path: Path, table: pd.DataFrame | pa.Table) -> Path:
    path = tmp_path / "raw.parquet"
    pq.write_table(table if isinstance(table, pa.Table) else pa.Table.from_pandas(table, preserve_index=False), path)
    return path


def test_the_good_rows_are_accepted(tmp_path):
    """The baseline every refusal below changes one thing of."""
    for raw in (csv_file(tmp_path, ROWS), parquet_file(tmp_path, frame())):
        out = ingest(tmp_path, raw)
        assert json.loads((out / "t.summary.json").read_text())["rows_out"] == 2


def test_a_duplicated_csv_column_is_refused_naming_it(tmp_path):
    raw = csv_file(tmp_path, [r + ",99" for r in ROWS], header=HEADER + ",value")
    refused(tmp_path, raw, "raw.csv", "column 'value' 2 times", "value.1", "Fix: keep one column of each name")


def test_a_duplicated_parquet_column_is_refused_naming_it(tmp_path):
    table = pa.Table.from_pandas(frame(), preserve_index=False)
    table = table.append_column("value", pa.array([7.0, 8.0]))
    refused(tmp_path, parquet_file(tmp_path, table), "column 'value' 2 times")


@pytest.mark.parametrize("column", ["value", "season_week"])
def test_boolean_numbers_are_refused(tmp_path, column):
    refused(tmp_path, parquet_file(tmp_path, frame(**{column: [True, False]})),
            f"column '{column}' holds true/false values", "Fix: store numbers")


def test_boolean_values_in_a_csv_are_refused(tmp_path):
    raw = csv_file(tmp_path, [r.replace(",1.5,", ",True,").replace(",2.5,", ",False,") for r in ROWS])
    refused(tmp_path, raw, "column 'value' holds true/false values")


def test_a_parquet_with_no_rows_is_refused(tmp_path):
    refused(tmp_path, parquet_file(tmp_path, frame().iloc[:0]), "raw.parquet: the table has no data rows")


def test_a_csv_with_a_header_only_is_refused(tmp_path):
    refused(tmp_path, csv_file(tmp_path, []), "raw.csv: the table has no data rows")


def test_all_nan_values_are_refused_not_written_as_0_rows(tmp_path):
    raw = csv_file(tmp_path, [r.replace(",1.5,", ",,").replace(",2.5,", ",,") for r in ROWS])
    refused(tmp_path, raw, "no row left of 2: 2 have an empty (NaN) value", "Fix:")


@pytest.mark.parametrize("column, row", [("datasetH1", "flu\0view,fluview,0,2015,06,1,1.5,2015-08-01"),
                                         ("sample", "fluview,fluview,r\0,2015,06,1,1.5,2015-08-01")])
def test_nul_bytes_in_labels_are_refused_naming_column_and_row(tmp_path, column, row):
    message = refused(tmp_path, csv_file(tmp_path, [row, ROWS[1]]), f"column '{column}': 1 row(s) hold NUL bytes",
                      "Fix: remove the NUL characters")
    assert "\0" not in message and "\\0" in message
    assert "\n0 " in message  # the example row, by its row number


def test_values_infinite_in_float32_are_refused_before_writing(tmp_path):
    raw = csv_file(tmp_path, [ROWS[0].replace(",1.5,", ",1e39,"), ROWS[1].replace(",2.5,", ",-3e38,")])
    refused(tmp_path, raw, "column 'value': 1 row(s) are beyond float32's range", "1.000000e+39",
            "Fix: rescale the values")


@pytest.mark.parametrize("dates", [
    ["2015-08-01T00:00:00+02:00", "2015-08-08T00:00:00+02:00"],  # one offset
    ["2015-08-01T00:00:00+02:00", "2015-08-08T00:00:00-05:00"],  # mixed offsets (pandas raised)
    ["2015-08-01 00:00Z", "2015-08-08"],
])  # fmt: skip
def test_dates_with_an_offset_are_refused_naming_the_column(tmp_path, dates):
    rows = [r.replace(r.rsplit(",", 1)[1], d) for r, d in zip(ROWS, dates)]
    refused(tmp_path, csv_file(tmp_path, rows), "column 'week_enddate'", "carry a time zone or UTC offset",
            "Fix: write plain dates, YYYY-MM-DD")


def test_tz_aware_parquet_dates_are_refused(tmp_path):
    zoned = pd.to_datetime(["2015-08-01", "2015-08-08"]).tz_localize("America/New_York")
    refused(tmp_path, parquet_file(tmp_path, frame(week_enddate=zoned)), "column 'week_enddate': 2 row(s) carry")


def test_datetime_objects_of_two_zones_are_refused_not_a_traceback():
    """pandas refuses to mix zones with a ValueError, which read as a bad date_format before."""
    from trainset.seasons import SeasonAxis
    from trainset.table.validate import validate_table

    mixed = pd.Series([pd.Timestamp("2015-08-01", tz="UTC"), pd.Timestamp("2015-08-08", tz="Asia/Tokyo")],
                      dtype=object)
    with pytest.raises(TrainsetError, match=r"column 'week_enddate': 2 row\(s\) carry a time zone"):
        validate_table(frame(week_enddate=mixed), SeasonAxis.from_config({}), source="mixed")


def test_a_plain_csv_named_csv_gz_is_refused(tmp_path):
    raw = csv_file(tmp_path, ROWS, name="raw.csv.gz")
    refused(tmp_path, raw, "raw.csv.gz: named .gz but is not gzip-compressed", "rename it to raw.csv")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trainset", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_ingest_exits_non_zero_with_the_message_and_no_output(tmp_path):
    cases = {
        "dup.csv": ([r + ",9" for r in ROWS], HEADER + ",value", "column 'value' 2 times"),
        "bool.csv": ([r.replace(",1.5,", ",true,").replace(",2.5,", ",false,") for r in ROWS], HEADER,
                     "holds true/false values"),
        "zoned.csv": ([r.replace("2015-08-01", "2015-08-01T00:00:00+02:00") for r in ROWS], HEADER,
                      "carry a time zone"),
    }
    for name, (rows, header, needle) in cases.items():
        csv_file(tmp_path, rows, name=name, header=header)
        result = cli("ingest", name, "-o", "out/t.parquet", cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        assert name in result.stderr and needle in result.stderr and "Fix:" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ---------------------------------------------------------------- mixes and seeds

@pytest.mark.parametrize("values, bad", [
    ([100.0, float("nan"), 50.0], "1 of 3"),
    ([100.0, float("inf"), -2.0], "2 of 3"),
    ([100.0, 1e39], "1 of 2"),
])  # fmt: skip
def test_bad_scaling_targets_are_refused_with_count_and_examples(values, bad):
    with pytest.raises(TrainsetError, match=rf"mixes.M.scaling_distribution.values: {bad} target peaks") as caught:
        scaling_targets({"values": values}, pd.DataFrame(), np.empty((0, 1, 1)), np.ones(1, bool), "M")
    assert "e.g. [" in str(caught.value) and "Fix: correct or remove them" in str(caught.value)


def test_an_empty_targets_file_is_refused(tmp_path):
    (tmp_path / "peaks.txt").write_text("")
    with pytest.raises(TrainsetError, match=r"peaks.txt: holds no target peak"):
        scaling_targets({"path": str(tmp_path / "peaks.txt")}, pd.DataFrame(), np.empty((0, 1, 1)),
                        np.ones(1, bool), "M")


def test_a_family_rounding_to_no_frame_is_refused_naming_it():
    families = {"big": {"proportion": 0.996}, "tiny": {"proportion": 0.004}}
    with pytest.raises(TrainsetError, match=r"mixes.M.families \['tiny'\]: proportion x total 100 rounds to 0"):
        check_mix("M", {"families": families, "total": 100})


def test_emptying_families_in_an_overlay_is_refused_with_how_to_replace(tmp_path):
    workdir = tmp_path / "work"
    result = snakemake(workdir, {"mixes": {"SURV_ONLY": {"families": {}}}}, "-n")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "mixes.SURV_ONLY.families: {} in a config overlay changes nothing" in output, output
    assert "Fix: to replace mixes.SURV_ONLY.families, set its mix/dataset/run to null" in output
    assert not (workdir / "results").exists()


def test_seeds_are_bounded_by_what_files_store(tmp_path):
    assert SCHEMA["properties"]["seed"]["maximum"] == MAX_SEED == 2**63 - 1
    named_rng(MAX_SEED, "frame", 1).integers(10)  # numpy takes the largest seed
    result = snakemake(tmp_path / "work", {"seed": 2**64}, "-n")
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "is greater than the maximum of 9223372036854775807" in output, output
    assert "seed: 18446744073709551616 is not allowed" in output  # the key path, one line (trainset.config_errors)
    result = cli("ingest", "raw.csv", "-o", "out/t.parquet", "--seed", str(2**64), cwd=tmp_path)
    assert result.returncode == 2 and "--seed: '18446744073709551616' is not an integer in 0.." in result.stderr
    from trainset.train.config import TrainingConfig
    from trainset.train.search import trial_configs

    with pytest.raises(TrainsetError, match=r"training.seed: must be >= 0 and <= 9223372036854775807"):
        TrainingConfig.from_dict({"dataset": "x", "training": {"seed": 2**64}})
    with pytest.raises(TrainsetError, match=r"searches.s.seed: expected an integer in 0..9223372036854775807"):
        trial_configs({"dataset": "x"}, {"name": "s", "run": "r", "seed": 2**64, "trials": 1,
                                         "space": {"training.lr": {"values": [0.1]}}}, 0)
