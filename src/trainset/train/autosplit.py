"""Seed 001's auto-split: a single-layout HDF5 file the guide's h5py code wrote has no splits.

The old code cut such a file 70/20/10 (train/val/test) at random with a seed fixed at 42 and
kept the cut nowhere. Here the cut is :func:`trainset.splits.make_splits` (method ``random``)
seeded by the run's ``training.seed``, with ``data.split_fractions`` (default
:data:`trainset.splits.SEED001_FRACTIONS`, the old shares), and it is saved as ``splits.json`` in the run folder,
so what was trained on, validated on and held out can be read back.

Only files without trainset metadata are cut (:attr:`~trainset.io.hdf5.read.HDF5Reader.foreign`):
a dataset trainset wrote gets its splits from the ``make_splits`` rule, and a missing
``splits.json`` there is an error, never a silent new cut. A dataset that has splits (stored,
or a ``splits.json`` beside it) refuses ``data.split_fractions``, which it would otherwise
ignore. This module imports neither torch nor h5py at import time (the config check uses it).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

from trainset.errors import TrainsetError
from trainset.splits import SEED001_FRACTIONS

logger = logging.getLogger(__name__)

__all__ = ["auto_splits", "fraction_problems", "save_auto_splits", "split_name_problems"]


def fraction_problems(fractions: Any) -> list[str]:
    """Problems of ``data.split_fractions``: a mapping of names to shares in [0, 1] summing to 1."""
    key = "data.split_fractions"
    if not isinstance(fractions, dict) or not fractions:
        return [f"{key}: expected a mapping of split names to shares such as {SEED001_FRACTIONS}, got {fractions!r}"]
    bad = {k: v for k, v in fractions.items() if isinstance(v, bool) or not isinstance(v, (int, float))
           or not math.isfinite(v) or not 0 <= v <= 1}
    if bad:
        return [f"{key}: shares must be numbers in [0, 1], got {bad}"]
    total = math.fsum(fractions.values())
    if abs(total - 1) > 1e-9:
        return [f"{key}: shares sum to {total:g}, not 1. Fix: e.g. {SEED001_FRACTIONS}"]
    return []


def split_name_problems(fractions: dict[str, float], train: str, val: str) -> list[str]:
    """The training and validation splits must be cut, with a share above 0."""
    missing = [name for name in (train, val) if not fractions.get(name)]
    if missing:
        return [f"data.split_fractions: needs a share above 0 for {missing} (training.train_split "
                f"{train!r}, training.val_split {val!r}), got {fractions}"]
    return []


def auto_splits(path: str | os.PathLike, reader: Any, cfg: Any) -> dict[str, Any] | None:
    """The seeded cut of a seed-001 file without splits; None when the dataset has its own.

    Raises
    ------
    TrainsetError
        ``data.split_fractions`` set for a dataset that has splits or that trainset wrote.
    """
    from trainset.splits import make_splits

    fractions = getattr(getattr(cfg, "data", None), "split_fractions", None)  # the I/O tuner's cfg has no data
    beside = Path(path).parent / "splits.json"
    if reader.splits or beside.exists():
        if fractions is not None:
            where = "stores splits" if reader.splits else f"has {beside} beside it"
            raise TrainsetError(f"data.split_fractions: {path} {where}; fractions only cut a seed-001 file "
                                "without splits. Fix: remove data.split_fractions")
        return None
    if not getattr(reader, "foreign", False):
        if fractions is not None:
            raise TrainsetError(f"data.split_fractions: {path} was written by trainset; its splits come from the "
                                "make_splits rule (splits.json beside it). Fix: remove data.split_fractions")
        return None
    fractions = dict(fractions or SEED001_FRACTIONS)
    splits = make_splits(len(reader), {"method": "random", "fractions": fractions}, cfg.training.seed)
    logger.info("%s has no splits: cut %s at random with seed %d (%s samples)", path, fractions, cfg.training.seed,
                {name: len(ix) for name, ix in splits.items()})
    return splits


def save_auto_splits(path: str | os.PathLike, cfg: Any, folder: str | os.PathLike) -> None:
    """Write ``folder/splits.json`` when :func:`auto_splits` cuts the dataset (else nothing)."""
    from trainset.io.base import guess_format
    from trainset.splits import write_splits

    fmt = guess_format(path)
    if not fmt.random_access:  # streamed shards always carry their splits
        return
    reader = fmt.reader(path)
    try:
        splits = auto_splits(path, reader, cfg)
    finally:
        getattr(reader, "close", lambda: None)()
    if splits is None:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    write_splits(splits, Path(folder) / "splits.json", method="random",
                 fractions=dict(cfg.data.split_fractions or SEED001_FRACTIONS),
                 seed=cfg.training.seed)


def open_auto_split(path: str | os.PathLike, reader: Any, cfg: Any, split: str,
                    variables: list[str] | None = None) -> Any:
    """Split ``split`` of the cut (:func:`auto_splits`) as a torch dataset reading ``variables``
    (None: all); None when not cut."""
    splits = auto_splits(path, reader, cfg)
    if splits is None:
        return None
    if split not in splits:
        raise TrainsetError(f"{path}: no split {split!r} in the auto-split {sorted(splits)}. "
                            "Fix: name it in data.split_fractions, or use one of those")
    from trainset.loaders.mapped import MappedDataset

    return MappedDataset(reader, splits[split], variables)
