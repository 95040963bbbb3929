"""A seed-001 HDF5 file (the guide's h5py layouts) as a ``sequences`` dataset of the workflow.

``datasets: {NAME: {domain: sequences, files: {hdf5: path}}}`` makes the file one more domain
dataset: this module reads its arrays into the sequences domain's long tables (and a splits
table for a pre-split file), so framing, splits, formats, scalers, training and evaluation are
those of any sequences dataset. The stage that reads it is ``ingest_domain``, whose rule lists
the file as an input, so editing the file reruns everything downstream.

Layouts (the guide's, written by plain h5py; no trainset metadata)

``single``
    Root datasets ``data`` [N, T, D] and, optionally, ``labels``. It has no splits: the
    dataset's ``splits:`` section cuts it; without one it is cut as seed 001 did, at random
    70/20/10 train/val/test (:data:`trainset.splits.SEED001_FRACTIONS`), seeded by the workflow's seed.
``presplit``
    One group per split (``train``, ``val``, ``test``, any other name too), each with ``data``
    and ``labels``. The groups' rows numbered one after another in the order train, val, test,
    then the others by name, are the samples 0..N-1 (the guide writes no ``index``); when every
    group holds an integer ``index``, those are the sample numbers instead. The groups become
    the splits table, kept by ``splits: {method: stored}`` or when the dataset has no ``splits:``.

The task is the dataset's ``task:`` (a name or an alias such as
``supervised_seq2static_classification``), else the one the labels' shape and dtype say
(:func:`trainset.tasks.task_from_paradigm` with no paradigm: ``[N, K]`` float is regression;
set ``task: summary`` or ``reconstruction`` for the self-supervised readings). Refused, with the
fix: a file in neither layout, one trainset wrote (it is a dataset already), datasets other
than ``data``/``labels``/``index`` (they would be silently dropped), and labels that fit no task.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from trainset.domains.sequences import TASKS, arrays_to_tables
from trainset.errors import TrainsetError
from trainset.tasks import get_task, task_from_paradigm
from trainset.versions import VERSION_ATTR

logger = logging.getLogger(__name__)

__all__ = ["read_seed_file", "SPLIT_ORDER"]

SPLIT_ORDER = ("train", "val", "test")
"""The guide's split groups, whose rows come first, in this order (other groups follow by name)."""
_ROW_KEYS = {"data", "labels"}


def read_seed_file(path: str | os.PathLike, task: str | None = None
                   ) -> tuple[dict[str, pd.DataFrame | None], dict[str, Any]]:
    """The long tables (``inputs``, ``labels``, ``splits``) of a seed-001 HDF5 file, and metadata.

    Parameters
    ----------
    path : path
        The file, in one of the module's layouts.
    task : str, optional
        The dataset's ``task:``; None infers it from the labels.

    Returns
    -------
    tables, metadata
        ``splits`` is None for the single layout. ``metadata``: ``source`` (``"hdf5"``),
        ``layout``, ``task`` and ``split_sizes`` (rows per group, in order).

    Raises
    ------
    TrainsetError
        Naming the file, the key and the fix (see the module docstring).
    """
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            layout, groups = _layout(f, path)
            blocks = [_read_group(f[g], path) for g in groups]
    except OSError as error:
        raise TrainsetError(f"{path}: not readable as HDF5 ({error}). Fix: give the seed-001 .h5 file "
                            "in datasets.<name>.files.hdf5") from None
    data = np.concatenate([b["data"] for b in blocks])
    labels = _labels(blocks, path)
    samples = _samples(blocks, groups, path)
    task = _task(task, data, labels, path)
    if labels is not None and task == "reconstruction":
        logger.warning("%s: labels %s not used: task reconstruction's targets are the inputs (the guide: "
                       "'Will be ignored')", path, list(labels.shape))
        labels = None
    try:
        inputs, table = arrays_to_tables(data, labels, task, samples)
    except TrainsetError as error:
        raise TrainsetError(f"{path}: {error}") from None
    splits = None
    if layout == "presplit":
        names = np.repeat([g.strip("/") for g in groups], [len(b["data"]) for b in blocks])
        splits = pd.DataFrame({"sample": samples, "split": names})
    sizes = {g.strip("/"): int(len(b["data"])) for g, b in zip(groups, blocks)} if layout == "presplit" else {}
    logger.info("%s: %s layout, task %s, data %s, splits %s", path, layout, task, list(data.shape), sizes or "none")
    return ({"inputs": inputs, "labels": table, "splits": splits},
            {"source": "hdf5", "layout": layout, "task": task, "split_sizes": sizes})


def _layout(f: h5py.File, path: Path) -> tuple[str, list[str]]:
    """``single`` (rows at the root) or ``presplit`` (rows in split groups), and the row groups."""
    if VERSION_ATTR in f.attrs:
        raise TrainsetError(f"{path}: written by trainset (attribute {VERSION_ATTR}), so it is a dataset already. "
                            "Fix: name it as a run's dataset (runs.<run>.dataset: the path) instead of under "
                            "datasets.<name>.files.hdf5")
    roots = sorted(k for k, v in f.items() if isinstance(v, h5py.Dataset))
    groups = sorted((k for k, v in f.items() if isinstance(v, h5py.Group)), key=_rank)
    if roots and groups:
        raise TrainsetError(f"{path}: holds both root datasets {roots} and groups {groups}. Fix: use one layout: "
                            "root data [+ labels] (single) or train/val/test groups each with data [+ labels]")
    if "data" in roots:
        return "single", ["/"]
    if groups and not roots:
        return "presplit", ["/" + g for g in groups]
    raise TrainsetError(f"{path}: neither of seed 001's layouts: no root 'data' and no split groups (found "
                        f"{roots or 'nothing'}). Fix: store data [N, T, D] and labels at the root, or in groups "
                        "train/val/test each holding data and labels")


def _rank(name: str) -> tuple[int, str]:
    return (SPLIT_ORDER.index(name) if name in SPLIT_ORDER else len(SPLIT_ORDER), name)


def _read_group(group: h5py.Group, path: Path) -> dict[str, np.ndarray]:
    """``data``, ``labels`` and ``index`` of one row group, read whole; anything else is refused."""
    where = group.name.rstrip("/") or ""
    allowed = _ROW_KEYS | ({"index"} if where else set())
    unknown = sorted(k for k in group if k not in allowed)
    if unknown:
        raise TrainsetError(f"{path}: {where or '/'} holds {unknown}, which a seed-001 dataset has no place for "
                            f"(only {sorted(allowed)} are read). Fix: remove them or write them to another file")
    if not isinstance(group.get("data"), h5py.Dataset):
        raise TrainsetError(f"{path}: {where}/data missing. Fix: every split group needs data [n, T, D]")
    out = {key: group[key][()] for key in allowed if isinstance(group.get(key), h5py.Dataset)}
    n = len(out["data"]) if out["data"].ndim else 0
    for key, values in out.items():
        if values.ndim == 0 or len(values) != n:
            raise TrainsetError(f"{path}: {where}/{key} has shape {list(values.shape)}, but {where}/data has {n} "
                                f"rows. Fix: one row per sample in every dataset of {where or '/'}")
    return out


def _labels(blocks: list[dict[str, np.ndarray]], path: Path) -> np.ndarray | None:
    """All groups' labels, or None when no group has any; some with and some without is refused."""
    has = [("labels" in b) for b in blocks]
    if not any(has):
        return None
    if not all(has):
        raise TrainsetError(f"{path}: some split groups have 'labels' and some not. Fix: store labels in every "
                            "group (or in none, for reconstruction)")
    return np.concatenate([b["labels"] for b in blocks])


def _samples(blocks: list[dict[str, np.ndarray]], groups: list[str], path: Path) -> np.ndarray:
    """Sample numbers: row order (groups one after another), or every group's integer ``index``."""
    has = [("index" in b) for b in blocks]
    if not any(has):
        return np.arange(sum(len(b["data"]) for b in blocks), dtype=np.int64)
    bad = [g for g, b, h in zip(groups, blocks, has)
           if not h or b["index"].ndim != 1 or b["index"].dtype.kind not in "iu"]
    if bad:
        raise TrainsetError(f"{path}: groups {bad} have no 1-d integer 'index' but others do. Fix: give every split "
                            "group an integer index (global sample numbers) or none (row order is the index)")
    return np.concatenate([b["index"] for b in blocks]).astype(np.int64)


def _task(task: str | None, data: np.ndarray, labels: np.ndarray | None, path: Path) -> str:
    """The dataset's ``task:`` (checked to be a sequence task), else the task the labels fit."""
    if task is not None:
        name = get_task(task).name
        if name not in TASKS:
            raise TrainsetError(f"datasets: task {task!r} is not a sequence task. Fix: use one of {', '.join(TASKS)}")
        return name
    if data.ndim != 3:
        raise TrainsetError(f"{path}: data has shape {list(data.shape)}, not [N, T, D]. Fix: store data [N, T, D] "
                            "(one feature: data[..., None])")
    try:
        return task_from_paradigm(None, None, None if labels is None else labels.shape[1:],
                                  None if labels is None else labels.dtype, data.shape[1:])
    except TrainsetError as error:
        raise TrainsetError(f"{path}: {error} (or set the dataset's task:)") from None
