"""Evaluating a trained run: metrics on the named split, a report, and the honesty rules."""

from __future__ import annotations

import io
import json

import pytest
import torch

from tests.conftest import stored_sequences
from trainset.domains.sequences import frame_sequences, make_sequence_tables
from trainset.errors import TrainsetError
from trainset.evaluate.stage import evaluate_run, write_index
from trainset.io.base import get_format
from trainset.scalers import fit_dataset_scalers
from trainset.splits import make_splits, read_splits
from trainset.train.config import TrainingConfig
from trainset.train.run import train_run

RUN = {"name": "stats", "model": {"name": "mlp", "params": {"hidden": [16]}},
       "training": {"losses": [{"name": "mse"}], "epochs": 2, "batch_size": 32}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval")
    path = stored_sequences(folder / "data", "statistics", 200, seed=3, length=16)
    splits = read_splits(path.parent / "splits.json")
    scalers = folder / "scalers.json"
    fit_dataset_scalers(path, scalers)
    train_run(TrainingConfig.from_dict(RUN), path, folder / "run", scalers)
    return folder, path, scalers, splits


def test_report_and_metrics_on_the_test_split(trained, tmp_path):
    folder, path, scalers, splits = trained
    result = evaluate_run(RUN, folder / "run", path, scalers, tmp_path / "report")
    metrics = json.loads((tmp_path / "report/metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["task"] == "seq2static_regression"
    # the workflow passes None for the sampling settings of a run that draws nothing: same scores
    evaluate_run(RUN, folder / "run", path, scalers, tmp_path / "none", generated=None, sample_steps=None)
    assert json.loads((tmp_path / "none/metrics.json").read_text())["metrics"] == metrics["metrics"]
    assert metrics["metrics"]["model"]["count"] == splits["test"].size * 3  # 3 targets per sample
    assert {"rmse", "baseline_rmse"} <= set(metrics["metrics"]["headline"])
    assert {"training mean", "linear (ridge)"} <= set(metrics["metrics"])
    assert len(metrics["provenance"]["checkpoint_sha256"]) == 64
    page = (tmp_path / "report/report.html").read_text()
    assert "data:image/png;base64," in page and "&#x27;test&#x27; split" in page or "test" in page
    write_index([tmp_path / "report/metrics.json"], tmp_path / "index.html")
    assert "stats/report.html" in (tmp_path / "index.html").read_text()
    assert result["metrics"]["headline"]["rmse"] > 0


def test_training_split_is_refused(trained, tmp_path):
    folder, path, scalers, _ = trained
    with pytest.raises(TrainsetError, match="training split"):
        evaluate_run(RUN, folder / "run", path, scalers, tmp_path / "r", split="train")


def test_mismatched_scalers_dataset_or_checkpoint_fail(trained, tmp_path):
    folder, path, scalers, _ = trained
    other_scalers = tmp_path / "other.json"
    fit_dataset_scalers(path, other_scalers, spec={"data": "minmax"})
    with pytest.raises(TrainsetError, match="scalers"):
        evaluate_run(RUN, folder / "run", path, other_scalers, tmp_path / "a")
    copy = tmp_path / "data" / "TS_stats.h5"
    copy.parent.mkdir()
    inputs, labels = make_sequence_tables("statistics", 200, seed=4, length=16)
    collection = frame_sequences(inputs, labels, "seq2static_regression", "stats")
    get_format("hdf5").write(collection, copy, make_splits(200, {"method": "random"}, seed=4))
    with pytest.raises(TrainsetError, match="trained on dataset"):
        evaluate_run(RUN, folder / "run", copy, scalers, tmp_path / "b")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "best.pt").write_bytes(b"not a checkpoint")
    (broken / "history.json").write_text("[]")
    with pytest.raises(TrainsetError, match="cannot load checkpoint"):
        evaluate_run(RUN, broken, path, scalers, tmp_path / "c")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_world_list_mismatch_fails(trained, tmp_path):
    folder, path, scalers, _ = trained
    state = torch.load(folder / "run/best.pt", weights_only=True)
    meta = json.loads(state["meta"])
    meta["worlds"] = ["nk", "var"]
    state["meta"] = json.dumps(meta)
    tampered = tmp_path / "run"
    tampered.mkdir()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    (tampered / "best.pt").write_bytes(buffer.getvalue())
    (tampered / "history.json").write_text((folder / "run/history.json").read_text())
    with pytest.raises(TrainsetError, match="worlds"):
        evaluate_run(RUN, tampered, path, scalers, tmp_path / "out")


def test_webdataset_with_workers_keeps_rows_aligned_with_baselines(tmp_path):
    """Worker processes interleave shards; predictions are put back in the split's order, so the
    baselines (which read the split in stored order) are scored against the right rows."""
    path = stored_sequences(tmp_path / "data", "pulses", 240, seed=5, length=24, fmt="webdataset",
                            samples_per_shard=20, samples_per_member=4)
    run = {"name": "p", "model": {"name": "sequence", "params": {"kind": "tcn", "hidden": 8}},
           "training": {"losses": [{"name": "cross_entropy"}], "epochs": 1, "batch_size": 16, "num_workers": 2}}
    train_run(TrainingConfig.from_dict(run), path, tmp_path / "run")
    result = evaluate_run(run, tmp_path / "run", path, None, tmp_path / "report")
    assert result["metrics"]["logistic regression"]["accuracy"] > 0.5  # misaligned rows would score ~1/3
