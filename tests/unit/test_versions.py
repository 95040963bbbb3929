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
    (None, "0 is from before format versions"), (0, "0 is from before format versions"),
    (99, "99 is unknown to this trainset"), ("x", "'x' is unknown to this trainset"),
    (True, "True is unknown to this trainset"), (b"2", "2 is unknown to this trainset"),
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
    with pytest.raises(TrainsetError, match=r"t.parquet: table format_version 7 is unknown.*ingest_table"):
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

    from trainset.io.base import stored_copies

    rules = set(re.findall(r"^rule (\w+):", "\n".join(
        p.read_text() for p in (Path(__file__).parents[2] / "workflow" / "rules").glob("*.smk")), re.M))
    rules |= {f"write_{name}" for name, copy in stored_copies().items() if copy.parallel}  # generated in datasets.smk
    for what, artifact in ARTIFACTS.items():
        assert set(artifact.rules) <= rules, (what, artifact.rules)
        assert isinstance(artifact.version, int) and artifact.version >= 1


@pytest.fixture
def dataset_copies(tmp_path):
    """One small sequence dataset in every format, as the workflow writes them."""
    from tests.conftest import stored_sequences

    return {fmt: stored_sequences(tmp_path / fmt, "pulses", 24, seed=0, length=20, fmt=fmt)
            for fmt in ("netcdf", "hdf5", "zarr", "webdataset")}


def _set_version(fmt: str, path, value) -> None:
    """Rewrite the recorded format version of a stored dataset (None: remove it)."""
    if fmt in ("netcdf", "hdf5"):
        import h5py

        with h5py.File(path, "a") as f:  # NetCDF-4 files are HDF5 files
            if value is None:
                del f.attrs["trainset_format_version"]
            else:
                f.attrs["trainset_format_version"] = value
        return
    file = path / ("manifest.json" if fmt == "zarr" else "index.json")
    meta = json.loads(file.read_text())
    meta.pop(KEY) if value is None else meta.__setitem__(KEY, value)
    file.write_text(json.dumps(meta))


@pytest.mark.parametrize("fmt", ["netcdf", "hdf5", "zarr", "webdataset"])
def test_stored_datasets_record_their_version_and_readers_refuse_others(dataset_copies, fmt):
    import trainset
    from trainset.validate import validate_dataset

    path = dataset_copies[fmt]
    assert len(trainset.open_dataset(path, split="train")) > 0 if fmt != "webdataset" else True
    assert validate_dataset(path)["valid"]
    _set_version(fmt, path, 9)  # newer than any version this code reads
    rule = ARTIFACTS[fmt].rule
    with pytest.raises(TrainsetError, match=rf"{fmt} format_version 9 is unknown.*{rule}"):
        trainset.open_dataset(path).reader if fmt == "webdataset" else trainset.open_dataset(path)
    report = validate_dataset(path)
    assert not report["valid"] and any("format_version 9" in p for p in report["problems"])


def test_a_trainset_netcdf_file_without_a_version_is_outdated(dataset_copies):
    import trainset

    _set_version("netcdf", dataset_copies["netcdf"], None)
    with pytest.raises(TrainsetError, match="netcdf format_version 0 is from before format versions"):
        trainset.open_dataset(dataset_copies["netcdf"])


def test_scalers_checkpoints_and_tuner_results_refuse_other_versions(tmp_path):
    import numpy as np
    import torch

    from trainset.scalers import ScalerSet, parse_spec
    from trainset.train.auto import read_json
    from trainset.train.trainer import load_checkpoint

    scalers = ScalerSet(parse_spec({"data": "standard"}), {"data": {"all": {"mean": [1.0], "scale": [2.0],
                                                                              "shape": [1], "n_samples": 3}}}, None)
    scalers.to_json(tmp_path / "s.json")
    stored = json.loads((tmp_path / "s.json").read_text())
    assert stored[KEY] == ARTIFACTS["scalers"].version and "version" not in stored
    ScalerSet.from_json(tmp_path / "s.json")
    (tmp_path / "s.json").write_text(json.dumps({**stored, KEY: 3}))
    with pytest.raises(TrainsetError, match="scalers format_version 3 is unknown.*fit_scalers"):
        ScalerSet.from_json(tmp_path / "s.json")

    torch.save({"model": {"w": torch.zeros(1)}}, tmp_path / "old.pt")
    with pytest.raises(TrainsetError, match="checkpoint format_version 0 .*train_model"):
        load_checkpoint(tmp_path / "old.pt")
    torch.save({"model": {}, KEY: ARTIFACTS["checkpoint"].version}, tmp_path / "new.pt")
    assert load_checkpoint(tmp_path / "new.pt")["model"] == {}
    torch.save({"w": torch.zeros(1)}, tmp_path / "weights.pt")
    with pytest.raises(TrainsetError, match="not a trainset checkpoint"):
        load_checkpoint(tmp_path / "weights.pt")

    (tmp_path / "lr.json").write_text(json.dumps({"suggested_lr": 0.01}))
    with pytest.raises(TrainsetError, match="lr_finder format_version 0 .*find_lr"):
        read_json(tmp_path / "lr.json", "LR finder result", "lr_finder")
    assert np.isclose(read_json(tmp_path / "lr.json", "LR finder result")["suggested_lr"], 0.01)


def test_every_artifact_kind_is_stamped_by_its_writer():
    import re
    from pathlib import Path

    source = "\n".join(p.read_text() for p in (Path(__file__).parents[2] / "src").rglob("*.py"))
    written = set(re.findall(r"""(?:stamp|current|footer_metadata)\(["'](\w+)["']""", source))
    assert set(ARTIFACTS) <= written, sorted(set(ARTIFACTS) - written)
