"""The bundled place table: FIPS codes, names, abbreviations, populations and tile positions.

``kind`` is ``state`` for the 50 states and DC, ``national`` for ``US`` and ``territory`` for
the five territories. ``tile_row``/``tile_col`` place each state on the 8 x 11 US tile grid used
by the visual check.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

import pandas as pd


@lru_cache(maxsize=1)
def _load() -> pd.DataFrame:
    with files("trainset.data").joinpath("locations.csv").open() as handle:
        table = pd.read_csv(handle, dtype={"location_code": str, "abbreviation": str})
    table["tile_row"] = table["tile_row"].astype("Int64")
    table["tile_col"] = table["tile_col"].astype("Int64")
    return table


def load_locations() -> pd.DataFrame:
    """Return a copy of the bundled place table, one row per place code."""
    return _load().copy()
