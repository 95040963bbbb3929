"""``auto`` settings of a run config: which keys may be ``auto``, their placeholder, their resolution.

A run may say ``lr: auto`` (the LR finder's suggestion) and ``batch_size: auto`` /
``num_workers: auto`` (the I/O tuner's fastest loader setting). Three places meet these values:

- the workflow at start-up (``workflow/rules/common.smk``), which validates every run before a
  tuner has run, and which decides which tuner outputs a run needs (:func:`tuners_needed`);
- the LR finder, which runs before its own result exists (its ``lr`` is unused);
- the train rule, which reads the tuners' JSON results (:func:`resolve_auto`).

The first two replace ``auto`` by :func:`placeholder`, the key's default in
:class:`~trainset.train.config.TrainingSection`, so a placeholder is always a valid value and
never reaches a trained model. This module is torch-free: the workflow imports it at DAG-build time.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import os
from collections.abc import Mapping
from typing import Any

from trainset.errors import TrainsetError
from trainset.versions import KEY, check_version

logger = logging.getLogger(__name__)

__all__ = ["AUTO", "AUTO_KEYS", "auto_keys", "is_auto", "placeholder", "resolve_auto", "tuners_needed",
           "with_placeholders"]

AUTO = "auto"
"""The config value that asks for a tuned setting."""

AUTO_KEYS: dict[str, tuple[str, str]] = {"lr": ("lr", "suggested_lr"), "batch_size": ("io", "batch_size"),
                                         "num_workers": ("io", "num_workers")}
"""``training.<key>`` that may be ``auto`` -> (tuner, field of its result): ``lr`` is the LR
finder's (``results/tuning/<run>/lr.json``), ``io`` the I/O tuner's ``best`` (``io.json``)."""

TUNER_RULES = {"lr": ("find_lr", "LR finder"), "io": ("tune_io", "I/O tuner")}
"""Tuner -> (the rule that runs it, its name in messages)."""
TUNER_ARTIFACTS = {"lr": "lr_finder", "io": "io_tuning"}
"""The :data:`trainset.versions.ARTIFACTS` kind of each tuner's JSON result."""

_FLAT_KEYS = ("lr", "batch_size")  # seed-003 layout: these may sit at the top level


def is_auto(value: Any) -> bool:
    """Whether a config value asks for a tuned setting (``auto``, any case and spacing)."""
    return isinstance(value, str) and value.strip().lower() == AUTO


def _places(cfg_dict: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(section, key) of every ``auto`` value: section ``training``, or ``""`` for a top-level key."""
    training = cfg_dict.get("training")
    places = []
    if isinstance(training, Mapping):
        places += [("training", key) for key in AUTO_KEYS if is_auto(training.get(key))]
    places += [("", key) for key in _FLAT_KEYS if is_auto(cfg_dict.get(key))]
    return places


def auto_keys(cfg_dict: Mapping[str, Any]) -> list[str]:
    """The dotted keys of a run config that are ``auto`` (``training.lr``, or ``lr`` at the top)."""
    return [f"{section}.{key}" if section else key for section, key in _places(cfg_dict)]


def tuners_needed(cfg_dict: Mapping[str, Any]) -> list[str]:
    """Which tuner results (``lr``, ``io``) a run config's ``auto`` values need, sorted."""
    return sorted({AUTO_KEYS[key][0] for _, key in _places(cfg_dict)})


def placeholder(key: str) -> Any:
    """The stand-in for ``training.<key>: auto`` before a tuner has run: the key's default."""
    from trainset.train.config import TrainingSection

    if key not in AUTO_KEYS:
        raise KeyError(f"training.{key} cannot be auto; auto keys: {sorted(AUTO_KEYS)}")
    return {f.name: f.default for f in dataclasses.fields(TrainingSection)}[key]


def with_placeholders(cfg_dict: Mapping[str, Any], keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A copy of a run config whose ``auto`` values (of ``keys``; default all) are :func:`placeholder`."""
    out = _copy(cfg_dict)
    for section, key in _places(cfg_dict):
        if keys is None or key in keys:
            (out[section] if section else out)[key] = placeholder(key)
    return out


def resolve_auto(cfg_dict: Mapping[str, Any], lr_json: str | os.PathLike | Mapping | None = None,
                 io_json: str | os.PathLike | Mapping | None = None) -> dict[str, Any]:
    """Replace ``"auto"`` values of a run config by tuned ones, before it is validated.

    Parameters
    ----------
    cfg_dict : dict
        A run config as written (``training.lr``, ``training.batch_size``,
        ``training.num_workers``; seed-003 files may hold ``lr`` and ``batch_size`` at the top).
    lr_json : path or dict, optional
        The LR finder's result: ``lr: auto`` becomes its ``suggested_lr``.
    io_json : path or dict, optional
        The I/O tuner's result: ``batch_size`` / ``num_workers: auto`` come from its ``best``.

    Returns
    -------
    dict
        A new dict; ``cfg_dict`` is not changed. Without ``auto`` values it is a plain copy.

    Raises
    ------
    TrainsetError
        ``auto`` without the JSON that resolves it, naming the key and the rule to run; an
        unreadable JSON or one lacking the value.
    """
    out = _copy(cfg_dict)
    loaded: dict[str, Any] = {}
    for section, key in _places(cfg_dict):
        dotted = f"{section}.{key}" if section else key
        source, field = AUTO_KEYS[key]
        given = lr_json if source == "lr" else io_json
        if given is None:
            rule, what = TUNER_RULES[source]
            raise TrainsetError(f"{dotted}: is 'auto' but no {what} result was given. Fix: run the {rule} rule "
                                f"first (pass its JSON as {source}_json), or set {dotted} to a value")
        if source not in loaded:
            loaded[source] = dict(given) if isinstance(given, Mapping) else \
                read_json(given, f"{source} result", TUNER_ARTIFACTS[source])
        result = loaded[source] if source == "lr" else loaded[source].get("best")
        if not isinstance(result, Mapping):
            raise TrainsetError(f"{dotted}: the I/O tuner result has no 'best' setting. Fix: rerun the tune_io rule")
        target = out[section] if section else out
        target[key] = tuned(result, field, given if not isinstance(given, Mapping) else "the result", dotted)
        logger.info("%s: auto -> %r", dotted, target[key])
    return out


def _copy(cfg_dict: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(cfg_dict))
    if isinstance(out.get("training"), Mapping):
        out["training"] = dict(out["training"])
    return out


def tuned(result: Mapping[str, Any], field: str, where: Any, dotted: str) -> Any:
    """The tuned value ``field`` of a tuner result, checked (a positive LR, a whole count)."""
    value = result.get(field)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value < 0 or (field == "suggested_lr" and value <= 0) \
            or (field != "suggested_lr" and int(value) != value):
        raise TrainsetError(f"{dotted}: {where} holds no usable {field!r} (got {value!r}). "
                            "Fix: rerun the tuning rule")
    return float(value) if field == "suggested_lr" else int(value)


def read_json(path: str | os.PathLike, what: str, artifact: str | None = None) -> dict[str, Any]:
    """A tuner's JSON result; errors name the file and the fix.

    ``artifact`` (a :data:`trainset.versions.ARTIFACTS` kind) checks the recorded format version.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise TrainsetError(f"{path}: {what} not found. Fix: run its rule first") from None
    except (OSError, ValueError) as error:
        raise TrainsetError(f"{path}: {what} is not readable JSON ({error}). Fix: rerun its rule") from None
    if not isinstance(data, dict):
        raise TrainsetError(f"{path}: {what} must be a JSON object. Fix: rerun its rule")
    if artifact is not None:
        check_version(artifact, data.get(KEY), path)
    return data
