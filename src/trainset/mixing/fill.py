"""Filling places a frame has no data for, from other groups, in the frame's units.

``random`` fills a missing place from, in order: the same family in another season, the same
family and season with another sample, then another family; the source is drawn at random
within the first level that has a usable candidate, with the frame's own generator. A candidate
is usable when it observes the place, is in the frame's split (when the mix's splits keep
groups whole, see :mod:`trainset.mixing.splitting`) and, with ``fill_scaling: match_level``,
shares at least one observed (week, place) cell with the frame's group where it is not zero.

``match_level`` puts the copied curve into the frame's units before it is written. Families
differ by orders of magnitude (ILI percent near 1-8, hospital counts in the thousands), so a
curve copied as is dominates or vanishes in its new frame. The copy is multiplied by

    r = (frame group's sum over the cells both groups observe)
        / (source group's sum over the same cells)

Example: a fluview frame (ILI %) lacks Florida and draws it from a flusurv group (counts). Over
the cells both observe, fluview sums to 310.0 and flusurv to 62000.0, so r = 0.005, and a
Florida count of 1200 is written as 6.0: Florida keeps its shape and its share of the nation
from the source, at the frame's level. ``r`` is stored for every filled (frame, place).
``fill_scaling: none`` copies values as they are (the old behaviour; unsafe across families).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainset.errors import TrainsetError
from trainset.mixing.gaps import FILL_LEVELS, ZEROS

_CHUNK = 256


class PlaceFiller:
    """Chooses fill sources, levels and level ratios for the missing places of frames.

    Parameters
    ----------
    keys : DataFrame
        The groups of the table (datasetH1, fluseason, ...), one row per group.
    values : ndarray
        The table's groups as observed, float64 [groups, weeks, places], NaN where unobserved.
    group_split : ndarray, optional
        Split of every group; sources come only from the frame's split.
    match_level : bool
        Scale sources to the frame's level (see the module docstring).
    """

    def __init__(self, keys: pd.DataFrame, values: np.ndarray, group_split: np.ndarray | None = None,
                 match_level: bool = True):
        self.family = pd.factorize(keys["datasetH1"])[0]
        self.season = keys["fluseason"].to_numpy()
        self.values = values  # not copied: only cells both groups observe are ever summed
        self.observed = ~np.isnan(values)
        self.has_place = self.observed.any(axis=1)
        self.group_split = group_split
        self.match_level = match_level
        self._usable: dict[int, np.ndarray] = {}
        self._ratio: dict[tuple[int, int], float] = {}

    def prepare(self, groups: np.ndarray) -> None:
        """Find the usable sources of every group in ``groups`` at once (whole-array products)."""
        todo = np.array([g for g in np.unique(groups) if int(g) not in self._usable], dtype=np.int64)
        n = self.values.shape[0]
        if todo.size and self.match_level:
            positive = (self.values > 0).reshape(n, -1).astype(np.float32)  # NaN > 0 is False
        for start in range(0, todo.size, _CHUNK):
            rows = todo[start:start + _CHUNK]
            # cells both observe where the source is not zero (r is then finite); counts of 0/1
            # products are exact in float32 whatever the summation order or thread count
            if self.match_level:
                shared = self.observed[rows].reshape(rows.size, -1).astype(np.float32) @ positive.T
            else:
                shared = np.ones((rows.size, n))
            for row, group in zip(shared, rows):
                usable = row > 0
                usable[group] = False
                if self.group_split is not None:
                    usable &= self.group_split == self.group_split[group]
                self._usable[int(group)] = usable

    def usable(self, group: int) -> np.ndarray:
        """bool [groups]: the sources a frame of ``group`` may draw from (any place)."""
        if group not in self._usable:
            self.prepare(np.array([group]))
        return self._usable[group]

    def unfillable(self, group: int, places: np.ndarray) -> np.ndarray:
        """The places of ``places`` that no usable source of ``group`` observes."""
        return places[~self.has_place[self.usable(group)][:, places].any(axis=0)]

    def levels(self, group: int) -> list[np.ndarray]:
        """bool [groups] masks of the three fill levels for a frame of ``group``."""
        same_family = self.family == self.family[group]
        same_season = self.season == self.season[group]
        usable = self.usable(group)
        return [usable & same_family & ~same_season, usable & same_family & same_season, usable & ~same_family]

    def choose(self, group: int, places: np.ndarray,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Source group, fill level and ratio r for each missing place (-1, ZEROS, 1 if none)."""
        levels = self.levels(group)
        sources = np.full(places.size, -1, dtype=np.int64)
        kinds = np.full(places.size, ZEROS, dtype=np.int8)
        ratios = np.ones(places.size)
        for i, place in enumerate(places):
            for kind, level in zip(FILL_LEVELS, levels):
                pool = np.flatnonzero(level & self.has_place[:, place])
                if pool.size:
                    sources[i] = pool[rng.integers(pool.size)]
                    kinds[i] = kind
                    ratios[i] = self.ratio(group, int(sources[i]))
                    break
        return sources, kinds, ratios

    def ratio(self, group: int, source: int) -> float:
        """r of the module docstring (1 without ``match_level``)."""
        if not self.match_level:
            return 1.0
        key = (group, source)
        if key not in self._ratio:
            shared = self.observed[group] & self.observed[source]
            self._ratio[key] = float(self.values[group][shared].sum() / self.values[source][shared].sum())
        return self._ratio[key]


def check_fillable(filler: PlaceFiller, groups: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """bool [groups]: the groups of ``groups`` (planned, with places missing) that cannot be filled.

    Whether a source exists depends on the group alone (its family, season and split), never
    on a frame's draws, so this is decided before any frame is made.
    """
    bad = np.zeros(groups.size, dtype=bool)
    filler.prepare(groups)
    for i, group in enumerate(groups):
        bad[i] = filler.unfillable(int(group), np.flatnonzero(missing[i])).size > 0
    return bad


def describe_unfillable(filler: PlaceFiller, groups: np.ndarray, missing: np.ndarray, labels: np.ndarray,
                        places: tuple[str, ...], mix: str, nothing_left: bool = False) -> str:
    """A refusal naming each group and the places no usable source has (``no_source: error``, or
    ``skip`` when it would drop every frame)."""
    lines = []
    for group, lacking in zip(groups, missing):
        codes = [places[p] for p in filler.unfillable(int(group), np.flatnonzero(lacking))]
        lines.append(f"  {labels[group]}: {codes}")
    shown = "\n".join(lines[:20]) + (f"\n  ... and {len(lines) - 20} more groups" if len(lines) > 20 else "")
    outcome = "no_source: skip would leave no frame. " if nothing_left else ""
    return (f"mixes.{mix}: {len(lines)} group(s) lack places that no usable source has (a source must observe "
            f"the place, be in the frame's split and share observed cells with the frame's group):\n{shown}\n"
            f"{outcome}Fix: set no_source: zeros (fill them with zeros) or skip (drop those frames), or "
            "fill_missing_locations: skip, or add a table family that observes those places")


def refuse_incomplete(groups: np.ndarray, missing: np.ndarray, labels: np.ndarray, places: tuple[str, ...],
                      mix: str) -> TrainsetError:
    """The refusal of ``fill_missing_locations: error``: every incomplete group and its places."""
    lines = [f"  {labels[g]}: {[places[p] for p in np.flatnonzero(m)]}" for g, m in zip(groups, missing)]
    shown = "\n".join(lines[:20]) + (f"\n  ... and {len(lines) - 20} more groups" if len(lines) > 20 else "")
    return TrainsetError(f"mixes.{mix}: fill_missing_locations is error and {len(lines)} group(s) lack places:\n"
                         f"{shown}\nFix: complete those groups in the table, or choose random, zeros, none or skip")
