"""Versioned artifacts: every artifact records its format_version, and readers refuse one they
cannot read (outdated, from before versioning, or from a newer trainset) naming the rule to rerun."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from trainset.errors import TrainsetError
from trainset.versions import ARTIFACTS, KEY, PARQUET_KEY, check_version

SURV = [("surv", "surv", s, 0) for s in (2012, 2013, 2014)]


def _with_footer(path, **changes) -> None:
    """Rewrite a Parquet file with footer keys changed (None: removed)."""
    table = pq.read_table(path)
    metadata = dict(table.schema.metadata or {})
    for key, value in changes.items():
        key = key.encode()
        metadata.pop(key, None) if value is None else metadata.__setitem__(key, value)
    pq.write_table(table.replace_schema_metadata(metadata), path)


@pytest.mark.parametrize(("found", "words"), [
    (None, "from before format versions"), (0, "from before format versions"),
    (99, "unknown to this trainset"), ("x", "unknown to this trainset"), (True, "unknown to this trainset"),
])
def test_check_version_names_the_rule_to_rerun(found, words):
    with pytest.raises(TrainsetError, match=words) as error:
        check_version("frames", found, "f.parquet")
    assert "f.parquet" in str(error.value) and "build_frames" in str(error.value)
    check_version("frames", ARTIFACTS["frames"].version, "f.parquet")
    check_version("frames", str(ARTIFACTS["frames"].version).encode(), "f.parquet")  # a Parquet footer


@pytest.fixture
def stored(axis, table_factory, tmp_path):
    """A validated table and its frames, written as the workflow writes them."""
    from trainset.mixing.build import build_frames
    from trainset.mixing.store import write_frames
    from trainset.table.io import write_table
    from trainset.table.validate import validate_table

    validated, _ = validate_table(table_factory(SURV), axis)
    write_table(validated, tmp_path / "t.parquet", {"seed": 1})
    frames = build_frames(validated, {"families": {"surv": {"multiplier": 1}}}, "MIX", axis, seed=5)
    write_frames(frames, tmp_path / "f.parquet", {"seed": 1})
    return tmp_path / "t.parquet", tmp_path / "f.parquet"


def test_table_and_frames_record_their_version_and_refuse_others(stored, axis):
    from trainset.mixing.store import read_frame_table
    from trainset.table.io import read_table

    table, frames = stored
    for path in stored:
        assert pq.read_schema(path).metadata[PARQUET_KEY] == b"1"
    read_table(table)
    read_frame_table(frames, axis.weeks, axis.places)
    _with_footer(table, **{PARQUET_KEY.decode(): b"7"})
    with pytest.raises(TrainsetError, match=r"t.parquet: table format_version '7' .*ingest_table"):
        read_table(table)
    _with_footer(frames, **{PARQUET_KEY.decode(): None})  # written before versioning
    with pytest.raises(TrainsetError, match=r"f.parquet: frames format_version 0 .*build_frames"):
        read_frame_table(frames, axis.weeks, axis.places)


def test_a_parquet_file_from_another_tool_is_judged_by_its_columns(stored, axis):
    from trainset.mixing.store import read_frame_table

    _, frames = stored
    plain = pq.read_table(frames)
    pq.write_table(plain.replace_schema_metadata({}), frames)
    assert len(read_frame_table(frames, axis.weeks, axis.places)) == len(pq.read_table(frames).column("frame").unique())


def test_splits_json_records_its_version_and_refuses_others(tmp_path):
    import numpy as np

    from trainset.splits import read_splits, write_splits

    path = tmp_path / "splits.json"
    write_splits({"train": np.arange(3), "test": np.arange(3, 5)}, path, method="random")
    obj = json.loads(path.read_text())
    assert obj[KEY] == ARTIFACTS["splits"].version
    assert read_splits(path)["test"].tolist() == [3, 4]
    del obj[KEY]
    path.write_text(json.dumps(obj))
    with pytest.raises(TrainsetError, match=r"splits.json: splits format_version 0 .*make_splits"):
        read_splits(path)
    assert read_splits(path, versioned=False)["train"].tolist() == [0, 1, 2]
    path.write_text(json.dumps({**obj, KEY: 2}))
    with pytest.raises(TrainsetError, match="unknown to this trainset"):
        read_splits(path)


def test_every_artifact_kind_names_a_rule_that_exists():
    import re
    from pathlib import Path

    rules = set(re.findall(r"^rule (\w+):", "\n".join(
        p.read_text() for p in (Path(__file__).parents[2] / "workflow" / "rules").glob("*.smk")), re.M))
    for what, artifact in ARTIFACTS.items():
        named = re.findall(r"\w+", artifact.rule.replace("(or", " "))
        assert set(named) - {"or"} <= rules, (what, artifact.rule)
        assert isinstance(artifact.version, int) and artifact.version >= 1
