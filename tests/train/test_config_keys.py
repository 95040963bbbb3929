"""Every training-config key -> its asserted effect (issue 14: no key is accepted and ignored).

:data:`EFFECTS` has one entry per field of :class:`TrainingConfig` and of each of its sections,
and :func:`test_every_key_has_an_entry` enumerates the dataclass fields, so a new field without an
entry fails here. Each entry trains a tiny run (a 48-sample seed-001 pulses dataset, a 4-unit GRU,
2 epochs) with the key changed and asserts that the trained weights or a saved artifact changed,
or that the key is refused with its name in the message. The logging keys (``log_every_n_steps``,
``loggers``) assert the run folder's metrics.csv and TensorBoard files; runtime keys (``num_workers``, ``threads``, ``deterministic``,
``data.variables``) assert the loader or torch setting they must produce; ``device`` asserts the
device recorded with the weights and, without a GPU, that ``cuda`` is refused and ``cpu`` trains as ``auto``.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import fields
from typing import Any, Callable

import pytest
import torch

from tests.conftest import stored_sequences
from trainset.errors import TrainsetError
from trainset.train.config import DataSection, ModelSection, TrainingConfig, TrainingSection
from trainset.train.run import prepare_run, train_run
from trainset.train.trainer import load_checkpoint

BASE: dict[str, Any] = {
    "name": "keys",
    "model": {"name": "sequence", "params": {"kind": "gru", "hidden": 4, "layers": 1}},
    "training": {"losses": [{"name": "cross_entropy"}], "epochs": 2, "batch_size": 16, "lr": 0.02,
                 "save_every_n_epochs": 1},
}


def merged(base: dict, override: dict) -> dict:
    """``base`` with ``override``'s sections merged key by key (top-level keys replaced)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "augment":
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


class Runs:
    """Trains configs on the module's dataset, caching each folder by its config."""

    def __init__(self, root, path, other):
        self.root, self.path, self.other, self.done = root, path, other, {}

    def train(self, override: dict, base: dict | None = None, dataset=None):
        cfg = merged(merged(BASE, base or {}), override)
        key = json.dumps([cfg, str(dataset)], sort_keys=True)
        if key not in self.done:
            folder = self.root / f"run{len(self.done)}"
            train_run(TrainingConfig.from_dict(cfg), dataset or self.path, folder)
            self.done[key] = folder
        return self.done[key]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("keys")
    path = stored_sequences(root / "a", "pulses", 48, seed=1, length=20)
    other = stored_sequences(root / "b", "pulses", 48, seed=2, length=20)
    return Runs(root, path, other)


def weights(folder, name="final.pt"):
    return load_checkpoint(folder / name)["model"]


def differ(a, b) -> bool:
    a, b = weights(a), weights(b)
    return a.keys() != b.keys() or any(a[k].shape != b[k].shape or not torch.equal(a[k], b[k]) for k in a)


def history(folder):
    return json.loads((folder / "history.json").read_text())


# ----------------------------------------------------------------------------- effect kinds

def changes_weights(override: dict, base: dict | None = None) -> Callable:
    """Training with ``override`` (on top of ``base``) ends with other weights than without it."""
    def check(runs):
        assert differ(runs.train(override, base), runs.train({}, base)), f"{override} left the weights unchanged"
    return check


def refused(override: dict, key: str, base: dict | None = None) -> Callable:
    """The key is refused (at config time or before the first step), its name in the message."""
    def check(runs):
        with pytest.raises(TrainsetError) as err:
            runs.train(override, base)
        assert key in str(err.value)
    return check


def custom(fn: Callable) -> Callable:
    return fn


def _dataset(runs):
    a = runs.train({"dataset": str(runs.path)}, dataset=runs.path)
    b = runs.train({"dataset": str(runs.other)}, dataset=runs.other)
    assert differ(a, b)
    assert json.loads((b / "config.json").read_text())["dataset"] == str(runs.other)


def _name_via_cli(runs):
    import os

    from trainset.cli import main

    work = runs.root / "cli"
    work.mkdir(exist_ok=True)
    config = work / "run.yaml"
    cfg = merged(BASE, {"name": "renamed", "dataset": str(runs.path)})
    config.write_text(json.dumps(cfg))  # JSON is YAML
    here = os.getcwd()
    try:
        os.chdir(work)
        assert main(["train", "--config", str(config)]) == 0
    finally:
        os.chdir(here)
    assert (work / "results/models/renamed/final.pt").exists()  # the CLI's folder is the run's name


def _format(runs):
    from pathlib import Path

    common = (Path(__file__).resolve().parents[2] / "workflow/rules/common.smk").read_text()
    assert 'dataset_file(name, cfg.get("format", TrainingConfig.format))' in common  # picks the stored copy
    refused({"format": "parquet"}, "format")(runs)


def _patience(runs):
    base = {"training": {"epochs": 3, "min_delta": 0.9}}  # no epoch improves by 90%
    assert len(history(runs.train({"training": {"patience": 1}}, base))) == 2
    assert len(history(runs.train({}, base))) == 3


def _min_delta(runs):
    assert history(runs.train({}))[1]["improved"] is True
    assert history(runs.train({"training": {"min_delta": 0.9}}))[1]["improved"] is False


def _min_delta_mode(runs):
    folder = runs.train({"training": {"min_delta_mode": "absolute", "min_delta": 0.02}})
    losses = [h["val_loss"] for h in history(folder)]
    assert history(folder)[1]["improved"] is (losses[1] < losses[0] - 0.02)
    assert history(runs.train({}))[1]["improved"] is True  # relative 1e-3: any drop counts
    refused({"training": {"min_delta": 2.0}}, "training.min_delta")(runs)
    assert len(history(runs.train({"training": {"min_delta_mode": "absolute", "min_delta": 2.0}}))) == 2


def _save_every(runs):
    assert (runs.train({}) / "epoch_1.pt").exists()
    assert not (runs.train({"training": {"save_every_n_epochs": 0}}) / "epoch_1.pt").exists()


def _epochs(runs):
    assert len(history(runs.train({"training": {"epochs": 3}}))) == 3
    changes_weights({"training": {"epochs": 3}})(runs)


def _val_split(runs):
    a, b = history(runs.train({})), history(runs.train({"training": {"val_split": "test"}}))
    assert a[0]["val_loss"] != b[0]["val_loss"]


def _num_workers(runs):
    cfg = TrainingConfig.from_dict(merged(BASE, {"training": {"num_workers": 1}}))
    loader = prepare_run(cfg, runs.path, model=False).batches("train", True)(1)
    assert loader.num_workers == 1


def _threads(runs):
    before = torch.get_num_threads()
    try:
        runs.train({"training": {"threads": 2}})
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def _deterministic(runs):
    try:
        runs.train({"training": {"deterministic": False}})
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(True, warn_only=True)


def _device(runs):
    from trainset.train.trainer import checkpoint_meta

    cpu = runs.train({"training": {"device": "cpu"}})
    assert checkpoint_meta(load_checkpoint(cpu / "final.pt"))["device"] == "cpu"  # recorded with the weights
    refused({"training": {"device": "gpu"}}, "training.device")(runs)  # not a device name
    if torch.cuda.is_available():  # a GPU host: cuda trains there (tests/gpu check it in depth)
        cuda = runs.train({"training": {"device": "cuda"}})
        assert checkpoint_meta(load_checkpoint(cuda / "final.pt"))["device"] == "cuda:0"
        return
    refused({"training": {"device": "cuda"}}, "training.device")(runs)  # no GPU here: refused, never the CPU
    assert not differ(cpu, runs.train({}))  # auto is the CPU on this machine: the same weights


def _precision(runs):
    changes_weights({"training": {"precision": "bf16"}})(runs)
    changes_weights({"training": {"precision": "fp16"}})(runs)
    scaler = load_checkpoint(runs.train({"training": {"precision": "fp16"}}) / "final.pt")["grad_scaler"]
    assert scaler["_growth_tracker"] + (scaler["scale"] != 65536.0) > 0  # fp16's scaler stepped and was saved
    assert "grad_scaler" not in load_checkpoint(runs.train({}) / "final.pt")
    assert TrainingConfig.from_dict(merged(BASE, {"training": {"amp": True}})).training.precision == "bf16"


def _target_seq_len(runs):
    refused({"data": {"target_seq_len": 8}}, "data.target_seq_len")(runs)  # inputs have 20 steps
    assert not differ(runs.train({"data": {"target_seq_len": 20}}), runs.train({}))  # the same length: checked


def _num_classes(runs):
    changes_weights({"data": {"num_classes": 4}})(runs)  # the head has 4 outputs
    assert weights(runs.train({"data": {"num_classes": 4}}))["head.weight"].shape[0] == 4
    refused({"data": {"num_classes": 2}}, "data.num_classes")(runs)  # a label is 2
    regression = stored_sequences(runs.root / "stats", "statistics", 24, seed=1, length=8)
    cfg = TrainingConfig.from_dict(merged(BASE, {"data": {"num_classes": 3},
                                                 "training": {"losses": [{"name": "mse"}]}}))
    with pytest.raises(TrainsetError, match=r"data.num_classes.*'seq2static_regression' is not a classification"):
        prepare_run(cfg, regression, model=False)  # no head counts classes: refused, never ignored


def _scaler(runs):
    changes_weights({"data": {"scaler": "standard"}})(runs)
    assert (runs.train({"data": {"scaler": "standard"}}) / "scalers.json").exists()


def _variables(runs):
    cfg = TrainingConfig.from_dict(merged(BASE, {"data": {"variables": ["data", "labels"]}}))
    run = prepare_run(cfg, runs.path)
    assert run.splits["train"].variables == ["data", "labels"]
    refused({"data": {"variables": ["data", "labels", "site"]}}, "data.variables")(runs)


def _augment(runs):
    from tests.seeds.flu_files import augment_changes_weights

    refused({"augment": {"poisson": True}}, "augment")(runs)  # no flu frames here: refused with the reason
    assert augment_changes_weights(runs.root / "flu")  # on a flu mix the trained weights change


def _worlds(runs):
    from trainset.domains.macro import extrapolation_splits, frame_worlds, simulate_worlds
    from trainset.io.base import get_format
    from trainset.scalers import fit_scalers
    from trainset.train.trainer import checkpoint_meta

    refused({"data": {"worlds": ["nk"]}}, "nk")(runs)  # a pulses file stores no world 'nk'
    theta, irfs, metadata = simulate_worlds({"nk": 24, "var": 24, "lss": 24}, seed=0)
    collection = frame_worlds(theta, irfs, metadata)
    collection.attrs["task"] = "irf"
    path = runs.root / "TS_worlds.zarr"
    get_format("zarr").write(collection, path, extrapolation_splits(collection, seed=0))
    scalers = runs.root / "worlds_scalers.json"
    fit_scalers(path, {"theta": "standard", "irfs": "standard"}).to_json(scalers)  # on every world
    cfg = {"name": "w", "model": {"name": "world_mlp", "params": {"hidden": [8]}},
           "training": {"losses": [{"name": "horizon_mse"}], "epochs": 1, "batch_size": 16}}
    for worlds, expected in ((None, ["nk", "var", "lss"]), (["lss", "nk"], ["nk", "lss"])):
        folder = runs.root / f"worlds_{expected}"
        train_run(TrainingConfig.from_dict(merged(cfg, {"data": {"worlds": worlds}})), path, folder, scalers)
        assert checkpoint_meta(load_checkpoint(folder / "final.pt"))["worlds"] == expected


def metric_steps(folder, split="train") -> list[int]:
    """The steps of ``split``'s rows in the run's metrics.csv."""
    import csv

    with open(folder / "metrics.csv", newline="") as fh:
        return [int(row["step"]) for row in csv.DictReader(fh) if row["split"] == split]


def _log_every_n_steps(runs):
    every_step = metric_steps(runs.train({"training": {"log_every_n_steps": 1}}))
    assert every_step == list(range(1, every_step[-1] + 1)) and len(every_step) >= 4
    assert metric_steps(runs.train({"training": {"log_every_n_steps": 2}})) == every_step[1::2]
    assert metric_steps(runs.train({"training": {"log_every_n_steps": 50}})) == []  # fewer steps than that


def _loggers(runs):
    import importlib.util

    assert (runs.train({}) / "metrics.csv").is_file()  # the default: [csv]
    off = runs.train({"training": {"loggers": []}})
    assert not (off / "metrics.csv").exists() and not (off / "tensorboard").exists()
    if importlib.util.find_spec("tensorboard") is None:
        refused({"training": {"loggers": ["tensorboard"]}}, "training.loggers")(runs)
        return
    board = runs.train({"training": {"loggers": ["tensorboard"]}})
    assert list((board / "tensorboard").glob("events.out.tfevents.*")) and not (board / "metrics.csv").exists()


EFFECTS: dict[str, Callable] = {
    "name": custom(_name_via_cli),
    "dataset": custom(_dataset),
    "format": custom(_format),
    "augment": custom(_augment),  # flu frames only
    "model.name": changes_weights({"model": {"name": "mlp", "params": {"hidden": [4]}}}),
    "model.params": changes_weights({"model": {"params": {"hidden": 5}}}),
    "training.paradigm": refused({"training": {"paradigm": "self_supervised"}}, "training.paradigm"),
    "training.mapping": refused({"training": {"mapping": "seq2seq"}}, "training.mapping"),
    "training.losses": changes_weights({"training": {"losses": [{"name": "cross_entropy",
                                                                 "params": {"label_smoothing": 0.2}}]}}),
    "training.optimizer": changes_weights({"training": {"optimizer": "sgd"}}),
    "training.lr": changes_weights({"training": {"lr": 0.05}}),
    "training.weight_decay": changes_weights({"training": {"weight_decay": 0.5}}),
    "training.batch_size": changes_weights({"training": {"batch_size": 8}}),
    "training.epochs": custom(_epochs),
    "training.warmup_epochs": changes_weights({"training": {"warmup_epochs": 0}}),
    "training.scheduler": changes_weights({"training": {"scheduler": "none"}}),
    "training.gamma": changes_weights({"training": {"gamma": 0.5}}, base={"training": {"scheduler": "exponential", "warmup_epochs": 0}}),
    "training.final_lr_fraction": changes_weights({"training": {"final_lr_fraction": 0.5}}),
    "training.grad_clip": changes_weights({"training": {"grad_clip": 1e-3}}),
    "training.patience": custom(_patience),
    "training.min_delta": custom(_min_delta),
    "training.min_delta_mode": custom(_min_delta_mode),
    "training.save_every_n_epochs": custom(_save_every),
    "training.log_every_n_steps": custom(_log_every_n_steps),
    "training.loggers": custom(_loggers),
    "training.seed": changes_weights({"training": {"seed": 7}}),
    "training.device": custom(_device),
    "training.precision": custom(_precision),
    "training.num_workers": custom(_num_workers),
    "training.threads": custom(_threads),
    "training.deterministic": custom(_deterministic),
    "training.train_split": changes_weights({"training": {"train_split": "test"}}),
    "training.val_split": custom(_val_split),
    "data.target_seq_len": custom(_target_seq_len),
    "data.target_seq_policy": changes_weights({"data": {"target_seq_len": 12, "target_seq_policy": "truncate"}}),
    "data.input_encoding": refused({"data": {"input_encoding": "one_hot", "vocab_size": 4}}, "data.input_encoding"),
    "data.vocab_size": refused({"data": {"vocab_size": 4}}, "data.vocab_size"),
    "data.num_classes": custom(_num_classes),
    "data.scaler": custom(_scaler),
    "data.variables": custom(_variables),
    "data.worlds": custom(_worlds),
    "data.split_fractions": refused({"data": {"split_fractions": {"train": 0.7, "val": 0.2, "test": 0.1}}},
                                    "data.split_fractions"),  # trainset-written files keep their splits
}
"""Dotted key -> check(runs). One-hot tokens, forecasts and seed layouts have tests of their own below."""


def all_keys() -> list[str]:
    sections = {"model": ModelSection, "training": TrainingSection, "data": DataSection}
    keys = [f.name for f in fields(TrainingConfig) if f.name not in sections]  # sections: by their fields
    for name, cls in sections.items():
        keys += [f"{name}.{f.name}" for f in fields(cls)]
    return keys


def test_every_key_has_an_entry():
    missing = [k for k in all_keys() if k not in EFFECTS]
    assert not missing, f"config keys without an asserted effect: {missing}. Add them to EFFECTS"
    assert not set(EFFECTS) - set(all_keys()), "EFFECTS lists keys that are no longer config fields"


@pytest.mark.parametrize("key", [k for k, v in EFFECTS.items() if v is not None])
def test_key_has_its_effect(key, runs):
    EFFECTS[key](runs)


def test_log_every_n_steps_logs_loss_and_throughput_at_debug(runs, caplog):
    with caplog.at_level(logging.DEBUG, logger="trainset.train.progress"):
        runs.train({"training": {"log_every_n_steps": 1, "seed": 3}})
    steps = [r.getMessage() for r in caplog.records if " step " in r.getMessage()]
    assert len(steps) >= 4 and "train loss" in steps[0] and "samples/s" in steps[0]
    assert all(r.levelno == logging.DEBUG for r in caplog.records if " step " in r.getMessage())
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="trainset.train.progress"):
        runs.train({"training": {"log_every_n_steps": 50, "seed": 3}})
    assert not [r for r in caplog.records if " step " in r.getMessage()]


# ----------------------------------------------------------------------------- seed 001 files, as the guide writes them

def test_forecast_target_seq_len_is_the_horizon_and_never_cuts_inputs(tmp_path):
    import h5py
    import numpy as np

    rng = np.random.default_rng(0)
    n, input_len, forecast_len, d = 60, 24, 8, 3  # the guide's forecasting example, smaller
    path = tmp_path / "forecasting.h5"
    with h5py.File(path, "w") as f:
        for split, rows in (("train", 40), ("val", 10), ("test", 10)):
            g = f.create_group(split)
            g.create_dataset("data", data=rng.standard_normal((rows, input_len, d)).astype(np.float32))
            g.create_dataset("labels", data=rng.standard_normal((rows, forecast_len, d)).astype(np.float32))
    guide = {"training": {"paradigm": "supervised", "mapping": "seq2seq", "losses": [{"name": "mse"}],
                          "epochs": 1, "batch_size": 16},
             "data": {"data_path": str(path), "target_seq_len": 8},
             "model": {"name": "sequence", "params": {"hidden": 4, "layers": 1}}}
    run = prepare_run(TrainingConfig.from_dict(guide), path)
    batch = next(iter(run.batches("train", False)(1)))
    prepared = run.prepare()(batch)
    assert prepared["data"].shape[1] == 24 and prepared["labels"].shape[1] == 8  # all 24 input steps kept
    assert train_run(TrainingConfig.from_dict(guide), path, tmp_path / "run")[0]["epoch"] == 1
    wrong = merged(guide, {"data": {"data_path": str(path), "target_seq_len": 6}})
    with pytest.raises(TrainsetError, match=r"target_seq_len is 6.*forecast horizon.*8 steps"):
        prepare_run(TrainingConfig.from_dict(wrong), path).prepare()
    policy = merged(guide, {"data": {"data_path": str(path), "target_seq_len": 6, "target_seq_policy": "truncate"}})
    with pytest.raises(TrainsetError, match="forecast horizon"):  # a policy never changes a horizon
        prepare_run(TrainingConfig.from_dict(policy), path).prepare()


def test_one_hot_tokens_are_selected_by_the_config_keys(tmp_path):
    import h5py
    import numpy as np

    rng = np.random.default_rng(1)
    path = tmp_path / "tokens.h5"
    with h5py.File(path, "w") as f:
        for split, rows in (("train", 40), ("val", 10), ("test", 10)):
            g = f.create_group(split)
            g.create_dataset("data", data=rng.integers(0, 5, (rows, 12)).astype(np.int64))  # [N, T] token ids
            g.create_dataset("labels", data=rng.integers(0, 3, rows).astype(np.int64))
    run = {"dataset": str(path), "model": {"name": "sequence", "params": {"hidden": 4, "layers": 1}},
           "training": {"paradigm": "supervised", "mapping": "seq2static", "losses": [{"name": "cross_entropy"}],
                        "epochs": 1, "batch_size": 16},
           "data": {"input_encoding": "one_hot", "vocab_size": 5, "num_classes": 3}}
    train_run(TrainingConfig.from_dict(run), path, tmp_path / "five")
    assert weights(tmp_path / "five")["encoder.weight_ih_l0"].shape[1] == 5  # one input per token id
    train_run(TrainingConfig.from_dict(merged(run, {"data": {"vocab_size": 7}})), path, tmp_path / "seven")
    assert weights(tmp_path / "seven")["encoder.weight_ih_l0"].shape[1] == 7
    with pytest.raises(TrainsetError, match="vocab"):  # id 4 outside a vocabulary of 4
        train_run(TrainingConfig.from_dict(merged(run, {"data": {"vocab_size": 4}})), path, tmp_path / "four")
    plain = merged(run, {"data": {"num_classes": 3, "input_encoding": None}})
    plain["data"].pop("vocab_size")
    with pytest.raises(TrainsetError, match="data.input_encoding: one_hot"):
        train_run(TrainingConfig.from_dict(plain), path, tmp_path / "plain")
    mlp = merged(run, {"model": {"name": "mlp", "params": {"hidden": [4]}}})
    with pytest.raises(TrainsetError, match=r"model.name 'mlp'.*one_hot.*Fix: use model.name: sequence"):
        prepare_run(TrainingConfig.from_dict(mlp), path)  # an MLP would read the token ids as magnitudes


def test_the_workflow_seed_is_the_default_training_seed():
    from pathlib import Path

    from trainset.train import workflow_config

    workflow = {"seed": 7, "runs": {"plain": {"dataset": "D"}, "own": {"dataset": "D", "training": {"seed": 9}},
                                    "flat": {"dataset": "D", "seed": 9, "lr": 1e-3}},  # seed 003's flat seed
                "searches": {"s": {"run": "plain", "trials": 2, "space": {"training.lr": [1e-3, 1e-2]}},
                             "t": {"run": "own", "trials": 1, "space": {"training.lr": [1e-3]}}}}
    seeds = {run: TrainingConfig.from_dict(workflow_config.run_config(workflow, run)).training.seed
             for run in workflow["runs"]}
    assert seeds == {"plain": 7, "own": 9, "flat": 9}
    assert TrainingConfig.from_dict(workflow_config.run_config(workflow, "plain")).name == "plain"
    trials = workflow_config.search_trials(workflow, "s")
    assert len(trials) == 2 and {TrainingConfig.from_dict(c).training.seed for c in trials.values()} == {7}
    assert {TrainingConfig.from_dict(c).training.seed for c in workflow_config.search_trials(workflow, "t").values()} \
        == {9}
    assert TrainingConfig.from_dict({"dataset": "D"}).training.seed == 42  # the CLI's default
    common = (Path(__file__).resolve().parents[2] / "workflow/rules/common.smk").read_text()
    assert "workflow_config.run_config(config, wildcards.run)" in common  # what the rules train
    assert "workflow_config.search_trials(config, search)" in common
