"""The trainer end to end on real stored datasets: resume equivalence, determinism, checkpoint
contents, world lists, fresh starts after config changes, and the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import yaml

from tests.conftest import stored_sequences
from trainset.domains.macro import extrapolation_splits, frame_worlds, simulate_worlds
from trainset.io.base import get_format
from trainset.scalers import fit_dataset_scalers
from trainset.train.config import TrainingConfig
from trainset.train.run import train_run
from trainset.train.trainer import checkpoint_meta, load_checkpoint

RUN = {
    "name": "pulses",
    "model": {"name": "sequence", "params": {"kind": "gru", "hidden": 16, "layers": 1}},
    "training": {"losses": [{"name": "cross_entropy"}], "epochs": 4, "batch_size": 32, "lr": 0.01,
                 "save_every_n_epochs": 2, "patience": 10},
}


@pytest.fixture(scope="module")
def pulses(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pulses")
    path = stored_sequences(folder, "pulses", 160, seed=1, length=24)
    scalers = folder / "scalers.json"
    fit_dataset_scalers(path, scalers)
    return path, scalers


def weights(folder, name="final.pt"):
    return load_checkpoint(folder / name)["model"]


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resumed_run_ends_with_the_same_weights(pulses, tmp_path):
    path, scalers = pulses
    cfg = TrainingConfig.from_dict(RUN)
    train_run(cfg, path, tmp_path / "straight", scalers)
    interrupted = train_run(cfg, path, tmp_path / "resumed", scalers, max_epochs=2)
    assert len(interrupted) == 2 and not (tmp_path / "resumed/final.pt").exists()
    history = train_run(cfg, path, tmp_path / "resumed", scalers)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert same(weights(tmp_path / "straight"), weights(tmp_path / "resumed"))
    straight = json.loads((tmp_path / "straight/history.json").read_text())
    assert straight == history


def test_same_seed_same_bytes_and_checkpoint_contents(pulses, tmp_path):
    path, scalers = pulses
    cfg = TrainingConfig.from_dict(RUN)
    first = train_run(cfg, path, tmp_path / "a", scalers)
    train_run(cfg, path, tmp_path / "b", scalers)
    for name in ("final.pt", "best.pt", "epoch_2.pt", "epoch_4.pt", "history.json", "config.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert first[-1]["train_loss"] < first[0]["train_loss"]
    state = load_checkpoint(tmp_path / "a/final.pt")  # weights_only=True
    assert {"model", "optimizer", "scheduler", "early_stopping", "rng", "epoch"} <= set(state)
    meta = checkpoint_meta(state)
    assert len(meta["dataset_sha256"]) == 64 and len(meta["scaler_sha256"]) == 64
    other = TrainingConfig.from_dict({**RUN, "training": {**RUN["training"], "seed": 7}})
    train_run(other, path, tmp_path / "c", scalers)
    assert not same(weights(tmp_path / "a"), weights(tmp_path / "c"))


def test_changed_config_starts_afresh(pulses, tmp_path):
    path, scalers = pulses
    train_run(TrainingConfig.from_dict(RUN), path, tmp_path / "run", scalers, max_epochs=2)
    shorter = TrainingConfig.from_dict({**RUN, "training": {**RUN["training"], "epochs": 1}})
    history = train_run(shorter, path, tmp_path / "run", scalers)
    assert [h["epoch"] for h in history] == [1]
    assert not (tmp_path / "run/epoch_2.pt").exists()


def test_world_list_is_stored_with_the_checkpoint(tmp_path):
    theta, irfs, metadata = simulate_worlds({"nk": 30, "var": 30}, seed=0)
    collection = frame_worlds(theta, irfs, metadata)
    collection.attrs["task"] = "irf"
    splits = extrapolation_splits(collection, seed=0)
    path = tmp_path / "TS_w.zarr"
    get_format("zarr").write(collection, path, splits)
    cfg = TrainingConfig.from_dict({
        "name": "w", "model": {"name": "world_mlp", "params": {"hidden": [16]}},
        "training": {"losses": [{"name": "horizon_mse", "params": {"weights": "impact"}}], "epochs": 2,
                     "batch_size": 16},
    })
    history = train_run(cfg, path, tmp_path / "run")
    assert len(history) == 2
    assert checkpoint_meta(load_checkpoint(tmp_path / "run/best.pt"))["worlds"] == ["nk", "var"]


def test_command_line_training(pulses, tmp_path):
    path, scalers = pulses
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({**RUN, "dataset": str(path), "training": {**RUN["training"], "epochs": 1}}))
    result = subprocess.run([sys.executable, "-m", "trainset", "train", "--config", str(config),
                             "--scalers", str(scalers), "--out", str(tmp_path / "cli")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cli/final.pt").exists() and (tmp_path / "cli/history.json").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**RUN, "dataset": str(path), "training": {"lr_max": 1}}))
    result = subprocess.run([sys.executable, "-m", "trainset", "train", "--config", str(bad)],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "training.lr_max" in result.stderr and "Traceback" not in result.stderr


def test_rerun_of_a_finished_run_restores_best_without_training(pulses, tmp_path):
    """Snakemake deletes a job's outputs before rerunning it: the run must come back whole."""
    path, scalers = pulses
    cfg = TrainingConfig.from_dict(RUN)
    train_run(cfg, path, tmp_path / "run", scalers)
    before = {name: (tmp_path / "run" / name).read_bytes() for name in ("best.pt", "final.pt", "history.json")}
    for name in ("best.pt", "final.pt", "history.json", "config.json"):
        (tmp_path / "run" / name).unlink()
    train_run(cfg, path, tmp_path / "run", scalers)
    for name, content in before.items():
        assert (tmp_path / "run" / name).read_bytes() == content, name


def test_an_outdated_last_checkpoint_trains_afresh_and_so_does_a_corrupt_one_saying_so(pulses, tmp_path, caplog):
    path, scalers = pulses
    cfg = TrainingConfig.from_dict(RUN)
    train_run(cfg, path, tmp_path / "run", scalers, max_epochs=2)
    last = tmp_path / "run/last.pt"
    state = torch.load(last, weights_only=True)
    state["format_version"] = 0
    torch.save(state, last)
    with caplog.at_level("WARNING"):
        history = train_run(cfg, path, tmp_path / "run", scalers, max_epochs=1)
    assert [h["epoch"] for h in history] == [1]  # a resumed run would report epochs 1 and 2
    assert "checkpoint format_version 0 is from before format versions" in caplog.text
    last.write_bytes(b"not a checkpoint")  # and no epoch_N.pt to fall back to (save_every_n_epochs: 2)
    caplog.clear()
    with caplog.at_level("WARNING"):
        history = train_run(cfg, path, tmp_path / "run", scalers, max_epochs=1)
    assert [h["epoch"] for h in history] == [1]
    assert f"{last}: cannot load checkpoint" in caplog.text and "starting afresh" in caplog.text
