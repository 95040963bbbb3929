"""One split of a stored dataset in memory, part by part: what baselines are fitted on and scored against.

Its own module so that the stage (which orchestrates) and the task handlers (which score) both
use it without importing each other.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np


def load_split(dataset_path: str | os.PathLike, split: str, worlds: Sequence[str] | None = None) -> dict[str, Any]:
    """Every variable of one split in memory, in stored order.

    Parameters
    ----------
    dataset_path : path
        A stored dataset of any format.
    split : str
        The split's name (its indices are sorted, so rows follow the stored order).
    worlds : list of str, optional
        Only the rows of these parts (a run's ``data.worlds``), as training and prediction read them.

    Returns
    -------
    dict
        Variable -> array, ``index`` (the split's sorted global indices) and ``part`` (the
        part name of each row). With several parts each variable is a dict part -> array;
        ``index`` stays flat.
    """
    from trainset.io.base import guess_format
    from trainset.open import dataset_splits

    collection, stored = guess_format(dataset_path).load(dataset_path)
    indices = np.sort(dataset_splits(dataset_path, stored, len(collection))[split])
    part, local = collection.locate(indices)
    names = list(collection.parts)
    if worlds is not None:
        keep = np.isin(np.asarray(names)[part], list(worlds))
        indices, part, local = indices[keep], part[keep], local[keep]
    out: dict[str, Any] = {"part": [], "index": indices}
    for number, name in enumerate(names):
        if worlds is not None and name not in worlds:
            continue
        rows = local[part == number]
        for var in collection.parts[name].data_vars:
            out.setdefault(var, {})[name] = collection.parts[name][var].values[rows]
        out["part"] += [name] * int(rows.size)
    single = len(names) == 1  # a store of one part (a worlds subset keeps its part names)
    return {k: (v[names[0]] if single and isinstance(v, dict) else v) for k, v in out.items()}  # index stays flat


__all__ = ["load_split"]
