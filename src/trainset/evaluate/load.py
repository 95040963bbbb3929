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
    return load_splits(dataset_path, [split], worlds)[split]


def load_splits(dataset_path: str | os.PathLike, splits: Sequence[str],
                worlds: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """:func:`load_split` of several splits (split -> its dict), from one pass over the data.

    Rows are read through the format's reader, only those of the named splits and each once:
    the stored arrays as they are, without building the xarray collection, so an evaluation
    job reads the dataset once, not once per split (the flights WebDataset: ~0.35 s a read),
    and imports no xarray (nor pandas, where nothing else does).
    """
    from trainset.io.base import guess_format
    from trainset.open import dataset_splits

    reader = guess_format(dataset_path).reader(dataset_path)
    stored = dataset_splits(dataset_path, reader.splits, len(reader))
    parts, firsts = reader.parts, reader.offsets()
    kept = [number for number, part in enumerate(parts) if worlds is None or part.name in worlds]
    chosen = {split: _in_parts(np.sort(stored[split]), firsts, parts, kept) for split in splits}
    rows = np.unique(np.concatenate([np.zeros(0, np.int64), *chosen.values()]))
    read = _read_parts(reader, rows, kept)
    return {split: _split_arrays(indices, read, firsts, parts, kept) for split, indices in chosen.items()}


def _in_parts(indices: np.ndarray, firsts: np.ndarray, parts: list, kept: list[int]) -> np.ndarray:
    """The global ``indices`` that fall in the parts numbered ``kept`` (order kept)."""
    if len(kept) == len(parts):
        return indices
    inside = np.zeros(indices.shape, dtype=bool)
    for number in kept:
        inside |= (indices >= firsts[number]) & (indices < firsts[number] + parts[number].size)
    return indices[inside]


def _read_parts(reader: Any, rows: np.ndarray, kept: list[int]) -> dict[int, tuple[np.ndarray, dict]]:
    """Part number -> (its rows read, as local indices; variable -> those rows), in stored order."""
    blocks: dict[int, list] = {number: [] for number in kept}
    for block in reader.iter_blocks(rows):
        blocks[block.part].append(block)
    read = {}
    for number in kept:
        variables = reader.parts[number].variables
        local = np.concatenate([np.zeros(0, np.int64), *(b.local for b in blocks[number])])
        arrays = {var: np.concatenate([np.empty((0, *info.shape), info.dtype),
                                       *(b.arrays[var] for b in blocks[number])])
                  for var, info in variables.items()}
        read[number] = (local, arrays)
    return read


def _split_arrays(indices: np.ndarray, read: dict, firsts: np.ndarray, parts: list, kept: list[int]) -> dict[str, Any]:
    """One split's dict (see :func:`load_split`) from the rows :func:`_read_parts` read."""
    out: dict[str, Any] = {"part": [], "index": indices}
    for number in kept:
        local, arrays = read[number]
        name, first = parts[number].name, firsts[number]
        mine = indices[(indices >= first) & (indices < first + parts[number].size)] - first
        at = np.searchsorted(local, mine)
        for var, values in arrays.items():
            out.setdefault(var, {})[name] = values[at]
        out["part"] += [name] * int(mine.size)
    single = len(parts) == 1  # a store of one part (a worlds subset keeps its part names)
    return {k: (v[parts[0].name] if single and isinstance(v, dict) else v) for k, v in out.items()}  # index stays flat


__all__ = ["load_split", "load_splits"]
