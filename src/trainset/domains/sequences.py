"""Sequence tasks (seed 001): long tables -> ``data`` [N, T, D] and ``labels`` by task type.

Users bring sequences as *long* tables, one value a row, because that is what a database export
or a logger writes; a model wants dense arrays. This module generates realistic long tables for
the six task types (so the workflow runs without data) and frames any such table into a
:class:`~trainset.collection.Collection`. Regression labels stay float32 throughout: the old
single-file path cast every label to integer and truncated regression targets.

Inputs table (required for every task)

=========  ==============  ===========================================================
column     dtype           meaning
=========  ==============  ===========================================================
sample     int or str      sequence id
t          integer         time step; one regular grid 0..T-1 (any start, no gaps)
feature    int or str      channel id
value      float           the observation
=========  ==============  ===========================================================

Labels table, by task (value: integer class >= 0 for classification, float for regression)

=========================  ====================  =================================
task                       key columns           ``labels`` variable
=========================  ====================  =================================
seq2static_classification  sample                (sample,) int64
seq2static_regression      sample, k             (sample, target) float32
seq2seq_classification     sample, t             (sample, time) int64
seq2seq_regression         sample, t, k          (sample, step, target) float32
reconstruction             none (labels=None)    absent: the targets are ``data``
summary                    sample, k             (sample, target) float32
=========================  ====================  =================================

For seq2seq classification the label ``t`` must be the inputs' ``t``; for seq2seq regression it
is its own regular grid (a forecast uses ``t = T .. T+H-1``, the steps after the inputs).
Ids are ordered by sorting, so the framed arrays do not depend on the table's row order.

Splits table (optional): ``sample``, ``split`` (a name such as ``train``), one row per sample of
the inputs. It is the split the source already made (a seed-001 HDF5 file's ``train``/``val``/
``test`` groups, :mod:`.seed_hdf5`); framing keeps it as the per-sample coordinate
``stored_split``, which the split method ``stored`` turns into the dataset's splits.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pandas as pd

from trainset.collection import Collection
from trainset.errors import TrainsetError
from trainset.rng import named_rng
from trainset.tasks import TASKS as REGISTRY
from trainset.tasks import sequence_tasks

if TYPE_CHECKING:  # annotations only: the framing function imports xarray, so ingesting tables skips it
    import xarray as xr

logger = logging.getLogger(__name__)

RECIPES: dict[str, str] = {
    "pulses": "seq2static_classification", "statistics": "seq2static_regression",
    "labelling": "seq2seq_classification", "forecast": "seq2seq_regression",
    "reconstruction": "reconstruction", "summary": "summary"}
TASKS: tuple[str, ...] = sequence_tasks()
INPUT_KEYS = ("sample", "t", "feature")
DEFAULT_FEATURES = {"pulses": 1, "statistics": 3, "labelling": 2, "forecast": 3, "reconstruction": 6, "summary": 3}


# ----------------------------------------------------------------------------------------------
# generators: each returns (data [N, T, D] float32, labels array or None, label key names or None)


def _ar1(rng: np.random.Generator, shape: tuple[int, int, int], phi: float) -> np.ndarray:
    """Unit-variance AR(1) noise along axis 1; a loop over time steps, vectorised over samples."""
    shocks = rng.standard_normal(shape)
    out = np.empty(shape)
    out[:, 0] = shocks[:, 0]
    scale = np.sqrt(1.0 - phi**2)
    for step in range(1, shape[1]):
        out[:, step] = phi * out[:, step - 1] + scale * shocks[:, step]
    return out


def _pulses(rng, n, length, features, *, width: int = 5, amplitude: float = 2.0, noise: float = 0.3):
    """0, 1 or 2 rectangular pulses on noise; the label is the pulse count (seed 001's example).

    A single pulse lies anywhere; a double pulse has one in each half, so pulses never merge.
    Feature 0 carries the full pulse, other features a random fraction of it.
    """
    if length < 2 * width + 8:
        raise TrainsetError(f"pulses: length {length} too short for width {width}. Fix: length >= {2 * width + 8}")
    labels = rng.integers(0, 3, n)
    half = length // 2
    single = rng.integers(2, length - width - 1, n)
    starts = np.stack([np.where(labels == 1, single, rng.integers(2, half - width - 1, n)),
                       rng.integers(half + 1, length - width - 1, n)], axis=1)  # [N, 2]
    active = np.stack([labels >= 1, labels == 2], axis=1)
    heights = amplitude * rng.uniform(0.8, 1.25, (n, 2)) * active
    t = np.arange(length)
    inside = (t >= starts[:, :, None]) & (t < starts[:, :, None] + width)  # [N, 2, T]
    shape = (inside * heights[:, :, None]).sum(axis=1)
    gains = np.concatenate([[1.0], rng.uniform(0.3, 1.0, features - 1)])
    data = noise * rng.standard_normal((n, length, features)) + shape[:, :, None] * gains
    return data.astype(np.float32), labels.astype(np.int64), None


def _statistics(rng, n, length, features, *, phi: float = 0.5):
    """Level + trend + AR(1) noise; labels are the generating level, noise scale and slope.

    The targets are process parameters, not sample statistics, so there is irreducible error,
    as with any real regression; every feature is a noisy view of the same process.
    """
    level, scale, slope = rng.uniform(-2, 2, n), rng.uniform(0.2, 1.5, n), rng.uniform(-1, 1, n)
    ramp = np.linspace(-0.5, 0.5, length)
    data = (level[:, None, None] + slope[:, None, None] * ramp[None, :, None]
            + scale[:, None, None] * _ar1(rng, (n, length, features), phi))
    labels = np.stack([level, scale, slope], axis=1)
    return data.astype(np.float32), labels.astype(np.float32), np.array(["level", "scale", "slope"])


def _labelling(rng, n, length, features, *, classes: int = 3, switch: float = 0.08, noise: float = 0.35):
    """A hidden Markov regime per step sets the signal's level and oscillation frequency.

    Regimes switch with probability ``switch`` a step, always to a different regime; the label
    of each step is its regime.
    """
    switches = rng.random((n, length)) < switch
    switches[:, 0] = False
    jumps = np.where(switches, rng.integers(1, classes, (n, length)), 0)
    regime = (rng.integers(0, classes, n)[:, None] + np.cumsum(jumps, axis=1)) % classes
    levels = np.linspace(-1.5, 1.5, classes)
    freqs = np.linspace(0.04, 0.3, classes)
    phase = rng.uniform(0, 2 * np.pi, n)[:, None] + np.cumsum(2 * np.pi * freqs[regime], axis=1)
    offsets = np.arange(features) * np.pi / 2
    gains = np.where(np.arange(features) % 2 == 0, 1.0, 0.5)
    data = (levels[regime][:, :, None] * gains + np.sin(phase[:, :, None] + offsets)
            + noise * rng.standard_normal((n, length, features)))
    return data.astype(np.float32), regime.astype(np.int64), None


def _forecast(rng, n, length, features, *, horizon: int = 8, phi: float = 0.8, noise: float = 0.3):
    """Trend + seasonality + AR(1) noise over T + horizon steps; labels are the last ``horizon``.

    The labels are the same realisation continued, so the inputs really predict them.
    """
    total = length + horizon
    t = np.arange(total) / length
    level = rng.normal(0, 1, (n, 1, features))
    slope = rng.uniform(-1.5, 1.5, (n, 1, 1))
    period = rng.uniform(8, 24, (n, 1, 1))
    amp = rng.uniform(0.5, 1.5, (n, 1, features))
    phase = rng.uniform(0, 2 * np.pi, (n, 1, features))
    steps = np.arange(total)[None, :, None]
    series = (level + slope * t[None, :, None] + amp * np.sin(2 * np.pi * steps / period + phase)
              + noise * _ar1(rng, (n, total, features), phi))
    labels = series[:, length:].astype(np.float32)
    return series[:, :length].astype(np.float32), labels, np.arange(features)


def _reconstruction(rng, n, length, features, *, latents: int = 2, noise: float = 0.1, mixing_seed: int = 0):
    """Features are a fixed linear mix of a few per-sample sinusoids: compressible structure.

    The mixing matrix has its own stream (``mixing_seed``), so it does not change with ``n``.
    """
    mixing = named_rng(mixing_seed, "reconstruction", "mixing").normal(0, 1, (latents, features))
    periods = rng.uniform(6, 24, (n, 1, latents))
    phase = rng.uniform(0, 2 * np.pi, (n, 1, latents))
    sources = np.sin(2 * np.pi * np.arange(length)[None, :, None] / periods + phase)
    data = sources @ mixing + noise * rng.standard_normal((n, length, features))
    return data.astype(np.float32), None, None


def _summary(rng, n, length, features, *, phi: float = 0.6):
    """Per-feature level, scale and seasonality; labels are statistics of the stored inputs.

    Labels: mean of feature 0, max of feature 1 and variance of feature 2 (indices modulo D),
    computed from the float32 inputs, so they are exactly derivable from ``data``.
    """
    level, scale = rng.normal(0, 1, (n, 1, features)), rng.uniform(0.3, 1.5, (n, 1, features))
    season = rng.uniform(0, 1, (n, 1, features)) * np.sin(
        2 * np.pi * np.arange(length)[None, :, None] / rng.uniform(6, 20, (n, 1, 1)))
    data = (level + season + scale * _ar1(rng, (n, length, features), phi)).astype(np.float32)
    a, b, c = 0, 1 % features, 2 % features
    wide = data.astype(np.float64)
    labels = np.stack([wide[:, :, a].mean(1), wide[:, :, b].max(1), wide[:, :, c].var(1)], axis=1)
    return data, labels.astype(np.float32), np.array([f"mean_x{a}", f"max_x{b}", f"var_x{c}"])


_GENERATORS: dict[str, Callable] = {"pulses": _pulses, "statistics": _statistics, "labelling": _labelling,
                                    "forecast": _forecast, "reconstruction": _reconstruction, "summary": _summary}


def make_sequence_tables(recipe: str, n: int, seed: int, length: int = 64, features: int | None = None,
                         **params: Any) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Generate the long inputs and labels tables of one recipe.

    Parameters
    ----------
    recipe : str
        A key of :data:`RECIPES`; it fixes the task type.
    n, length, features : int
        Samples N, time steps T and features D (default :data:`DEFAULT_FEATURES` of the recipe).
    seed : int
        Root seed; the draws come from ``named_rng(seed, "sequences", recipe)``, so equal
        arguments give identical tables on any machine and PYTHONHASHSEED.
    **params
        Recipe knobs (keyword arguments of the recipe's generator, e.g. ``horizon`` for
        ``forecast``, ``classes`` for ``labelling``).

    Returns
    -------
    inputs, labels : pandas.DataFrame, pandas.DataFrame or None
        Tables in the module's schema; ``labels`` is None for ``reconstruction``. Both carry
        ``.attrs`` ``{"recipe", "task", "seed"}``, which :func:`frame_sequences` picks up.

    Raises
    ------
    TrainsetError
        For an unknown recipe or parameter, or sizes below 1.
    """
    if recipe not in RECIPES:
        raise TrainsetError(f"sequence recipe {recipe!r} unknown. Fix: use one of {', '.join(RECIPES)}")
    features = DEFAULT_FEATURES[recipe] if features is None else int(features)
    if min(n, length, features) < 1:
        raise TrainsetError(f"{recipe}: n, length and features must be >= 1; got {n}, {length}, {features}")
    generator = _GENERATORS[recipe]
    allowed = [p.name for p in inspect.signature(generator).parameters.values() if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise TrainsetError(f"{recipe}: unknown parameter(s) {unknown}. Fix: use {allowed}")
    rng = named_rng(seed, "sequences", recipe)
    data, labels, keys = generator(rng, int(n), int(length), features, **params)
    task = RECIPES[recipe]
    inputs = _long(data, ("sample", "t", "feature"))
    table = None
    if labels is not None:
        table = _long(labels, REGISTRY[task].labels_table[0], keys, t_offset=length if recipe == "forecast" else 0)
    meta = {"recipe": recipe, "task": task, "seed": int(seed)}
    for frame in (inputs, table):
        if frame is not None:
            frame.attrs.update(meta)
    logger.info("sequence recipe %s (seed %d): data %s, labels %s", recipe, seed, data.shape,
                None if labels is None else labels.shape)
    return inputs, table


def arrays_to_tables(data: np.ndarray, labels: np.ndarray | None, task: str,
                     samples: np.ndarray | None = None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Dense seed-001 arrays as the module's long tables, so they are framed and checked like any table.

    ``data`` is [N, T, D]; ``labels`` has the shape of ``task`` (module table; None for
    ``reconstruction``); ``samples`` are the N sample ids (default ``0..N-1``). Label axes get
    their positions as keys: ``t`` of seq2seq classification is the inputs' step, ``t`` of seq2seq
    regression the target step 0..T'-1 (a file stores no times), ``k`` the target number.

    Raises
    ------
    TrainsetError
        ``data`` not 3-d, or ``labels`` whose shape is not the task's.
    """
    if data.ndim != 3:
        raise TrainsetError(f"data has shape {list(data.shape)}, not [N, T, D]. Fix: store data [N, T, D] "
                            f"(one feature: data[..., None])")
    samples = np.arange(len(data)) if samples is None else np.asarray(samples)
    inputs = _long(data, INPUT_KEYS)
    inputs["sample"] = samples[inputs["sample"].to_numpy()]
    layout = REGISTRY[task].labels_table
    if layout is None or labels is None:
        return inputs, None
    keys = layout[0]
    if labels.ndim != len(keys) or len(labels) != len(data):
        shape = "[" + ", ".join(["N", *(("T" if k == "t" else "K") for k in keys[1:])]) + "]"
        raise TrainsetError(f"labels have shape {list(labels.shape)} (data {list(data.shape)}), not task {task}'s "
                            f"{shape}. Fix: store labels {shape}, or set the dataset's task to the one they are")
    table = _long(labels, keys, np.arange(labels.shape[-1]) if "k" in keys else None)
    table["sample"] = samples[table["sample"].to_numpy()]
    return inputs, table


def _long(array: np.ndarray, columns: tuple[str, ...], last_keys: np.ndarray | None = None,
          t_offset: int = 0) -> pd.DataFrame:
    """A dense array as a long table: one row per cell, one key column per axis, ``value``."""
    index = np.indices(array.shape).reshape(array.ndim, -1)
    out = {column: last_keys[codes] if column == "k" else codes + (t_offset if column == "t" else 0)
           for column, codes in zip(columns, index)}
    return pd.DataFrame({**out, "value": array.ravel()})


# ----------------------------------------------------------------------------------------------
# framing


def frame_sequences(inputs: pd.DataFrame, labels: pd.DataFrame | None, task: str, name: str,
                    attrs: dict | None = None, splits: pd.DataFrame | None = None) -> Collection:
    """Validate long tables and pivot them into a one-part :class:`Collection`.

    Parameters
    ----------
    inputs, labels : pandas.DataFrame
        Tables in the module's schema; ``labels`` must be None exactly for ``reconstruction``.
    task : str
        One of :data:`TASKS`; decides the labels' key columns, shape and dtype.
    name : str
        Part name.
    attrs : dict, optional
        Extra collection attributes; ``recipe`` defaults to ``inputs.attrs["recipe"]`` or
        ``"table"``.
    splits : pandas.DataFrame, optional
        The splits table (``sample``, ``split``): kept as the coordinate ``stored_split``.

    Returns
    -------
    Collection
        Variables ``data`` (sample, time, feature) float32 and, except for reconstruction,
        ``labels`` (see the module table); coordinates ``sample_id``, ``time``, ``feature``
        and ``target``/``step`` where they apply; attrs ``task``, ``recipe``,
        ``target_seq_len`` (seq2seq tasks) and ``num_classes`` (classification).

    Raises
    ------
    TrainsetError
        For an unknown task, a missing column, NaN, a non-integer or gapped ``t``, duplicate or
        missing keys, labels of unknown samples, or non-integer or negative class labels.
    """
    if task not in TASKS:
        raise TrainsetError(f"sequence task {task!r} unknown. Fix: use one of {', '.join(TASKS)}")
    attrs = dict(attrs or {})
    recipe = attrs.pop("recipe", inputs.attrs.get("recipe", "table"))
    if inputs.attrs.get("task", task) != task:
        raise TrainsetError(f"inputs table was made for task {inputs.attrs['task']!r}, not {task!r}. "
                            f"Fix: pass task={inputs.attrs['task']!r}")
    _check_columns(inputs, INPUT_KEYS, "inputs")
    samples, s_codes = _codes(inputs["sample"])
    times, t_codes = _times(inputs["t"], "inputs")
    feats, f_codes = _codes(inputs["feature"])
    data = _scatter(inputs, (s_codes, t_codes, f_codes), (samples, times, feats), INPUT_KEYS, "inputs", np.float32)
    coords: dict[str, Any] = {"sample_id": ("sample", samples), "time": times, "feature": feats}
    variables = {"data": (("sample", "time", "feature"), data)}
    out_attrs: dict[str, Any] = {"task": task, "recipe": recipe}
    spec = REGISTRY[task]
    layout = spec.labels_table  # (key columns of the labels table, dims of labels); None: no table
    if layout is None:
        if labels is not None:
            raise TrainsetError("reconstruction takes no labels table: its targets are the inputs. Fix: pass labels=None")
        out_attrs["target_seq_len"] = len(times)
    else:
        keys = layout[0]
        if labels is None:
            raise TrainsetError(f"task {task} needs a labels table with columns {', '.join(keys)}, value. "
                                f"Fix: pass one, or use task reconstruction")
        values, label_coords = _frame_labels(labels, task, keys, samples, times)
        coords.update(label_coords)
        variables["labels"] = (layout[1], values)
        if spec.classification:
            out_attrs["num_classes"] = int(values.max()) + 1 if values.size else 0
        if spec.seq2seq:
            out_attrs["target_seq_len"] = int(values.shape[1])
    if splits is not None:
        coords["stored_split"] = ("sample", _stored_split(splits, samples))
    import xarray as xr

    dataset = xr.Dataset(variables, coords=coords)
    logger.info("framed %s (%s): %s", name, task, dict(dataset.sizes))
    return Collection.single(dataset, name=name, attrs={**out_attrs, **attrs})


def _frame_labels(labels: pd.DataFrame, task: str, keys: tuple[str, ...], samples: np.ndarray,
                  times: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The dense ``labels`` array of ``task`` and its new coordinates (``step``, ``target``)."""
    _check_columns(labels, keys, "labels")
    codes, axes, coords = [_known_samples(labels["sample"], samples)], [samples], {}
    if task == "seq2seq_classification":
        code = pd.Index(times).get_indexer(labels["t"].to_numpy())
        if (code < 0).any():
            bad = labels["t"].to_numpy()[np.argmax(code < 0)]
            raise TrainsetError(f"labels table: column 't' holds t={bad}, not a time of the inputs "
                                f"({times[0]}..{times[-1]}). Fix: label exactly the input steps")
        codes.append(code)
        axes.append(times)
    elif "t" in keys:
        coords["step"], code = _times(labels["t"], "labels")
        codes.append(code)
        axes.append(coords["step"])
    if "k" in keys:
        coords["target"], code = _codes(labels["k"])
        codes.append(code)
        axes.append(coords["target"])
    dtype = np.int64 if REGISTRY[task].classification else np.float32
    return _scatter(labels, tuple(codes), tuple(axes), keys, "labels", dtype), coords


def _stored_split(splits: pd.DataFrame, samples: np.ndarray) -> np.ndarray:
    """The split name of every sample, from the splits table (each sample exactly once)."""
    for column in ("sample", "split"):
        if column not in splits.columns:
            raise TrainsetError(f"splits table: missing column {column!r} (needs sample, split). Fix: add it")
        if splits[column].isna().any():
            raise TrainsetError(f"splits table: column {column!r} has missing values. Fix: name a split for "
                                f"every sample")
    codes = _known_samples(splits["sample"], samples)
    counts = np.bincount(codes, minlength=len(samples))
    for bad, problem in ((counts > 1, "more than once"), (counts == 0, "in no row")):
        if bad.any():
            raise TrainsetError(f"splits table: sample {_show(samples[np.argmax(bad)])} is listed {problem} "
                                f"({int(bad.sum())} such samples). Fix: give every sample exactly one split")
    out = np.empty(len(samples), dtype=object)
    out[codes] = splits["split"].astype(str).to_numpy()
    return out.astype(str)


def _check_columns(table: pd.DataFrame, keys: tuple[str, ...], what: str) -> None:
    """Refuse missing columns and NaN, naming the column and the fix."""
    for column in (*keys, "value"):
        if column not in table.columns:
            raise TrainsetError(f"{what} table: missing column {column!r} (needs {', '.join((*keys, 'value'))}). "
                                f"Fix: rename or add it")
        missing = table[column].isna()
        if missing.any():
            raise TrainsetError(f"{what} table: column {column!r} has {int(missing.sum())} missing values "
                                f"(first at row {int(np.argmax(missing.to_numpy()))}). Fix: fill or drop them upstream")


def _codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique values (numbers as numbers, anything else as str) and each row's code."""
    codes, uniques = pd.factorize(column, sort=True)
    uniques = np.asarray(uniques)
    if uniques.dtype.kind not in "iufb":
        uniques = uniques.astype(str)
    return uniques, codes.astype(np.int64)


def _times(column: pd.Series, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Integer time steps on one regular grid without gaps."""
    raw = column.to_numpy()
    if raw.dtype.kind not in "iuf" or (raw.dtype.kind == "f" and not np.array_equal(raw, np.round(raw))):
        raise TrainsetError(f"{what} table: column 't' must hold integer time steps (got {raw.dtype}). "
                            f"Fix: number the steps 0, 1, 2, ...")
    steps, codes = _codes(pd.Series(raw.astype(np.int64)))
    gaps = np.flatnonzero(np.diff(steps) != 1)
    if gaps.size:
        raise TrainsetError(f"{what} table: column 't' has gaps (t={steps[gaps[0]] + 1} is missing; t runs "
                            f"{steps[0]}..{steps[-1]}). Fix: resample or fill to a regular step")
    return steps, codes


def _known_samples(column: pd.Series, samples: np.ndarray) -> np.ndarray:
    """Codes of the labels' samples among the inputs' samples; unknown ones are an error."""
    values = column.to_numpy()
    if samples.dtype.kind == "U":
        values = values.astype(str)
    code = pd.Index(samples).get_indexer(values)
    if (code < 0).any():
        raise TrainsetError(f"labels table: column 'sample' holds {_show(values[np.argmax(code < 0)])}, which has no "
                            f"inputs. Fix: drop labels of samples without inputs")
    return code.astype(np.int64)


def _show(value: Any) -> str:
    """A key value as the user wrote it: ``2`` or ``'s0'``, never ``np.int64(2)``."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _scatter(table: pd.DataFrame, codes: tuple[np.ndarray, ...], axes: tuple[np.ndarray, ...],
             keys: tuple[str, ...], what: str, dtype: type) -> np.ndarray:
    """Place ``value`` at its integer codes; every cell exactly once, else name the key."""
    shape = tuple(len(axis) for axis in axes)
    flat = np.ravel_multi_index(codes, shape) if codes else np.zeros(len(table), np.int64)
    counts = np.bincount(flat, minlength=int(np.prod(shape)))
    for bad, problem, fix in ((counts > 1, "duplicate rows", "aggregate or drop the duplicates"),
                              (counts == 0, "no row", "add the missing rows (every key combination is needed)")):
        if bad.any():
            cell = np.unravel_index(int(np.argmax(bad)), shape)
            where = ", ".join(f"{key}={_show(axis[i])}" for key, axis, i in zip(keys, axes, cell))
            raise TrainsetError(f"{what} table: {problem} for key ({', '.join(keys)}) at {where} "
                                f"({int(bad.sum())} such keys). Fix: {fix}")
    values = table["value"].to_numpy()
    if dtype is np.int64:
        if values.dtype.kind not in "iuf" or not np.array_equal(values, np.round(values)) or (values < 0).any():
            raise TrainsetError(f"{what} table: column 'value' must hold class indices 0, 1, 2, ... for a "
                                f"classification task. Fix: encode classes as integers >= 0")
    elif values.dtype.kind not in "iuf":
        raise TrainsetError(f"{what} table: column 'value' must be numeric (got {values.dtype}). Fix: convert it")
    out = np.empty(int(np.prod(shape)), dtype=dtype)
    out[flat] = values.astype(dtype)
    return out.reshape(shape)
