"""The season axis: which week of which season a date falls in, and which places exist.

A season starts on a fixed month-day (``08-01`` for US flu) and is cut into 7-day bins numbered
from 1; a date before the start belongs to the previous season. Places are taken from the
bundled location table in ascending FIPS order; ``US`` and territories can be removed, as the
training arrays hold the 50 states and DC only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from trainset.errors import TrainsetError
from trainset.locations import load_locations

SEASON_AXIS = {"start": "08-01", "weeks": 53, "places": "flusight", "remove_us": True, "remove_territories": True}
"""The ``season_axis`` config section's defaults (the schema's copy is tested against these)."""
PLACE_SETS = ("flusight",)
"""Place sets ``season_axis.places`` may name."""


@dataclass(frozen=True)
class SeasonAxis:
    """Weeks and places of the dense frame grid.

    Parameters
    ----------
    start : str
        Month-day ``MM-DD`` on which every season starts.
    weeks : int
        Number of 7-day bins per season (53 covers every year).
    places : tuple of str
        Location codes on the place axis, in axis order.
    """

    start: str = SEASON_AXIS["start"]
    weeks: int = SEASON_AXIS["weeks"]
    places: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_config(cls, cfg: dict[str, Any] | None = None) -> "SeasonAxis":
        """Build the axis from the ``season_axis`` config section."""
        cfg = {**SEASON_AXIS, **(cfg or {})}
        if cfg["places"] not in PLACE_SETS:
            raise TrainsetError(
                f"season_axis.places: unknown place set {cfg['places']!r}; use one of {list(PLACE_SETS)}"
            )
        table = load_locations()
        keep = table["kind"].eq("state")
        if not cfg["remove_us"]:
            keep |= table["kind"].eq("national")
        if not cfg["remove_territories"]:
            keep |= table["kind"].eq("territory")
        codes = sorted(table.loc[keep, "location_code"], key=_fips_order)
        start = str(cfg["start"])
        _check_start(start)
        return cls(start=start, weeks=int(cfg["weeks"]), places=tuple(codes))

    @property
    def week_numbers(self) -> np.ndarray:
        """Season weeks 1..weeks."""
        return np.arange(1, self.weeks + 1)

    @property
    def states_mask(self) -> np.ndarray:
        """Boolean mask over the place axis: True for the 50 states and DC (national-sum places)."""
        kind = load_locations().set_index("location_code")["kind"]
        return np.array([kind[code] == "state" for code in self.places])

    def place_index(self, codes: pd.Series | np.ndarray) -> np.ndarray:
        """Position of each code on the place axis, -1 where the code is not on the axis."""
        lookup = pd.Index(self.places)
        if isinstance(getattr(codes, "dtype", None), pd.CategoricalDtype):
            # Look up each category once, then index by the integer codes (no string hashing).
            by_category = np.append(lookup.get_indexer(codes.cat.categories), -1)
            return by_category[codes.cat.codes.to_numpy()]
        return lookup.get_indexer(pd.Index(np.asarray(codes, dtype=object)))

    def season_and_week(self, dates: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Season (start year) and 1-based season week of each date, vectorised.

        ``week = floor(days since the season start / 7) + 1``; a date before this year's start
        belongs to the previous season.
        """
        stamps = pd.DatetimeIndex(pd.to_datetime(np.asarray(dates)))
        month, day = (int(part) for part in self.start.split("-"))
        year = stamps.year.to_numpy()
        before = (stamps.month.to_numpy() < month) | (
            (stamps.month.to_numpy() == month) & (stamps.day.to_numpy() < day)
        )
        season = year - before.astype(int)
        starts = pd.to_datetime(
            pd.DataFrame({"year": season, "month": month, "day": day})
        ).to_numpy()
        days = (stamps.to_numpy() - starts) // np.timedelta64(1, "D")
        return season.astype(np.int64), (days // 7 + 1).astype(np.int64)

    def week_end(self, season: int, week: int, weekday: int = 5) -> pd.Timestamp:
        """A date inside ``week`` of ``season`` falling on ``weekday`` (Mon=0 .. Sun=6).

        Week 53 is a one- or two-day stub; when it has no such weekday, the season's last day
        is returned, so the date never falls into the next season.
        """
        month, day = (int(part) for part in self.start.split("-"))
        first = pd.Timestamp(year=season, month=month, day=day) + pd.Timedelta(days=7 * (week - 1))
        last_day = pd.Timestamp(year=season + 1, month=month, day=day) - pd.Timedelta(days=1)
        return min(first + pd.Timedelta(days=(weekday - first.weekday()) % 7), last_day)


def _check_start(start: str) -> None:
    """A month-day every year has (so not 02-29)."""
    try:
        month, day = (int(part) for part in start.split("-"))
        pd.Timestamp(year=2001, month=month, day=day)
    except ValueError as error:
        raise TrainsetError(f"season_axis.start {start!r} is not a month-day every year has ({error}). "
                            "Fix: use MM-DD such as 08-01") from error


def _fips_order(code: str) -> tuple[int, str]:
    """Numeric FIPS codes ascending; non-numeric codes such as ``US`` last."""
    return (0, code) if code.isdigit() else (1, code)
