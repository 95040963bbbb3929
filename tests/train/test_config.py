"""TrainingConfig: defaults, exact round trips, seed-001/003 layouts, every error names its key."""

import dataclasses
import json
import logging

import pytest

from trainset.errors import TrainsetError
from trainset.train.config import (DataSection, LossSpec, ModelSection, TrainingConfig, TrainingSection,
                                   config_hash)

SEED_001 = """
training:
  paradigm: supervised
  mapping: seq2static
  losses:
    - {name: cross_entropy, weight: 1.0, params: {}}
    - {name: gap_loss, weight: 0.3, params: {margin: 0.2}}
data:
  data_path: pulse_classification.h5
  num_classes: 3
  target_seq_len: 64
model:
  time_pooling: {name: max, params: {scale: 1.0}}
"""

SEED_003 = """
lr: 1e-4
weight_decay: 0.01
batch_size: 64
epochs: 100
grad_clip: 1.0
warmup_epochs: 5
scheduler: cosine
patience: 10
min_delta: 1e-4
checkpoint_dir: runs/baseline_mlp
save_every_n_epochs: 10
save_best: true
log_every_n_steps: 50
use_wandb: false
seed: 42
loss_fn: mse
horizon_weights: exponential
"""


def _errors(d):
    with pytest.raises(TrainsetError) as info:
        TrainingConfig.from_dict(d)
    return str(info.value)


def test_defaults():
    cfg = TrainingConfig()
    t = cfg.training
    assert (t.optimizer, t.lr, t.weight_decay, t.batch_size, t.epochs, t.warmup_epochs) == ("adamw", 1e-3, 0.01, 64, 20, 1)
    assert (t.scheduler, t.gamma, t.final_lr_fraction, t.grad_clip, t.patience, t.min_delta) == \
        ("cosine", 0.95, 0.01, 1.0, 5, 1e-3)
    assert t.losses == (LossSpec("mse"),) and (t.train_split, t.val_split) == ("train", "val")
    assert cfg.format == "netcdf" and cfg.data.target_seq_policy is None and t.min_delta_mode == "relative"
    assert TrainingConfig.from_dict({}) == cfg == TrainingConfig.from_dict(None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.training.lr = 1.0


def test_round_trip_exact_and_hash():
    cfg = TrainingConfig.from_dict({
        "name": "flights_bce", "dataset": "FLIGHTS", "format": "webdataset",
        "model": {"name": "flight", "params": {"hidden": [128, 64], "dropout": 0.1}},
        "training": {"losses": [{"name": "bce", "params": {"pos_weight": [1.0, 2.0]}},
                                {"name": "l1", "weight": 1e-9}, {"name": "monotonicity", "weight": 1e-3}],
                     "optimizer": "adam", "lr": 3e-4, "scheduler": "exponential", "gamma": 0.9,
                     "grad_clip": None, "patience": None, "amp": True},
        "data": {"scaler": "standard", "variables": ["features", "site", "targets"]},
    })
    d = cfg.to_dict()
    text = json.dumps(d)  # JSON-able
    again = TrainingConfig.from_dict(json.loads(text))
    assert again == cfg and again.to_dict() == d
    assert config_hash(again) == config_hash(cfg) and len(config_hash(cfg)) == 64
    assert config_hash(TrainingConfig.from_dict({**d, "training": {**d["training"], "lr": 3.1e-4}})) != config_hash(cfg)
    assert TrainingConfig.from_dict(TrainingConfig().to_dict()) == TrainingConfig()


def test_seed_001_yaml(tmp_path):
    path = tmp_path / "seq.yaml"
    path.write_text(SEED_001)
    cfg = TrainingConfig.from_yaml(path)
    assert cfg.dataset == "pulse_classification.h5"
    assert (cfg.training.paradigm, cfg.training.mapping) == ("supervised", "seq2static")
    assert cfg.training.losses == (LossSpec("cross_entropy"), LossSpec("gap_loss", 0.3, {"margin": 0.2}))
    assert cfg.model.params == {"time_pooling": {"name": "max", "params": {"scale": 1.0}}}
    assert (cfg.data.num_classes, cfg.data.target_seq_len, cfg.data.target_seq_policy) == (3, 64, None)
    assert TrainingConfig.from_dict(cfg.to_dict()) == cfg


def test_seed_003_flat_yaml(tmp_path, caplog):
    path = tmp_path / "macro.yaml"
    path.write_text(SEED_003)
    with caplog.at_level(logging.WARNING, logger="trainset.train.config"):
        cfg = TrainingConfig.from_yaml(path)
    assert "checkpoint_dir" in caplog.text
    t = cfg.training
    assert (t.lr, t.epochs, t.warmup_epochs, t.patience, t.min_delta, t.save_every_n_epochs) == (1e-4, 100, 5, 10, 1e-4, 10)
    assert t.losses == (LossSpec("horizon_mse", 1.0, {"weights": "exponential", "lambda_smooth": 0.01}),)
    mae = TrainingConfig.from_dict({"training": {"loss_fn": "mae", "lambda_smooth": 0.0}})
    assert mae.training.losses == (LossSpec("horizon_mae", 1.0, {"weights": "uniform", "lambda_smooth": 0.0}),)


def test_seed_003_refusals():
    assert "use_wandb" in _errors({"use_wandb": True})
    assert "training.losses" in _errors({"loss_fn": "mse", "training": {"losses": ["mse"]}})
    assert "training.loss_fn" in _errors({"loss_fn": "huber"})
    assert "both" in _errors({"lr": 0.1, "training": {"lr": 0.2}})


def test_unknown_keys_name_the_dotted_key_and_valid_keys():
    msg = _errors({"training": {"lr_max": 0.1}})
    assert "'training.lr_max'" in msg and "lr, weight_decay" in msg
    assert "'data.scalr'" in _errors({"data": {"scalr": "standard"}}) and "did you mean 'scaler'" in \
        _errors({"data": {"scalr": "standard"}})
    assert "'model.layers'" in _errors({"model": {"layers": 3}})
    assert "'foo'" in _errors({"foo": 1})
    assert "unknown keys" in _errors({"training": {"losses": [{"name": "mse", "scale": 2}]}})


def test_wrong_types_name_key_and_expected_type():
    assert "training.epochs: expected an integer, got '20'" in _errors({"training": {"epochs": "20"}})
    assert "training.amp: expected true or false" in _errors({"training": {"amp": "yes"}})
    assert "training.scheduler: expected one of ['cosine', 'exponential', 'none']" in \
        _errors({"training": {"scheduler": "step"}})
    assert "training.grad_clip: expected null or a number" in _errors({"training": {"grad_clip": "off"}})
    assert "data.variables[1]: expected a string" in _errors({"data": {"variables": ["a", 2]}})
    assert "training: expected a mapping" in _errors({"training": [1, 2]})
    # PyYAML reads 1e-3 as a string; float fields accept it
    assert TrainingConfig.from_dict({"training": {"lr": "1e-3"}}).training.lr == 1e-3


def test_values_unknown_losses_and_one_hot():
    msg = _errors({"training": {"losses": [{"name": "no_such_loss"}]}})
    assert "training.losses[0]" in msg and "cross_entropy" in msg and "gap_loss" in msg
    assert "one_hot" in _errors({"data": {"input_encoding": "one_hot"}})
    ok = TrainingConfig.from_dict({"data": {"input_encoding": "one_hot", "vocab_size": 100}})
    assert ok.data.vocab_size == 100
    assert "training.warmup_epochs" in _errors({"training": {"epochs": 2, "warmup_epochs": 3}})
    assert "training.lr: must be > 0" in _errors({"training": {"lr": 0}})
    assert "format" in _errors({"format": "parquet"})
    assert "training.val_split" in _errors({"training": {"val_split": "train"}})
    assert "model.time_pooling" in _errors({"model": {"time_pooling": {"kind": "max"}}})
    assert "model.name: unknown model 'gru'" in _errors({"model": {"name": "gru"}})
    assert "data.scaler: unknown scaler 'stanard'" in _errors({"data": {"scaler": "stanard"}})


def test_every_problem_reported_at_once():
    msg = _errors({"training": {"lr_max": 1, "epochs": "x", "grad_clip": 0, "losses": ["nope"]},
                   "data": {"input_encoding": "one_hot"}, "format": "parquet"})
    for key in ("training.lr_max", "training.epochs", "training.grad_clip", "training.losses[0]",
                "data.vocab_size", "format"):
        assert key in msg


def test_direct_construction_is_validated_too():
    with pytest.raises(TrainsetError, match="training.lr"):
        TrainingSection(lr=-1.0)
    with pytest.raises(TrainsetError, match="data.vocab_size"):
        DataSection(input_encoding="one_hot")
    cfg = TrainingConfig(model={"name": "sequence"}, training=TrainingSection(losses=[{"name": "mae"}]))
    assert cfg.model == ModelSection("sequence") and cfg.training.losses == (LossSpec("mae"),)


def test_from_yaml_errors_name_the_file(tmp_path):
    with pytest.raises(TrainsetError, match="not found"):
        TrainingConfig.from_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("training:\n  lr_max: 1\n")
    with pytest.raises(TrainsetError, match=r"(?s)bad\.yaml.*training\.lr_max"):
        TrainingConfig.from_yaml(bad)


def test_seed_002_keys_are_translated():
    # the guide's config dict and model params, as written there
    cfg = TrainingConfig.from_dict({
        "dataset": "flights", "batch_size": 2048, "num_workers": 8, "learning_rate": 0.001, "num_epochs": 100,
        "patience": 10, "l1_lambda": 1e-9, "l2_lambda": "1e-9", "monotonicity_lambda": 1e-9,
        "deep_hidden_units": [128, 64], "cross_layers": 2, "site_embedding_dim": 16,
        "prediction_head_type": "multilabel"})
    t = cfg.training
    assert (t.lr, t.epochs, t.num_workers, t.batch_size, t.patience) == (1e-3, 100, 8, 2048, 10)
    assert t.losses == (LossSpec("bce"), LossSpec("l1", 1e-9), LossSpec("l2", 1e-9), LossSpec("monotonicity", 1e-9))
    assert t.min_delta_mode == "relative" and t.warmup_epochs == 1  # not a seed-003 config
    assert cfg.model.name == "flight"
    assert cfg.model.params == {"hidden": [128, 64], "cross_layers": 2, "embedding_dim": 16, "head": "independent"}
    ordinal = TrainingConfig.from_dict({"model": {"prediction_head_type": "ordinal"},
                                        "training": {"learning_rate": 0.01, "losses": [{"name": "bce"}]}})
    assert ordinal.model.params == {"head": "ordinal"} and ordinal.training.lr == 0.01


def test_seed_002_key_given_both_ways_is_an_error():
    assert "learning_rate" in _errors({"learning_rate": 1e-3, "training": {"lr": 1e-2}})
    assert "num_epochs" in _errors({"num_epochs": 3, "epochs": 4})
    assert "l1_lambda" in _errors({"l1_lambda": 1e-9, "training": {"losses": [{"name": "bce"}, {"name": "l1"}]}})
    assert "site_embedding_dim" in _errors({"site_embedding_dim": 8, "model": {"params": {"embedding_dim": 4}}})
    assert "prediction_head_type" in _errors({"prediction_head_type": "softmax"})
    assert "model.name" in _errors({"cross_layers": 2, "model": {"name": "mlp"}})


def test_seed_003_omitted_keys_take_upstreams_defaults():
    cfg = TrainingConfig.from_dict({"dataset": "macro", "lr": 3e-4})  # a flat key: seed-003 layout
    t = cfg.training
    assert (t.lr, t.weight_decay, t.batch_size, t.epochs, t.grad_clip, t.scheduler) == (3e-4, 0.01, 64, 100, 1.0, "cosine")
    assert (t.warmup_epochs, t.patience, t.save_every_n_epochs, t.min_delta, t.min_delta_mode) == \
        (5, 10, 10, 1e-4, "absolute")
    assert t.losses == (LossSpec("horizon_mse", 1.0, {"weights": "uniform", "lambda_smooth": 0.01}),)
    today = TrainingConfig.from_dict({"dataset": "macro", "training": {"lr": 3e-4}})  # nested: today's defaults
    assert (today.training.epochs, today.training.min_delta_mode) == (20, "relative")


def test_seed_003_layout_is_chosen_by_its_own_keys_and_warned(caplog):
    with caplog.at_level(logging.INFO, logger="trainset.train.config"):
        seeded = TrainingConfig.from_dict({"dataset": "macro", "seed": 7})  # a top-level seed alone
    t = seeded.training
    assert t.seed == 7 and (t.lr, t.epochs, t.min_delta_mode) == (TrainingSection.lr, 20, "relative")
    assert not [r for r in caplog.records if "seed-003" in r.getMessage()]
    for config, trigger in (({"dataset": "macro", "lr": 3e-4}, "lr"),
                            ({"dataset": "macro", "seed": 7, "patience": 3}, "patience"),
                            ({"dataset": "macro", "training": {"loss_fn": "mae"}}, "training.loss_fn"),
                            ({"dataset": "macro", "save_best": True}, "save_best")):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="trainset.train.config"):
            t = TrainingConfig.from_dict(config).training
        assert (t.epochs, t.min_delta_mode) == (100, "absolute")
        warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "seed-003" in r.getMessage()]
        assert len(warned) == 1 and warned[0].startswith(f"training config: {trigger} chose the seed-003 layout")
        assert "'epochs': 100" in warned[0] and "'min_delta_mode': 'absolute'" in warned[0]


def test_from_flat_takes_exactly_seed_003_fields():
    cfg = TrainingConfig.from_flat({"lr": 1e-4, "batch_size": 64, "epochs": 100, "warmup_epochs": 5,
                                    "patience": 10, "checkpoint_dir": "runs/baseline_mlp", "log_every_n_steps": 50,
                                    "use_wandb": False, "seed": 42}, dataset="macro")
    assert cfg.dataset == "macro" and cfg.training.min_delta == 1e-4 and cfg.training.min_delta_mode == "absolute"
    assert TrainingConfig.from_flat({}) == TrainingConfig.from_flat({"lr": 1e-4, "min_delta": 1e-4})
    with pytest.raises(TrainsetError, match="not fields of seed 003"):
        TrainingConfig.from_flat({"learning_rate": 1e-3})
    with pytest.raises(TrainsetError, match="min_delta"):
        TrainingConfig.from_dict({"training": {"min_delta": 2.0}})  # relative: < 1
    assert TrainingConfig.from_dict({"training": {"min_delta": 2.0, "min_delta_mode": "absolute"}})


def test_absolute_min_delta_in_early_stopping():
    from trainset.train.schedule import EarlyStopping

    absolute, relative = EarlyStopping(2, 0.1, delta_mode="absolute"), EarlyStopping(2, 0.1)
    for stop in (absolute, relative):
        stop.step(10.0)
    assert absolute.step(9.5) is True and relative.step(9.5) is False  # 0.5 > 0.1 but < 10%
    restored = EarlyStopping()
    restored.load_state_dict(absolute.state_dict())
    assert restored.delta_mode == "absolute"
