"""Train/validation/test splits as an artifact: seeded, leak-free, stored as ``splits.json``.

The old code split at random per row (the same day in train and validation), or with a seed
fixed at 42 whatever the experiment's seed. Here a split is made once, by a seeded rule, from
one of four methods, and every format stores or reads the same indices:

``random``
    Sample indices shuffled with the seed and cut by ``fractions``.
``group``
    Whole groups (a season, a site, a world, an origin) go to one split, so related samples
    never straddle splits; groups are shuffled with the seed and filled up to the fractions.
``time``
    Contiguous blocks of time: the earliest times to the first split named in ``fractions``,
    and so on, so no time point is in two splits.
``explicit``
    Indices given in the config.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from trainset.errors import TrainsetError
from trainset.provenance import write_json
from trainset.versions import KEY, check_version, stamp

Splits = dict[str, np.ndarray]
DEFAULT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}
SEED001_FRACTIONS = {"train": 0.7, "val": 0.2, "test": 0.1}
"""Seed 001's cut of a file without splits (the old code's 70/20/10): the same for
``trainset train --config`` (:mod:`trainset.train.autosplit`) and the workflow
(:mod:`trainset.domains.seed_hdf5`)."""
METHODS = ("random", "group", "time", "explicit")
"""The methods of :func:`make_splits`; a domain may offer more (macro's ``extrapolation``, sequences'
``stored``: :mod:`trainset.domains.registry`)."""
SPLITS_DEFAULTS = {"method": "group", "by": "group", "fractions": DEFAULT_FRACTIONS}
"""Defaults of a dataset's ``splits`` section (the schema's copy is tested against these)."""


def with_defaults(cfg: dict[str, Any] | None) -> dict[str, Any]:
    """A ``splits`` section with :data:`SPLITS_DEFAULTS` for the keys it leaves out (a null or
    empty ``fractions`` means the default fractions too)."""
    full = {**SPLITS_DEFAULTS, **(cfg or {})}
    full["fractions"] = dict(full["fractions"] or DEFAULT_FRACTIONS)
    return full


def make_splits(n: int, cfg: dict[str, Any], seed: int, groups: np.ndarray | None = None,
                times: np.ndarray | None = None) -> Splits:
    """Assign each of ``n`` samples to one split according to ``cfg``.

    Parameters
    ----------
    n : int
        Number of samples (global indices 0..n-1).
    cfg : dict
        ``{method: random|group|time|explicit, fractions: {name: share}, indices: {...}}``; a key
        left out takes its value from :data:`SPLITS_DEFAULTS` (method ``group``, as the schema's).
    seed : int
        The experiment seed (never a hard-coded one).
    groups, times : ndarray, optional
        Per-sample group labels (``group``) or sortable times (``time``).
    """
    cfg = with_defaults(cfg)
    method, fractions = cfg["method"], cfg["fractions"]
    if method == "explicit":
        splits = {name: np.asarray(ix, dtype=np.int64) for name, ix in cfg.get("indices", {}).items()}
    elif method == "random":
        order = np.random.default_rng([seed, 0x5B11]).permutation(n)
        splits = _cut(order, np.ones(n), fractions)
    elif method in ("group", "time"):
        labels = groups if method == "group" else times
        if labels is None or len(labels) != n:
            raise TrainsetError(f"splits: method '{method}' needs one {'group' if method == 'group' else 'time'} "
                                f"value per sample. Fix: set splits.by to a per-sample column")
        uniques, inverse, counts = np.unique(np.asarray(labels), return_inverse=True, return_counts=True)
        if method == "group":
            order = np.random.default_rng([seed, 0x6B0]).permutation(len(uniques))
        else:
            order = np.arange(len(uniques))
        by_unit = _cut(order, counts[order], fractions, by_weight=True)
        splits = {name: np.flatnonzero(np.isin(inverse, units)) for name, units in by_unit.items()}
    else:
        raise TrainsetError(f"splits.method {method!r} unknown. Fix: use one of {', '.join(METHODS)}")
    return check_splits(splits, n)


def _cut(order: np.ndarray, weights: np.ndarray, fractions: dict[str, float], by_weight: bool = False) -> Splits:
    """Cut ``order`` into consecutive pieces whose total weight follows ``fractions``."""
    total = float(np.sum(weights))
    shares = np.array(list(fractions.values()), dtype=float)
    if (shares < 0).any() or shares.sum() <= 0:
        raise TrainsetError(f"splits.fractions {fractions} must be non-negative and not all zero")
    bounds = np.cumsum(shares / shares.sum()) * total
    cumulative = np.cumsum(weights)
    # a unit goes to the first split whose upper bound its midpoint does not exceed
    midpoints = cumulative - np.asarray(weights) / 2.0
    which = np.minimum(np.searchsorted(bounds, midpoints, side="left"), len(shares) - 1)
    return {name: np.sort(order[which == k]) for k, name in enumerate(fractions)}


REBUILD = "Fix: rerun the make_splits rule for this dataset (snakemake --forcerun make_splits)"
"""The fix every refused split names: splits are rebuilt from the dataset, never repaired."""


def check_splits(splits: Any, n: int | None, where: str = "splits") -> Splits:
    """The one split checker: sorted int64 indices, or a :class:`TrainsetError`.

    Used wherever splits are made or read (``splits.json`` beside a dataset, Zarr per-world
    files, WebDataset and HDF5/NetCDF stored splits, ``validate`` and training), so a split
    that would leak samples is refused where the data is read. Refused, naming ``where`` (the
    file and key), the split and examples: a value that is not a list of integers (JSON
    ``true``, ``1.5``, ``"3"``, a nested list; an array of another dtype), duplicates within a
    split, negative indices, indices ``>= n`` (the dataset's sample count, when known) and
    indices shared by two splits. Nothing is dropped, clipped or deduplicated.
    """
    if not isinstance(splits, dict):
        raise TrainsetError(f"{where}: splits must map split names to lists of sample indices, got "
                            f"{type(splits).__name__}. {REBUILD}")
    out: Splits = {}
    for name, raw in splits.items():
        label = f"{where}: split {name!r}"
        indices = _as_indices(raw, label)
        values, counts = np.unique(indices, return_counts=True)
        if (counts > 1).any():
            raise TrainsetError(f"{label} lists {int((counts > 1).sum())} sample(s) more than once "
                                f"(e.g. {values[counts > 1][:3].tolist()}): a sample would be served twice. {REBUILD}")
        bad = values[(values < 0) | (values >= n)] if n is not None else values[values < 0]
        if bad.size:
            span = f"0..{n - 1}" if n is not None else "0 and up"
            wrap = "; a negative index would wrap around to another sample" if bad.min() < 0 else ""
            raise TrainsetError(f"{label} has {bad.size} indices outside {span} (e.g. {bad[:3].tolist()}){wrap}. "
                                f"{REBUILD}")
        for other, taken in out.items():
            shared = np.intersect1d(values, taken, assume_unique=True)
            if shared.size:
                raise TrainsetError(f"{label} overlaps split {other!r} in {shared.size} sample(s) (e.g. "
                                    f"{shared[:3].tolist()}): those samples leak between splits. {REBUILD}")
        out[str(name)] = values.astype(np.int64)
    return out


def _as_indices(raw: Any, label: str) -> np.ndarray:
    """``raw`` as a 1-d int64 array if it is a list (or integer array) of integers, else refused."""
    if isinstance(raw, np.ndarray):
        if raw.ndim != 1 or raw.dtype.kind not in "iu":
            raise TrainsetError(f"{label} is a {raw.dtype} array of shape {list(raw.shape)}, not 1-d integer "
                                f"sample indices. {REBUILD}")
        return raw.astype(np.int64)
    if not isinstance(raw, (list, tuple)):
        raise TrainsetError(f"{label} is {type(raw).__name__} {_short(raw)}, not a list of sample indices. {REBUILD}")
    wrong = [value for value in raw if isinstance(value, bool) or not isinstance(value, (int, np.integer))]
    if wrong:
        hint = " (JSON true/false are not samples 1/0)" if any(isinstance(v, bool) for v in wrong) else ""
        raise TrainsetError(f"{label} holds {len(wrong)} value(s) that are not integers (e.g. "
                            f"{', '.join(_short(v) for v in wrong[:3])}){hint}. {REBUILD}")
    try:
        return np.asarray([int(value) for value in raw], dtype=np.int64)
    except OverflowError as error:
        raise TrainsetError(f"{label} holds an index beyond 64 bits ({error}). {REBUILD}") from error


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (JSON readers keep the last one silently)."""
    keys = [key for key, _ in pairs]
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        raise ValueError(f"key(s) {twice} given more than once")
    return dict(pairs)


def _short(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (bool, int, float, str, list, dict, type(None))) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def splits_to_json(splits: Splits, **extra: Any) -> dict[str, Any]:
    """JSON-able form: ``{"splits": {name: [indices]}, ...extra}``."""
    return {"splits": {name: [int(i) for i in ix] for name, ix in splits.items()}, **extra}


def splits_from_json(obj: Any, n: int | None = None, where: str = "splits.json") -> Splits:
    """Inverse of :func:`splits_to_json`, through :func:`check_splits` (``n``: the sample count,
    when known)."""
    if not isinstance(obj, dict) or "splits" not in obj:
        raise TrainsetError(f"{where}: no 'splits' key (a JSON object {{'splits': {{name: [indices]}}}} is "
                            f"expected). {REBUILD}")
    return check_splits(obj["splits"], n, f"{where}: key 'splits'")


def write_splits(splits: Splits, path: str | os.PathLike, **extra: Any) -> None:
    """Write ``splits.json`` atomically, with its format version."""
    write_json({**splits_to_json(splits, **extra), **stamp("splits")}, path)


def read_splits(path: str | os.PathLike, versioned: bool = True, n: int | None = None,
                text: str | bytes | None = None) -> Splits:
    """Read a ``splits.json`` and check it (:func:`check_splits`); a clear error if it is not one.

    ``n`` is the dataset's sample count (per world for the Zarr per-world files), when known:
    indices at or beyond it are refused. ``versioned=False`` reads the per-world files of a
    Zarr store in the seed-003 layout, which carry no version of their own (the store's
    metadata does). ``text``: the file's content, already fetched (an object in an fsspec
    store); ``path`` then only names it in messages.
    """
    try:
        if text is None:
            with open(path) as handle:
                text = handle.read()
        obj = json.loads(text, object_pairs_hook=_unique_keys)
        if versioned and isinstance(obj, dict):
            check_version("splits", obj.get(KEY), path)
    except (OSError, ValueError) as error:
        raise TrainsetError(f"{path}: not a readable splits.json ({error}). {REBUILD}") from error
    return splits_from_json(obj, n, str(path))
