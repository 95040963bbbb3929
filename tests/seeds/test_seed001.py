"""Seed 001 (soen_toolkit sequence tasks): the guide's HDF5 files and YAMLs, as its users have them.

Each file is written with h5py exactly as the guide's code writes it (smaller N), beside the
guide's YAML verbatim (plus ``epochs: 1`` and a small batch, to stay fast), and trained with
``python -m trainset train --config``.
"""

import json
import logging

import h5py
import numpy as np
import pytest
import yaml

from tests.seeds.seed001_files import write_forecasting, write_pulse
from trainset.cli import main
from trainset.errors import TrainsetError
from trainset.tasks import task_from_paradigm

FAST = {"epochs": 1, "batch_size": 16, "warmup_epochs": 0}


def _train(tmp_path, config_text, caplog=None, **extra):
    """Write the guide's YAML (epochs/batch added), train it with the CLI, return the run folder."""
    cfg = yaml.safe_load(config_text)
    cfg["training"].update(FAST, **extra)
    path = tmp_path / "their.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert main(["train", "--config", str(path), "--out", str(out)]) == 0
    return out


# --------------------------------------------------------------------------- 1. pulse, pre-split

PULSE_YAML = """
training:
  paradigm: supervised
  mapping: seq2static
  losses: [{name: cross_entropy, weight: 1.0, params: {}}]

data:
  data_path: pulse_classification.h5
  num_classes: 3
  target_seq_len: 64

model:
  time_pooling: {name: max, params: {scale: 1.0}}
"""


def test_pulse_presplit_without_index_trains_with_the_sequence_model(tmp_path, caplog):
    write_pulse(tmp_path / "pulse_classification.h5", N=120, train=80, val=20)
    with caplog.at_level(logging.INFO):
        out = _train(tmp_path, PULSE_YAML)  # data_path is relative to the YAML's folder
    assert (out / "best.pt").exists() and len(json.loads((out / "history.json").read_text())) == 1
    assert "model.name auto: sequence, the natural model of task seq2static_classification" in caplog.text
    assert not (out / "splits.json").exists()  # the file's own groups are the splits
    info = json.loads((out / "config.json").read_text())
    assert info["model"]["params"]["time_pooling"] == {"name": "max", "params": {"scale": 1.0}}


# --------------------------------------------------------------------------- 4. forecasting, single layout

FORECAST_YAML = """
training:
  paradigm: supervised
  mapping: seq2seq
  losses: [{name: mse, weight: 1.0, params: {}}]

data:
  data_path: forecasting.h5
  target_seq_len: 8  # Must match forecast_len!
"""


def test_forecasting_single_layout_is_auto_split_and_the_split_saved(tmp_path):
    write_forecasting(tmp_path / "forecasting.h5", N=100)
    out = _train(tmp_path, FORECAST_YAML)
    saved = json.loads((out / "splits.json").read_text())
    sizes = {k: len(v) for k, v in saved["splits"].items()}
    assert sizes == {"train": 70, "val": 20, "test": 10}  # the old code's 70/20/10
    assert saved["fractions"] == {"train": 0.7, "val": 0.2, "test": 0.1} and saved["method"] == "random"
    every = sorted(i for ix in saved["splits"].values() for i in ix)
    assert every == list(range(100)) and saved["splits"]["train"] != list(range(70))  # shuffled, complete
    again = _train(tmp_path, FORECAST_YAML)  # same seed: the same cut, byte for byte
    assert (again / "splits.json").read_bytes() == (out / "splits.json").read_bytes()
    other = tmp_path / "seed7"
    other.mkdir()
    write_forecasting(other / "forecasting.h5", N=100)
    cut7 = json.loads((_train(other, FORECAST_YAML, seed=7) / "splits.json").read_text())
    assert cut7["splits"]["train"] != saved["splits"]["train"] and cut7["seed"] == 7


def test_data_scaler_on_an_auto_split_file_is_fitted_on_its_train_cut(tmp_path):
    write_forecasting(tmp_path / "forecasting.h5", N=100)
    out = _train(tmp_path, FORECAST_YAML.replace("  target_seq_len: 8", "  target_seq_len: 8\n  scaler: standard"))
    cut = json.loads((out / "splits.json").read_text())["splits"]["train"]
    scalers = json.loads((out / "scalers.json").read_text())
    assert scalers["dataset"]["split"] == "train" and scalers["dataset"]["sizes"] == {"all": 70}  # not all 100
    with h5py.File(tmp_path / "forecasting.h5", "r") as f:
        data = f["data"][:]
    mean = np.asarray(next(iter(scalers["statistics"]["data"].values()))["mean"], dtype=np.float64)
    np.testing.assert_allclose(mean.ravel(), data[sorted(cut)].reshape(-1, data.shape[-1]).mean(0), rtol=1e-5)


def test_split_fractions_configurable_and_refused_where_a_file_has_splits(tmp_path, capsys):
    write_forecasting(tmp_path / "forecasting.h5", N=100)
    text = FORECAST_YAML.replace("  target_seq_len: 8", "  target_seq_len: 8\n  split_fractions: "
                                 "{train: 0.5, val: 0.5}")
    out = _train(tmp_path, text)
    assert {k: len(v) for k, v in json.loads((out / "splits.json").read_text())["splits"].items()} == \
        {"train": 50, "val": 50}
    write_pulse(tmp_path / "pulse_classification.h5", N=120, train=80, val=20)
    pulse = PULSE_YAML.replace("  target_seq_len: 64", "  target_seq_len: 64\n  split_fractions: "
                               "{train: 0.8, val: 0.2}")
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(pulse)
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "x")]) == 1
    assert "data.split_fractions" in capsys.readouterr().err and not (tmp_path / "x" / "best.pt").exists()
    bad = FORECAST_YAML.replace("  target_seq_len: 8", "  target_seq_len: 8\n  split_fractions: {train: 0.9, "
                                "test: 0.2}")
    cfg.write_text(bad)
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "y")]) == 1
    err = capsys.readouterr().err
    assert "sum to 1.1" in err


# --------------------------------------------------------------------------- 5. autoencoder

AUTOENCODER_YAML = """
training:
  paradigm: self_supervised
  mapping: seq2seq
  losses: [{name: mse, weight: 1.0, params: {}}]

data:
  data_path: autoencoder.h5
  target_seq_len: 40
"""


def write_autoencoder(folder, N=60, T=40, D=6):
    np.random.seed(2)
    data = np.random.randn(N, T, D).astype(np.float32)
    for i in range(N):
        t = np.arange(T)
        data[i, :, 0] += np.sin(2 * np.pi * t / 10)
        data[i, :, 1] += np.cos(2 * np.pi * t / 15)
    dummy_labels = np.zeros(N, dtype=np.int64)
    with h5py.File(folder / "autoencoder.h5", "w") as f:
        f.create_dataset("data", data=data)
        f.create_dataset("labels", data=dummy_labels)  # Will be ignored


def test_autoencoder_self_supervised_seq2seq_is_reconstruction(tmp_path, caplog):
    write_autoencoder(tmp_path)
    with caplog.at_level(logging.INFO):
        out = _train(tmp_path, AUTOENCODER_YAML)
    assert "dataset stores no task: reconstruction" in caplog.text
    import torch

    best = torch.load(out / "best.pt", weights_only=True)
    assert json.loads(best["meta"])["info"]["task"] == "reconstruction"  # evaluation builds from this
    assert (out / "splits.json").exists()
    # the next-step losses train on the same file (the inputs are the targets)
    _train(tmp_path, AUTOENCODER_YAML.replace("name: mse,", "name: autoregressive_loss,"))


# --------------------------------------------------------------------------- 6. summary

SUMMARY_YAML = """
training:
  paradigm: self_supervised
  mapping: seq2static
  losses: [{name: mse, weight: 1.0, params: {}}]

data:
  data_path: unsupervised_summary.h5
  target_seq_len: 30

model:
  time_pooling: {name: mean, params: {scale: 1.0}}
"""


def write_summary(folder, N=60, T=30, D=5):
    np.random.seed(3)
    data = np.random.randn(N, T, D).astype(np.float32)
    labels = np.column_stack([
        np.mean(data[:, :, 0], axis=1),    # mean of first feature
        np.max(data[:, :, 1], axis=1),     # max of second feature
        np.var(data[:, :, 2], axis=1)      # variance of third feature
    ]).astype(np.float32)
    with h5py.File(folder / "unsupervised_summary.h5", "w") as f:
        f.create_dataset("data", data=data)
        f.create_dataset("labels", data=labels)


def test_summary_self_supervised_seq2static(tmp_path, caplog):
    write_summary(tmp_path)
    with caplog.at_level(logging.INFO):
        out = _train(tmp_path, SUMMARY_YAML)
    assert "dataset stores no task: summary" in caplog.text and (out / "best.pt").exists()


def test_paradigm_that_contradicts_the_labels_is_refused(tmp_path, capsys):
    write_autoencoder(tmp_path)
    text = AUTOENCODER_YAML.replace("paradigm: self_supervised", "paradigm: supervised")
    cfg = tmp_path / "their.yaml"
    cfg.write_text(text)
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "training.mapping is seq2seq" in err and "seq2static_classification" in err
    assert not (tmp_path / "run" / "best.pt").exists()


# --------------------------------------------------------------------------- 2 and 3: sequence stats, labeling

def test_the_guides_other_layouts_map_to_their_tasks():
    """Sections 2 and 3 of the guide, by their per-sample shapes (no YAML in the guide)."""
    assert task_from_paradigm(None, None, (2,), np.float32, (50, 3)) == "seq2static_regression"
    assert task_from_paradigm("supervised", "seq2seq", (32,), np.int64, (32, 4)) == "seq2seq_classification"
    assert task_from_paradigm("supervised", "seq2static", (), np.int64, (64, 1)) == "seq2static_classification"
    assert task_from_paradigm("self_supervised", "seq2seq", None, None, (40, 6)) == "reconstruction"
    with pytest.raises(TrainsetError, match="summary.*labels \\[N, K\\] float32"):
        task_from_paradigm("self_supervised", "seq2static", (), np.int64, (30, 5))
    with pytest.raises(TrainsetError, match="fit no sequence task"):
        task_from_paradigm("supervised", None, (3, 4, 5), np.float32, (30, 5))


def test_a_stored_task_decides_and_a_contradicting_paradigm_is_refused():
    from trainset.tasks import check_paradigm, natural_model, resolve_task

    info = {"task": "reconstruction", "variables": {"data": {"shape": [40, 6], "dtype": "float32"}}}
    assert resolve_task(info, None, None) == "reconstruction"
    assert resolve_task(info, "self_supervised", "seq2seq") == "reconstruction"
    with pytest.raises(TrainsetError, match="training.paradigm: supervised.*Fix: set training.paradigm: "
                                            "self_supervised"):
        resolve_task(info, "supervised", None)
    with pytest.raises(TrainsetError, match="not a sequence task. Fix: remove training.mapping"):
        check_paradigm("thresholds", None, "seq2seq")
    with pytest.raises(TrainsetError, match="generative"):
        check_paradigm("frames", "supervised", None)
    assert [natural_model(t) for t in ("summary", "thresholds", "irf", "frames")] == \
        ["sequence", "flight", "world_mlp", "diffusion"]
    with pytest.raises(TrainsetError, match="Fix: set model.name"):
        natural_model(None)


def test_two_unnamed_guide_yamls_train_into_their_own_folders(tmp_path, monkeypatch):
    write_pulse(tmp_path / "pulse_classification.h5", N=120, train=80, val=20)
    write_forecasting(tmp_path / "forecasting.h5", N=100)
    monkeypatch.chdir(tmp_path)
    for stem, text in (("pulse", PULSE_YAML), ("forecast", FORECAST_YAML)):
        (tmp_path / f"{stem}.yaml").write_text(text.replace("training:\n", "training:\n  epochs: 1\n", 1))
        assert main(["train", "--config", f"{stem}.yaml"]) == 0
    pulse, forecast = (json.loads((tmp_path / "results/models" / s / "config.json").read_text())
                       for s in ("pulse", "forecast"))
    assert pulse["name"] == "pulse" and pulse["data"]["num_classes"] == 3
    assert forecast["name"] == "forecast" and (tmp_path / "results/models/forecast/splits.json").exists()
