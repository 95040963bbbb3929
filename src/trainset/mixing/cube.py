"""The table as a dense array of groups: values[group, week, place], NaN where unobserved.

Scattering integer codes into a preallocated array is ~10x faster than a pandas pivot (anchors
section 1), and every later step works on whole arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from trainset.seasons import SeasonAxis

GROUP_COLUMNS = ["datasetH1", "datasetH2", "fluseason", "sample"]


@dataclass
class GroupCube:
    """Dense values of every group of the table.

    Attributes
    ----------
    keys : DataFrame
        One row per group (:data:`GROUP_COLUMNS`), sorted; row ``g`` describes ``values[g]``.
        ``sample`` is int64, or text when the table's sample ids are labels (then sorted by
        their Unicode code points, as the validated table is).
    values : ndarray
        float64 [groups, weeks, places]; NaN where the table has no row.
    """

    keys: pd.DataFrame
    values: np.ndarray

    @property
    def labels(self) -> np.ndarray:
        """``H1/H2/season/sample`` of each group: the provenance names of origins."""
        k = self.keys
        return (
            k["datasetH1"].astype(str) + "/" + k["datasetH2"].astype(str) + "/"
            + k["fluseason"].astype(str) + "/" + k["sample"].astype(str)
        ).to_numpy(dtype=object)  # fmt: skip

    @property
    def has_place(self) -> np.ndarray:
        """bool [groups, places]: the group has at least one observed week of the place."""
        return ~np.isnan(self.values).all(axis=1)


def build_cube(table: pd.DataFrame, axis: SeasonAxis) -> GroupCube:
    """Scatter a validated table (only axis places, weeks 1..W) into a :class:`GroupCube`."""
    codes = np.zeros(len(table), dtype=np.int64)
    uniques = []
    for column in GROUP_COLUMNS:
        values = table[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            # a Parquet dictionary keeps first-appearance order; sort like plain strings
            values = values.cat.reorder_categories(sorted(values.cat.categories))
        column_codes, column_uniques = pd.factorize(values, sort=True)
        codes = codes * len(column_uniques) + column_codes
        uniques.append(column_uniques)
    group_codes, group = _dense_unique(codes, int(np.prod([len(u) for u in uniques], dtype=float)))
    keys = _decode_keys(group_codes, uniques)
    place = axis.place_index(table["location_code"])
    week = table["season_week"].to_numpy(dtype=np.int64) - 1
    values = np.full((len(keys), axis.weeks, len(axis.places)), np.nan)
    values[group, week, place] = table["value"].to_numpy(dtype=np.float64)
    return GroupCube(keys=keys, values=values)


def _dense_unique(codes: np.ndarray, n_possible: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(codes, return_inverse=True)`` in O(n) time and memory for small code spaces."""
    if n_possible > max(1_000_000, 4 * codes.size):
        return np.unique(codes, return_inverse=True)
    present = np.zeros(n_possible, dtype=bool)
    present[codes] = True
    position = np.cumsum(present, dtype=np.int64) - 1
    return np.flatnonzero(present), position[codes]


def _decode_keys(group_codes: np.ndarray, uniques: list) -> pd.DataFrame:
    """Undo the mixed-radix packing of the per-column codes."""
    columns = {}
    remaining = group_codes.copy()
    for name, values in reversed(list(zip(GROUP_COLUMNS, uniques))):
        remaining, code = np.divmod(remaining, len(values))
        columns[name] = np.asarray(values)[code]
    keys = pd.DataFrame({name: columns[name] for name in GROUP_COLUMNS})
    keys["datasetH1"] = keys["datasetH1"].astype(str)
    keys["datasetH2"] = keys["datasetH2"].astype(str)
    keys["fluseason"] = keys["fluseason"].astype(np.int64)
    numeric = pd.api.types.is_numeric_dtype(np.asarray(uniques[GROUP_COLUMNS.index("sample")]))
    keys["sample"] = keys["sample"].astype(np.int64) if numeric else keys["sample"].astype(str)
    return keys
