"""Seed 001 in the workflow: the guide's HDF5 file as ``datasets: {NAME: {files: {hdf5: ...}}}``.

Files are written with h5py exactly as the guide's code writes them (smaller N); they go through
the library functions the ingest_domain, frame_dataset and make_splits scripts call, and once
through Snakemake with the guide's YAML keys under ``runs:``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import yaml

from tests.seeds.seed001_files import write_forecasting, write_pulse
from trainset.datasets import split_dataset
from trainset.domains.stage import frame_domain, ingest_domain
from trainset.errors import TrainsetError
from trainset.io.netcdf import NetCDFFormat
from trainset.splits import SEED001_FRACTIONS, read_splits

REPO = Path(__file__).resolve().parents[2]


def stored(nc: Path) -> tuple[Any, dict]:
    """The one part and the attributes of a written TS_<name>.nc, read back from the file."""
    collection, _ = NetCDFFormat().load(nc)
    return next(iter(collection.parts.values())), collection.attrs


def frame(tmp_path: Path, name: str, cfg: dict) -> Path:
    """ingest_domain + frame_domain + the NetCDF write, as the two rules' scripts do; TS_<name>.nc."""
    ingest_domain(cfg, 3, tmp_path / "tables" / name)
    collection = frame_domain(tmp_path / "tables" / name, cfg, name)
    out = tmp_path / "datasets" / name / f"TS_{name}.nc"
    out.parent.mkdir(parents=True)
    NetCDFFormat().write(collection, out)
    return out


def test_presplit_file_frames_to_its_arrays_and_keeps_its_groups_as_splits(tmp_path):
    data, labels = write_pulse(tmp_path / "pulse_classification.h5")
    cfg = {"domain": "sequences", "files": {"hdf5": str(tmp_path / "pulse_classification.h5")}}
    nc = frame(tmp_path, "PULSES_H5", cfg)
    ds, attrs = stored(nc)
    assert np.array_equal(ds["data"].values, data) and ds["data"].dtype == np.float32
    assert np.array_equal(ds["labels"].values, labels) and ds["labels"].dtype == np.int64
    assert attrs["task"] == "seq2static_classification" and attrs["num_classes"] == 3
    assert list(ds["stored_split"].values) == ["train"] * 40 + ["val"] * 10 + ["test"] * 10
    summary = json.loads((tmp_path / "tables" / "PULSES_H5" / "summary.json").read_text())
    assert summary["metadata"]["split_sizes"] == {"train": 40, "val": 10, "test": 10}
    assert len(summary["provenance"]["inputs"]["hdf5"]) == 64  # the file's sha256, like any input file
    split_dataset(nc, tmp_path / "splits.json", {"method": "stored"}, 3)
    splits = read_splits(tmp_path / "splits.json")
    assert sorted(splits) == ["test", "train", "val"]  # the file's groups
    for name, (lo, hi) in {"train": (0, 40), "val": (40, 50), "test": (50, 60)}.items():
        assert np.array_equal(splits[name], np.arange(lo, hi))
    split_dataset(nc, tmp_path / "auto.json", {}, 3)  # no splits: section: the file's groups too
    assert {k: v.tolist() for k, v in read_splits(tmp_path / "auto.json").items()} == {
        k: v.tolist() for k, v in splits.items()}
    split_dataset(nc, tmp_path / "random.json", {"method": "random"}, 3)  # a configured method is honoured
    assert not np.array_equal(read_splits(tmp_path / "random.json")["train"], np.arange(40))


def test_single_layout_is_split_as_configured_and_stored_is_refused(tmp_path):
    data, labels = write_forecasting(tmp_path / "forecasting.h5")
    nc = frame(tmp_path, "FORECAST_H5", {"domain": "sequences", "files": {"hdf5": str(tmp_path / "forecasting.h5")}})
    ds, attrs = stored(nc)
    assert np.array_equal(ds["data"].values, data)
    assert np.array_equal(ds["labels"].values, labels) and ds["labels"].dtype == np.float32  # [N, 8, D]
    assert attrs["task"] == "seq2seq_regression" and attrs["target_seq_len"] == 8
    assert "stored_split" not in ds.coords
    split_dataset(nc, tmp_path / "splits.json", {}, 3)  # no splits: section: seed 001's cut, seeded
    cut = read_splits(tmp_path / "splits.json")
    assert {k: v.size for k, v in cut.items()} == {"train": 35, "val": 10, "test": 5}
    assert {k: v.size / 50 for k, v in cut.items()} == SEED001_FRACTIONS  # `trainset train --config`'s cut too
    assert json.loads((tmp_path / "splits.json").read_text())["method"] == "random"
    split_dataset(nc, tmp_path / "again.json", {}, 4)
    assert not np.array_equal(read_splits(tmp_path / "again.json")["train"], cut["train"])  # the seed decides
    split_dataset(nc, tmp_path / "half.json", {"method": "random", "fractions": {"train": 0.5, "test": 0.5}}, 3)
    assert {k: v.size for k, v in read_splits(tmp_path / "half.json").items()} == {"train": 25, "test": 25}
    with pytest.raises(TrainsetError, match="'stored' needs splits in the source.*Fix: use method random"):
        split_dataset(nc, tmp_path / "stored.json", {"method": "stored"}, 3)
    assert not (tmp_path / "stored.json").exists()


def test_task_alias_and_reconstruction_drops_the_guides_dummy_labels(tmp_path, caplog):
    N, T, D = 20, 40, 6
    data = np.random.randn(N, T, D).astype(np.float32)
    dummy_labels = np.zeros(N, dtype=np.int64)
    with h5py.File(tmp_path / "autoencoder.h5", "w") as f:
        f.create_dataset("data", data=data)
        f.create_dataset("labels", data=dummy_labels)  # Will be ignored
    cfg = {"domain": "sequences", "files": {"hdf5": str(tmp_path / "autoencoder.h5")},
           "task": "self_supervised_seq2seq_reconstruction"}
    with caplog.at_level(logging.WARNING):
        nc = frame(tmp_path, "AE", cfg)
    assert "labels [20] not used: task reconstruction's targets are the inputs" in caplog.text
    ds, attrs = stored(nc)
    assert attrs["task"] == "reconstruction" and "labels" not in ds and np.array_equal(ds["data"].values, data)


def _refused(tmp_path, cfg, match):
    with pytest.raises(TrainsetError, match=match):
        ingest_domain(cfg, 3, tmp_path / "tables" / "BAD")
    assert not (tmp_path / "tables" / "BAD").exists()  # nothing half written


def test_refused_with_the_fix(tmp_path):
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("inputs", data=np.zeros((4, 5, 1), np.float32))
    _refused(tmp_path, {"domain": "sequences", "files": {"hdf5": str(path)}},
             "neither of seed 001's layouts.*Fix: store data .N, T, D. and labels at the root, or in groups")
    write_pulse(path)
    _refused(tmp_path, {"domain": "sequences", "files": {"hdf5": str(path), "labels": "labels.parquet"}},
             r"files \['labels'\] would not be read. Fix: give either hdf5 or the long tables")
    _refused(tmp_path, {"domain": "sequences", "files": {"hdf5": str(path)}, "task": "seq2seq_classification"},
             r"labels have shape \[60\].*not task seq2seq_classification's \[N, T\]. Fix:")
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=np.zeros((4, 5, 1), np.float32))
        f.create_dataset("labels", data=np.zeros((4, 3, 2), np.int64))
    _refused(tmp_path, {"domain": "sequences", "files": {"hdf5": str(path)}},
             r"labels \[N, 3, 2\] int64 fit no sequence task.*Fix: store labels \[N\] integer")
    with h5py.File(path, "a") as f:
        f.create_dataset("mask", data=np.ones((4, 5), bool))
    _refused(tmp_path, {"domain": "sequences", "files": {"hdf5": str(path)}},
             r"holds \['mask'\], which a seed-001 dataset has no place for")


@pytest.mark.workflow
def test_the_guides_pulse_file_trains_under_runs(tmp_path):
    """One Snakemake run: the guide's file as a dataset, the guide's keys under runs:, 1 epoch."""
    (tmp_path / "data").mkdir()
    write_pulse(tmp_path / "data" / "pulse_classification.h5")
    config = {
        "datasets": {"PULSES_H5": {"domain": "sequences", "files": {"hdf5": "data/pulse_classification.h5"},
                                   "formats": ["hdf5"]}},  # no splits: the file's groups are kept
        "runs": {"mine": {
            "dataset": "PULSES_H5", "format": "hdf5",
            "training": {"paradigm": "supervised", "mapping": "seq2static",
                         "losses": [{"name": "cross_entropy", "weight": 1.0, "params": {}}],
                         "epochs": 1, "batch_size": 16},
            "data": {"num_classes": 3, "target_seq_len": 64},
            "model": {"time_pooling": {"name": "max", "params": {"scale": 1.0}}}}},
    }
    (tmp_path / "their.yaml").write_text(yaml.safe_dump(config))
    target, report = "results/models/mine/final.pt", "results/reports/mine/metrics.json"
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
               "--configfile", str(tmp_path / "their.yaml"), "--cores", "2", target, report]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "SOURCE_DATE_EPOCH": "1764000000"})
    assert done.returncode == 0, done.stderr[-4000:]
    assert (tmp_path / target).exists()
    splits = json.loads((tmp_path / "results/datasets/PULSES_H5/splits.json").read_text())["splits"]
    assert splits == {"train": list(range(40)), "val": list(range(40, 50)), "test": list(range(50, 60))}
    trained = json.loads((tmp_path / "results/models/mine/config.json").read_text())
    assert trained["model"]["params"]["time_pooling"] == {"name": "max", "params": {"scale": 1.0}}
    assert len(json.loads((tmp_path / "results/models/mine/history.json").read_text())) == 1
    metrics = json.loads((tmp_path / report).read_text())
    assert metrics["task"] == "seq2static_classification" and metrics["split"] == "test"


def test_split_groups_with_an_index_are_numbered_by_it(tmp_path):
    data = np.random.default_rng(0).standard_normal((12, 8, 2)).astype(np.float32)
    labels = np.arange(12, dtype=np.int64) % 3
    order = np.random.default_rng(1).permutation(12)
    with h5py.File(tmp_path / "indexed.h5", "w") as f:
        for name, rows in {"train": order[:8], "val": order[8:10], "test": order[10:]}.items():
            group = f.create_group(name)
            group.create_dataset("data", data=data[rows])
            group.create_dataset("labels", data=labels[rows])
            group.create_dataset("index", data=rows)
    nc = frame(tmp_path, "INDEXED", {"domain": "sequences", "files": {"hdf5": str(tmp_path / "indexed.h5")}})
    ds, _ = stored(nc)
    assert np.array_equal(ds["data"].values, data) and np.array_equal(ds["labels"].values, labels)
    split_dataset(nc, tmp_path / "splits.json", {}, 3)
    splits = read_splits(tmp_path / "splits.json")
    assert {k: v.tolist() for k, v in splits.items()} == {
        "train": sorted(order[:8].tolist()), "val": sorted(order[8:10].tolist()), "test": sorted(order[10:].tolist())}
