"""The two older run-config layouts, translated to today's before validation.

See :mod:`trainset.train.config` for what the seed-001 and seed-003 layouts hold. Translation
only moves and renames keys; it never guesses, and a key given both ways is an error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger("trainset.train.config")  # the messages belong to the config check

__all__ = ["FLAT_TRAINING", "LEGACY_TRAINING", "translate_legacy"]

FLAT_TRAINING = ("lr", "weight_decay", "batch_size", "epochs", "grad_clip", "warmup_epochs", "scheduler",
                 "patience", "min_delta", "save_every_n_epochs", "log_every_n_steps", "seed")
"""Seed-003 training keys that may sit at the top level."""
LEGACY_TRAINING = ("checkpoint_dir", "save_best", "use_wandb", "wandb_project", "loss_fn",
                   "horizon_weights", "lambda_smooth")
"""Seed-003 keys that are translated or ignored (never fields of today's sections)."""


def translate_legacy(top: dict[str, Any], sections: dict[str, dict[str, Any]], problems: list[str]) -> None:
    """Rewrite ``top`` and its ``sections`` (model, training, data) in place; problems are appended."""
    _move_flat_keys(top, sections["training"], problems)
    _translate_training(sections["training"], problems)
    _translate_data(top, sections["data"], problems)
    _translate_model(sections["model"], problems)


def _move_flat_keys(top: dict[str, Any], training: dict[str, Any], problems: list[str]) -> None:
    """Seed-003 flat keys at the top level -> the training section."""
    for key in FLAT_TRAINING + LEGACY_TRAINING:
        if key in top:
            if key in training:
                problems.append(f"{key}: given both at the top level and as training.{key}. Fix: keep one")
                top.pop(key)
                continue
            training[key] = top.pop(key)


def _translate_training(training: dict[str, Any], problems: list[str]) -> None:
    for key, why in (("checkpoint_dir", "the workflow decides where checkpoints go"),
                     ("wandb_project", "trainset does not log to Weights & Biases")):
        if key in training:
            logger.warning("training config: %s=%r ignored: %s", key, training.pop(key), why)
    if "save_best" in training:
        value = training.pop("save_best")
        if value is not True:
            logger.warning("training config: save_best=%r ignored: the best checkpoint is always kept", value)
    if "use_wandb" in training:
        value = training.pop("use_wandb")
        if value is not False:
            problems.append(f"training.use_wandb: must be false, got {value!r}; trainset logs to files only. "
                            "Fix: remove use_wandb")
    legacy = {k: training.pop(k) for k in ("loss_fn", "horizon_weights", "lambda_smooth") if k in training}
    if legacy:
        if "losses" in training:
            problems.append(f"training.losses: given together with seed-003 keys {sorted(legacy)}. "
                            "Fix: keep only training.losses")
            return
        loss_fn = legacy.get("loss_fn", "mse")
        if loss_fn not in ("mse", "mae"):
            problems.append(f"training.loss_fn: must be 'mse' or 'mae', got {loss_fn!r}")
            return
        training["losses"] = [{"name": f"horizon_{loss_fn}", "weight": 1.0, "params": {
            "weights": legacy.get("horizon_weights", "uniform"),
            "lambda_smooth": legacy.get("lambda_smooth", 0.01)}}]
        logger.info("training config: seed-003 loss keys %s mapped to %s", sorted(legacy), training["losses"])


def _translate_data(top: dict[str, Any], data: dict[str, Any], problems: list[str]) -> None:
    if "data_path" not in data:
        return
    path = data.pop("data_path")
    if top.get("dataset") not in (None, path):
        problems.append(f"data.data_path: {path!r} disagrees with dataset {top['dataset']!r}. Fix: keep dataset only")
    else:
        top["dataset"] = path


def _translate_model(model: dict[str, Any], problems: list[str]) -> None:
    if "time_pooling" not in model:
        return
    pooling = model.pop("time_pooling")
    if isinstance(pooling, str):
        pooling = {"name": pooling, "params": {}}
    if not isinstance(pooling, Mapping) or not isinstance(pooling.get("name"), str) \
            or set(pooling) - {"name", "params"} or not isinstance(pooling.get("params", {}) or {}, Mapping):
        problems.append(f"model.time_pooling: expected {{name, params}} such as "
                        f"{{name: max, params: {{scale: 1.0}}}}, got {pooling!r}")
        return
    params = model.get("params")
    if not isinstance(params, Mapping):
        if params is not None:
            return  # the section check reports the wrong type of model.params
        params = {}
    if "time_pooling" in params:
        problems.append("model.time_pooling: given both as model.time_pooling and model.params.time_pooling")
        return
    model["params"] = {**params, "time_pooling": {"name": pooling["name"],
                                                 "params": dict(pooling.get("params") or {})}}
