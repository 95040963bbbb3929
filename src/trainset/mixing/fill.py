"""Filling places a frame has no data for, from other groups, with exact provenance.

``random`` fills a missing place from, in order: the same family in another season, the same
family and season with another sample, then another family; the source is drawn at random
within the first level that has the place, with the frame's own generator. ``zeros`` writes
zeros and ``none`` leaves NaN (for users who mask instead).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainset.mixing.gaps import FILL_FAMILY, FILL_SAMPLE, FILL_SEASON, ZEROS

FILL_POLICIES = ("random", "zeros", "none")
_LEVELS = (FILL_SEASON, FILL_SAMPLE, FILL_FAMILY)


class PlaceFiller:
    """Chooses fill sources for missing places of frames built from a set of groups."""

    def __init__(self, keys: pd.DataFrame, has_place: np.ndarray):
        self.family = pd.factorize(keys["datasetH1"])[0]
        self.season = keys["fluseason"].to_numpy()
        self.has_place = has_place

    def candidates(self, group: int) -> list[np.ndarray]:
        """bool [groups] masks of the three fill levels for a frame of ``group``."""
        same_family = self.family == self.family[group]
        same_season = self.season == self.season[group]
        others = np.arange(self.family.size) != group
        return [same_family & ~same_season, same_family & same_season & others, ~same_family]

    def choose(self, group: int, places: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Source group and fill level for each missing place (-1 and ZEROS if none has it)."""
        levels = self.candidates(group)
        sources = np.full(places.size, -1, dtype=np.int64)
        kinds = np.full(places.size, ZEROS, dtype=np.int8)
        for i, place in enumerate(places):
            for kind, level in zip(_LEVELS, levels):
                pool = np.flatnonzero(level & self.has_place[:, place])
                if pool.size:
                    sources[i] = pool[rng.integers(pool.size)]
                    kinds[i] = kind
                    break
        return sources, kinds
