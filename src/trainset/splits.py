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
METHODS = ("random", "group", "time", "explicit")
"""The methods of :func:`make_splits`; a domain may offer more (macro's ``extrapolation``)."""
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


def check_splits(splits: Splits, n: int) -> Splits:
    """Sorted int64 indices; refuse overlaps and out-of-range indices."""
    out, seen = {}, np.zeros(n, dtype=bool)
    for name, indices in splits.items():
        indices = np.unique(np.asarray(indices, dtype=np.int64))
        if indices.size and (indices.min() < 0 or indices.max() >= n):
            raise TrainsetError(f"split {name!r} has indices outside 0..{n - 1}")
        if seen[indices].any():
            raise TrainsetError(f"split {name!r} overlaps another split. Fix: make the splits disjoint")
        seen[indices] = True
        out[name] = indices
    return out


def splits_to_json(splits: Splits, **extra: Any) -> dict[str, Any]:
    """JSON-able form: ``{"splits": {name: [indices]}, ...extra}``."""
    return {"splits": {name: [int(i) for i in ix] for name, ix in splits.items()}, **extra}


def splits_from_json(obj: dict[str, Any]) -> Splits:
    """Inverse of :func:`splits_to_json`."""
    return {name: np.asarray(ix, dtype=np.int64) for name, ix in obj["splits"].items()}


def write_splits(splits: Splits, path: str | os.PathLike, **extra: Any) -> None:
    """Write ``splits.json`` atomically, with its format version."""
    write_json({**splits_to_json(splits, **extra), **stamp("splits")}, path)


def read_splits(path: str | os.PathLike, versioned: bool = True) -> Splits:
    """Read a ``splits.json``; a clear error if it is not one.

    ``versioned=False`` reads the per-world files of a Zarr store in the seed-003 layout, which
    carry no version of their own (the store's metadata does).
    """
    try:
        with open(path) as handle:
            obj = json.load(handle)
        if versioned:
            check_version("splits", obj.get(KEY), path)
        return splits_from_json(obj)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise TrainsetError(f"{path}: not a readable splits.json ({error}). Fix: rebuild it with the splits rule") from error
