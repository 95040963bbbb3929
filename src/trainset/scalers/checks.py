"""Checks of fitted scalers read back: usable values on load, and fitted on this dataset at training start.

A scaler file is JSON anyone can edit, and its ``scaler_hash`` only proves the statistics were
not changed *after* the hash was computed (a forged file can carry a matching hash). So on load
(:meth:`ScalerSet.from_json`) every statistic must be finite numbers of the right count for its
variable's feature axis, with divisors > 0 (``scale`` and ``data_range``; the flu transforms
floor their ``max``/``std`` at ``eps``, so 0 there means a constant feature and only a negative
one is refused): a scale of 0 or inf would otherwise give inf or all-zero inputs without a word.
At training start (:func:`check_scalers_match`), the scalers must have been fitted on the dataset
being trained: the identity they record (:func:`trainset.open.dataset_identity` of the dataset
they were fitted on) must be the dataset's, and each variable's per-sample shape the stored one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from trainset.errors import TrainsetError
from trainset.scalers.spec import SKLEARN_PARAMS, ScalerSpec, batched_axis
from trainset.transforms import make_transform

REFIT = "Fix: rerun fit_scalers for this dataset (snakemake --forcerun fit_scalers)"
SKLEARN_STATS = {"standard": ("mean", "scale"), "minmax": ("data_min", "data_range"), "robust": ("center", "scale")}
"""The per-feature statistics each scikit-learn kind stores."""
POSITIVE = {"scale", "data_range"}
"""Statistics that divide: they must be > 0 (the fit floors them at ``eps``)."""
NON_NEGATIVE = {"max", "std"}
"""Transform statistics that divide after a floor at ``eps``: 0 is a constant feature, < 0 is forged."""


def check_statistics(specs: dict[str, ScalerSpec], statistics: Any, where: str) -> None:
    """Refuse statistics a fit cannot have written, naming ``where`` (the file), the variable,
    the part and the key.

    Raises
    ------
    TrainsetError
        For a variable with a scaler but no statistics (or the reverse), a missing or non-list
        statistic, a value that is not a finite number (strings, booleans, NaN, inf), a count
        that does not match the variable's feature axis, or a divisor <= 0.
    """
    if not isinstance(statistics, dict):
        raise TrainsetError(f"{where}: 'statistics' is {type(statistics).__name__}, not a mapping. {REFIT}")
    if set(statistics) != set(specs):
        raise TrainsetError(f"{where}: statistics for {sorted(statistics)} but scalers for {sorted(specs)}. {REFIT}")
    for name, spec in specs.items():
        parts = statistics[name]
        if not isinstance(parts, dict):
            raise TrainsetError(f"{where}: statistics.{name} is {type(parts).__name__}, not a mapping of parts. "
                                f"{REFIT}")
        for part, stats in parts.items():
            _check_part(spec, stats, f"{where}: statistics.{name}.{part}", name)


def _check_part(spec: ScalerSpec, stats: Any, key: str, name: str) -> None:
    if not isinstance(stats, dict):
        raise TrainsetError(f"{key} is {type(stats).__name__}, not a mapping. {REFIT}")
    shape = stats.get("shape")
    if not isinstance(shape, list) or not shape or not all(_is_int(n) and n >= 1 for n in shape):
        raise TrainsetError(f"{key}.shape is {shape!r}, not a per-sample shape (a list of counts >= 1). {REFIT}")
    try:
        axis = batched_axis(spec, 1 + len(shape), name)
    except TrainsetError as error:
        raise TrainsetError(f"{key}: {error}. {REFIT}") from error
    n_feat = shape[axis - 1]
    if spec.kind in SKLEARN_PARAMS:
        for stat in SKLEARN_STATS[spec.kind]:
            _check_vector(stats.get(stat), n_feat, f"{key}.{stat}", positive=stat in POSITIVE)
        return
    _check_transform(spec, stats, key, n_feat, len(shape) - 1)


def _check_transform(spec: ScalerSpec, stats: dict[str, Any], key: str, n_feat: int, trailing: int) -> None:
    """A flu transform's ``{"name", "params", "state"}``: the spec's kind and params, its
    statistics' keys, counts and signs."""
    expected = make_transform(spec.kind, **spec.params)
    if stats.get("name") != spec.kind or stats.get("params") != expected.params():
        raise TrainsetError(f"{key}: transform {stats.get('name')!r} with params {stats.get('params')!r}, but the "
                            f"scaler is {spec.kind!r} with {expected.params()}. {REFIT}")
    state = stats.get("state")
    if spec.kind == "identity" and not state:
        return
    keys = set(expected.fit(np.zeros((1, 1))).state)  # the statistics this kind fits
    if not isinstance(state, dict) or set(state) != keys:
        raise TrainsetError(f"{key}.state is {state!r}; a fitted {spec.kind!r} holds {sorted(keys)}. {REFIT}")
    if not _is_int(state["n_trailing"]) or state["n_trailing"] != trailing:
        raise TrainsetError(f"{key}.state.n_trailing is {state['n_trailing']!r}; the shape gives {trailing}. {REFIT}")
    for stat in sorted(keys - {"n_trailing"}):
        _check_vector(state[stat], n_feat, f"{key}.state.{stat}", non_negative=stat in NON_NEGATIVE)


def _check_vector(values: Any, n_feat: int, key: str, positive: bool = False, non_negative: bool = False) -> None:
    """``values``: a list of ``n_feat`` finite numbers (> 0 or >= 0 when asked)."""
    if not isinstance(values, list):
        raise TrainsetError(f"{key} is {_short(values)}, not a list of {n_feat} numbers. {REFIT}")
    wrong = [v for v in values if isinstance(v, bool) or not isinstance(v, (int, float))]
    if wrong:
        raise TrainsetError(f"{key} holds {len(wrong)} value(s) that are not numbers (e.g. {_short(wrong[0])}). "
                            f"{REFIT}")
    if len(values) != n_feat:
        raise TrainsetError(f"{key} has {len(values)} values, but the variable has {n_feat} features on its "
                            f"feature axis. {REFIT}")
    bad = [v for v in values if not math.isfinite(v)]
    if bad:
        raise TrainsetError(f"{key} holds {len(bad)} NaN/inf value(s) (e.g. {bad[0]}). {REFIT}")
    low = [v for v in values if (positive and v <= 0) or (non_negative and v < 0)]
    if low:
        bound = "> 0" if positive else ">= 0"
        raise TrainsetError(f"{key} must be {bound} (it divides the data); found {low[0]!r}. {REFIT}")


def check_scalers_match(scalers: Any, identity: str, parts: list[Any], dataset: Any, where: Any) -> None:
    """Refuse scalers fitted on another dataset than ``dataset`` (identity ``identity``), or
    whose variables or per-sample shapes are not the ones it stores (``parts``: its readers'
    :class:`~trainset.io.base.PartInfo`). ``where`` names the scaler file."""
    recorded = (scalers.dataset or {}).get("identity") or (scalers.dataset or {}).get("sha256")
    if recorded != identity:
        fitted_on = (scalers.dataset or {}).get("path", "an unknown dataset")
        raise TrainsetError(f"{where}: scalers fitted on dataset {recorded or 'of unknown identity'} ({fitted_on}), "
                            f"but {dataset} is dataset {identity}: statistics of another dataset would scale it. "
                            f"{REFIT}")
    stored = {p.name: p.variables for p in parts}
    for name, per_part in scalers.statistics.items():
        if not any(name in variables for variables in stored.values()):
            raise TrainsetError(f"{where}: a scaler for {name!r}, which {dataset} does not store. {REFIT}")
        for part, stats in per_part.items():
            info = stored.get(part, {}).get(name)
            if info is None:
                raise TrainsetError(f"{where}: statistics of {name!r} for part {part!r}, which {dataset} does not "
                                    f"hold (parts {sorted(stored)}). {REFIT}")
            if list(stats["shape"]) != list(info.shape):
                raise TrainsetError(f"{where}: {name!r} of part {part!r} was fitted on per-sample shape "
                                    f"{stats['shape']}, but {dataset} stores {list(info.shape)}. {REFIT}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
