"""The older run-config layouts (seeds 001, 002, 003), translated to today's before validation.

See :mod:`trainset.train.config` for what each layout holds. Translation moves and renames keys
and, for a recognised seed-003 layout, fills omitted keys with seed 003's own defaults; it never
guesses otherwise, and a key given both ways is an error.

How a layout is recognised (:func:`detect_layout`):

- **seed 002**: any of its keys (``learning_rate``, ``num_epochs``, ``num_workers`` at the top
  level, ``l1_lambda``, ``l2_lambda``, ``monotonicity_lambda``, ``deep_hidden_units``,
  ``cross_layers``, ``site_embedding_dim``, ``prediction_head_type``) at the top level, or the
  training keys in ``training:`` and the model keys in ``model:``.
- **seed 003**: otherwise, one of its own keys (``loss_fn``, ``horizon_weights``,
  ``lambda_smooth``, ``checkpoint_dir``, ``save_best``, ``use_wandb``, ``wandb_project``) at the
  top level or in ``training:``, or a flat training key other than ``seed``
  (:data:`FLAT_TRAINING`) at the top level. Omitted keys then take upstream's defaults
  (:data:`SEED003_DEFAULTS`: lr 1e-4, 100 epochs, ``min_delta`` absolute, ``horizon_mse``
  loss...), and a WARNING names the key that chose the layout and the defaults applied. A
  top-level ``seed`` alone chooses nothing: it is ``training.seed`` (a workflow-style key).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger("trainset.train.config")  # the messages belong to the config check

__all__ = ["FLAT_TRAINING", "LEGACY_TRAINING", "RENAMED_TRAINING", "SEED002_KEYS", "SEED003_DEFAULTS", "SEED003_FIELDS",
           "detect_layout", "seed003_trigger", "translate_legacy"]

FLAT_TRAINING = ("lr", "weight_decay", "batch_size", "epochs", "grad_clip", "warmup_epochs", "scheduler",
                 "patience", "min_delta", "save_every_n_epochs", "log_every_n_steps", "seed")
"""Seed-003 training keys that may sit at the top level."""
RENAMED_TRAINING = {"amp": "precision"}
"""trainset's own renamed ``training`` keys -> today's (``amp: true`` is ``precision: bf16``)."""
LEGACY_TRAINING = ("checkpoint_dir", "save_best", "use_wandb", "wandb_project", "loss_fn",
                   "horizon_weights", "lambda_smooth")
"""Seed-003 keys that are translated or ignored (never fields of today's sections)."""
SEED003_FIELDS = FLAT_TRAINING + LEGACY_TRAINING
"""Exactly the fields of seed 003's ``TrainingConfig`` dataclass (what ``from_flat`` accepts)."""
SEED003_DEFAULTS: dict[str, Any] = {
    "lr": 1e-4, "weight_decay": 0.01, "batch_size": 64, "epochs": 100, "grad_clip": 1.0, "warmup_epochs": 5,
    "scheduler": "cosine", "patience": 10, "min_delta": 1e-4, "min_delta_mode": "absolute",
    "save_every_n_epochs": 10, "log_every_n_steps": 50, "seed": 42}
"""Seed 003's ``TrainingConfig`` defaults, in today's training keys (its loss default, ``mse``
over uniform horizons with ``lambda_smooth`` 0.01, becomes one ``horizon_mse`` term)."""

SEED002_TRAINING = {"learning_rate": "lr", "num_epochs": "epochs", "num_workers": "num_workers"}
"""Seed-002 training keys -> today's ``training`` keys."""
SEED002_PENALTIES = {"l1_lambda": "l1", "l2_lambda": "l2", "monotonicity_lambda": "monotonicity"}
"""Seed-002 regularisation weights -> penalty terms of ``training.losses`` (the weight is the lambda)."""
SEED002_MODEL = {"deep_hidden_units": "hidden", "cross_layers": "cross_layers", "site_embedding_dim": "embedding_dim",
                 "prediction_head_type": "head"}
"""Seed-002 model keys -> params of the ``flight`` model."""
SEED002_HEADS = {"multilabel": "independent", "ordinal": "ordinal"}
"""Seed-002 ``prediction_head_type`` -> the flight model's ``head``."""
SEED002_KEYS = (*SEED002_TRAINING, *SEED002_PENALTIES, *SEED002_MODEL)
"""Every seed-002 key that may sit at the top level."""
_SEED003_ONLY = LEGACY_TRAINING


def detect_layout(top: Mapping[str, Any], sections: Mapping[str, Mapping[str, Any]]) -> str | None:
    """``"seed002"``, ``"seed003"`` or None (today's layout or seed 001's); see the module docstring."""
    training, model = sections.get("training", {}), sections.get("model", {})
    in_training = ("learning_rate", "num_epochs", *SEED002_PENALTIES)  # num_workers is today's key too
    if any(k in top for k in SEED002_KEYS) or any(k in training for k in in_training) \
            or any(k in model for k in SEED002_MODEL):
        return "seed002"
    if seed003_trigger(top, sections) is not None:
        return "seed003"
    return None


def seed003_trigger(top: Mapping[str, Any], sections: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The dotted key that makes a config seed-003 layout (see the module docstring), or None."""
    training = sections.get("training", {})
    for key in _SEED003_ONLY:
        if key in top:
            return key
        if key in training:
            return f"training.{key}"
    return next((k for k in FLAT_TRAINING if k != "seed" and k in top), None)


def translate_legacy(top: dict[str, Any], sections: dict[str, dict[str, Any]], problems: list[str],
                     layout: str | None = None) -> str | None:
    """Rewrite ``top`` and its ``sections`` (model, training, data) in place; problems are appended.

    ``layout`` forces a layout (``from_flat``); default: :func:`detect_layout`. Returns the layout.
    """
    trigger = seed003_trigger(top, sections) if layout is None else None  # None: forced (from_flat)
    layout = layout or detect_layout(top, sections)
    if layout == "seed002":
        _translate_seed002(top, sections, problems)
    _move_flat_keys(top, sections["training"], problems)
    if layout == "seed003":
        _seed003_defaults(sections["training"], trigger)
    _translate_training(sections["training"], problems)
    _translate_data(top, sections["data"], problems)
    _translate_model(sections["model"], problems)
    return layout


def _seed003_defaults(training: dict[str, Any], trigger: str | None) -> None:
    """Omitted keys of a seed-003 config behave as upstream's defaults (``min_delta`` absolute).

    A WARNING, not INFO: these defaults differ from today's (lr, epochs, early stopping, loss),
    so whoever wrote the key that chose the layout must be able to see that it did.
    """
    omitted = {k: v for k, v in SEED003_DEFAULTS.items() if k not in training}
    training.update(omitted)
    if "losses" not in training and "loss_fn" not in training:
        training["loss_fn"] = "mse"
        omitted["losses"] = "horizon_mse (loss_fn mse, uniform horizon_weights, lambda_smooth 0.01)"
    if omitted and trigger is None:  # from_flat: the caller asked for seed 003's dataclass
        logger.info("training config: seed-003 layout; omitted keys take seed 003's defaults: %s", omitted)
    elif omitted:
        logger.warning("training config: %s chose the seed-003 layout (README: Coming from the macro emulator); "
                       "omitted keys take seed 003's defaults, not today's: %s. Fix: state those keys, or "
                       "nest the training keys under training: for today's defaults", trigger, omitted)


def _number(value: Any) -> Any:
    """A lambda as YAML may give it (``1e-9`` without a dot is a string)."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _take(key: str, top: dict[str, Any], section: dict[str, Any], problems: list[str], where: str) -> Any:
    """The value of a seed-002 ``key`` from the top level or its section (both is an error)."""
    if key in top and key in section:
        problems.append(f"{key}: given both at the top level and as {where}.{key}. Fix: keep one")
        section.pop(key)
    return top.pop(key) if key in top else section.pop(key)


def _translate_seed002(top: dict[str, Any], sections: dict[str, dict[str, Any]], problems: list[str]) -> None:
    """Seed 002's training keys, regularisation lambdas and flight-model keys -> today's keys."""
    training, model = sections["training"], sections["model"]
    for old, new in SEED002_TRAINING.items():
        if old in top or old in training:
            value = _take(old, top, training, problems, "training")
            if new in training or (new != old and new in top):
                problems.append(f"{old}: seed 002's name for training.{new}, which is given too. Fix: keep one")
            else:
                training[new] = value
    terms = {new: _number(_take(old, top, training, problems, "training"))
             for old, new in SEED002_PENALTIES.items() if old in top or old in training}
    if terms:
        losses = training.get("losses")
        if losses is None:
            losses = [{"name": "bce"}]  # seed 002 trained its threshold heads with BCE
            logger.info("training config: seed-002 layout without training.losses: bce")
        if not isinstance(losses, list):
            return  # the section check reports the wrong type
        named = {t.get("name") if isinstance(t, Mapping) else t for t in losses}
        for name, weight in terms.items():
            if name in named:
                problems.append(f"{[k for k, v in SEED002_PENALTIES.items() if v == name][0]}: given both as a "
                                f"seed-002 lambda and as the {name!r} term of training.losses. Fix: keep one")
            else:
                losses = [*losses, {"name": name, "weight": weight}]
        training["losses"] = losses
    _translate_seed002_model(top, model, problems)


def _translate_seed002_model(top: dict[str, Any], model: dict[str, Any], problems: list[str]) -> None:
    found = {old: _take(old, top, model, problems, "model") for old in SEED002_MODEL if old in top or old in model}
    if not found:
        return
    name = model.setdefault("name", "flight")
    if name not in ("flight", "auto"):
        problems.append(f"model.name: {name!r}, but seed-002 keys {sorted(found)} are params of the flight model. "
                        "Fix: use model.name: flight, or remove those keys")
        return
    model["name"] = "flight"
    params = model.get("params")
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        return  # the section check reports the wrong type
    params = dict(params)
    for old, value in found.items():
        new = SEED002_MODEL[old]
        if old == "prediction_head_type":
            if value not in SEED002_HEADS:
                problems.append(f"prediction_head_type: {value!r} unknown. Fix: use one of {sorted(SEED002_HEADS)}")
                continue
            value = SEED002_HEADS[value]
        if new in params:
            problems.append(f"{old}: seed 002's name for model.params.{new}, which is given too. Fix: keep one")
            continue
        params[new] = value
    model["params"] = params


def _move_flat_keys(top: dict[str, Any], training: dict[str, Any], problems: list[str]) -> None:
    """Seed-003 flat keys at the top level -> the training section."""
    for key in FLAT_TRAINING + LEGACY_TRAINING:
        if key in top:
            if key in training:
                problems.append(f"{key}: given both at the top level and as training.{key}. Fix: keep one")
                top.pop(key)
                continue
            training[key] = top.pop(key)


def _translate_amp(training: dict[str, Any], problems: list[str]) -> None:
    """trainset's own older key ``training.amp`` (bf16 autocast on CPU) -> ``training.precision``."""
    if "amp" not in training:
        return
    amp = training.pop("amp")
    if not isinstance(amp, bool):
        problems.append(f"training.amp: expected true or false, got {amp!r} ({type(amp).__name__}); amp is the "
                        "old name of training.precision. Fix: use training.precision: bf16, fp16 or fp32")
    elif "precision" in training:
        problems.append(f"training.amp: given together with training.precision ({training['precision']!r}). "
                        "Fix: keep only training.precision (amp: true is bf16, amp: false is fp32)")
    else:
        training["precision"] = "bf16" if amp else "fp32"
        logger.info("training config: training.amp: %s translated to training.precision: %s", amp,
                    training["precision"])


def _translate_training(training: dict[str, Any], problems: list[str]) -> None:
    _translate_amp(training, problems)
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
