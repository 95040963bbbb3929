"""I/O tuner: one throughput per setting through the training loaders, the fastest chosen,
WebDataset packings rewritten and measured, clear errors."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from trainset.domains.sequences import frame_sequences, make_sequence_tables
from trainset.errors import TrainsetError
from trainset.io.base import get_format
from trainset.splits import make_splits, write_splits
from trainset.train.io_tuner import _prefix, best_setting, tune_io, write_io_result

SCRIPTS = Path(__file__).resolve().parents[2] / "src" / "scripts"
FAST = {"seconds": 0.05, "seed": 0}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pulses")
    inputs, labels = make_sequence_tables("pulses", 160, seed=1, length=24)
    collection = frame_sequences(inputs, labels, "seq2static_classification", "pulses")
    splits = make_splits(len(collection), {"method": "random"}, seed=1)
    h5, wds = folder / "TS_pulses.h5", folder / "TS_pulses-wds"
    get_format("hdf5").write(collection, h5, splits)
    get_format("webdataset").write(collection, wds, splits, samples_per_shard=64)
    write_splits(splits, folder / "splits.json")
    return h5, wds


def test_one_result_per_setting_and_the_best_is_the_fastest(datasets, tmp_path):
    h5, _ = datasets
    result = tune_io(h5, batch_sizes=(16, 64), workers=(0, 1), **FAST)
    settings = [(r["batch_size"], r["num_workers"]) for r in result["results"]]
    assert settings == [(16, 0), (16, 1), (64, 0), (64, 1)]
    assert all(r["samples_per_s"] > 0 and r["batches"] >= 3 for r in result["results"])
    assert all("samples_per_member" not in r for r in result["results"])
    assert result["best"] == max(result["results"], key=lambda r: r["samples_per_s"])
    assert result["machine"]["cpus"] == os.cpu_count()
    write_io_result(result, tmp_path / "io.json")
    assert json.loads((tmp_path / "io.json").read_text()) == {**result, "format_version": 1}


def test_webdataset_packings_are_rewritten_and_measured(datasets, tmp_path):
    _, wds = datasets
    work = tmp_path / "work"
    work.mkdir()
    result = tune_io(wds, batch_sizes=(32,), workers=(0,), samples_per_member=[1, 16], workdir=work, **FAST)
    assert [r["samples_per_member"] for r in result["results"]] == [1, 16]
    assert all(r["samples_per_s"] > 0 for r in result["results"])
    assert result["best"] == max(result["results"], key=lambda r: r["samples_per_s"])
    assert not list(work.iterdir())  # the temporary copies are gone
    stored = tune_io(wds, batch_sizes=(32,), workers=(0,), **FAST)
    assert stored["results"][0]["samples_per_member"] == 1  # as stored


def test_prefix_keeps_the_requested_split_samples(datasets):
    _, wds = datasets
    prefix, splits, kept = _prefix(wds, "val", 8)
    assert splits["val"].size == 8 and len(prefix) == int(splits["val"][-1]) + 1
    assert kept == {"samples_per_shard": 64}  # the stored shard size
    assert sum(ix.size for ix in splits.values()) == len(prefix)
    result = tune_io(wds, split="val", batch_sizes=(4,), workers=(0,), samples_per_member=4, max_samples=8, **FAST)
    assert result["results"][0]["samples_per_member"] == 4 and result["split"] == "val"


def test_ties_go_to_smaller_batches_and_fewer_workers():
    rows = [{"batch_size": 256, "num_workers": 0, "samples_per_s": 100.0},
            {"batch_size": 64, "num_workers": 2, "samples_per_s": 100.0},
            {"batch_size": 64, "num_workers": 1, "samples_per_s": 100.0},
            {"batch_size": 1024, "num_workers": 0, "samples_per_s": 104.0}]
    assert best_setting(rows)["batch_size"] == 1024
    assert best_setting(rows, tolerance=0.05) == rows[2]
    assert best_setting(rows[:3]) == rows[2]


def test_bad_requests_are_refused(datasets):
    h5, wds = datasets
    with pytest.raises(TrainsetError, match="samples_per_member applies to WebDataset"):
        tune_io(h5, samples_per_member=[1, 16], **FAST)
    with pytest.raises(TrainsetError, match="batch_sizes"):
        tune_io(h5, batch_sizes=(), **FAST)
    with pytest.raises(TrainsetError, match="workers"):
        tune_io(h5, workers=(-1,), **FAST)
    with pytest.raises(TrainsetError, match="no split 'nope'"):
        tune_io(h5, split="nope", batch_sizes=(16,), workers=(0,), **FAST)


def test_rule_script(datasets, tmp_path):
    h5, _ = datasets
    spec = importlib.util.spec_from_file_location("tune_io_script", SCRIPTS / "tune_io.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    snakemake = SimpleNamespace(input=SimpleNamespace(dataset=str(h5)),
                                output=SimpleNamespace(io=str(tmp_path / "io.json")),
                                params=SimpleNamespace(seed=3, io_tuner={"batch_sizes": [16], "workers": [0],
                                                                         "seconds": 0.05}),
                                wildcards=SimpleNamespace(run="r"),
                                config={"seed": 3, "runs": {"r": {"dataset": "D", "training": {"device": "cpu"}}}})
    script.main(snakemake)
    result = json.loads((tmp_path / "io.json").read_text())
    assert result["seed"] == 3 and result["best"]["batch_size"] == 16
    assert result["machine"]["device"] == "cpu"  # the run's training.device
    snakemake.config["runs"]["r"]["training"]["device"] = "cuda"
    if not torch.cuda.is_available():
        with pytest.raises(TrainsetError, match="training.device: cuda asked for"):
            script.main(snakemake)
