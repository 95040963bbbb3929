"""Past seasons of ground truth for the US grid (the old guide's ``past_ground_truth=True``).

The ground truth is surveillance data: one observed series per season of one family
(``datasetH1``, by default ``fluview``) of the mix's validated table
(``results/tables/<table>.parquet``, the table the mix was built from). The ``count`` most
recent seasons of that family are laid on the plotted array's season_week x place grid, NaN
where the table has no value (drawn as gaps, never as zeros). Asking for more seasons than the
family has, a family the table lacks, or a family with several series per season (a
simulation, not an observation) is an error naming the ``plots.*`` key to fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from trainset.errors import TrainsetError

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr
# numpy, pandas, xarray and the table reader are imported where they are used: the workflow
# imports overlay_family when Snakemake parses it, on every run (a no-op rerun too).

DEFAULT_PAST_SEASONS = 0
"""``plots.past_seasons`` default: no overlay (the schema's copy is tested against it)."""
DEFAULT_PAST_FAMILY = "fluview"
"""``plots.past_family`` default: the ILI surveillance family of the flu tables."""
_COLUMNS = ["datasetH1", "datasetH2", "fluseason", "sample", "location_code", "season_week", "value"]


def overlay_family(plots: Mapping) -> str:
    """The family of the past-season overlay from the ``plots`` config, checked at start-up.

    ``past_family`` only means something with an overlay, so setting it while
    ``past_seasons`` is 0 (the default) is refused rather than accepted and ignored; the
    schema gives ``past_family`` no default for this reason, and this returns
    :data:`DEFAULT_PAST_FAMILY` when it is absent.
    """
    family = plots.get("past_family")
    if family is not None and not plots.get("past_seasons", DEFAULT_PAST_SEASONS):
        raise TrainsetError(
            f"plots.past_family: {family!r} is set but plots.past_seasons is 0, so no past seasons are drawn. "
            "Fix: set plots.past_seasons to the number of seasons to overlay, or remove plots.past_family")
    return DEFAULT_PAST_FAMILY if family is None else family


def past_seasons(table_path: str | os.PathLike, count: int, weeks: Sequence[int], places: Sequence[str],
                 family: str = DEFAULT_PAST_FAMILY) -> xr.DataArray:
    """The ``count`` most recent seasons of ``family`` as ``(sample, season_week, place)`` floats.

    ``sample`` holds one season each (oldest first, labelled by the ``fluseason`` coordinate);
    ``weeks``/``places`` are the plotted array's axes. Table rows on other places (e.g. 'US')
    or weeks are outside the plot and not drawn.

    Raises
    ------
    TrainsetError
        ``plots.past_seasons`` below 1 or above the family's season count; ``plots.past_family``
        absent from the table or not one series per season.
    """
    import numpy as np
    import pandas as pd
    import xarray as xr

    from trainset.table.io import read_table

    if int(count) < 1:
        raise TrainsetError(f"plots.past_seasons: must be >= 1 to draw past seasons, got {count}")
    rows = _family_rows(read_table(table_path, columns=_COLUMNS), family, table_path)
    seasons = np.sort(rows["fluseason"].unique())
    if count > len(seasons):
        raise TrainsetError(
            f"plots.past_seasons: {count} past seasons asked, but family {family!r} of {table_path} has "
            f"{len(seasons)} ({', '.join(map(str, seasons))}). Fix: set plots.past_seasons to at most {len(seasons)}")
    chosen = seasons[-int(count):]
    rows = rows[rows["fluseason"].isin(chosen)]
    values = np.full((len(chosen), len(weeks), len(places)), np.nan)
    season = np.searchsorted(chosen, rows["fluseason"].to_numpy())
    week = pd.Index(np.asarray(weeks, dtype=np.int64)).get_indexer(rows["season_week"].to_numpy(dtype=np.int64))
    place = pd.Index([str(p) for p in places]).get_indexer(rows["location_code"].astype(str).to_numpy())
    keep = (week >= 0) & (place >= 0)
    values[season[keep], week[keep], place[keep]] = rows["value"].to_numpy(dtype=float)[keep]
    return xr.DataArray(values, dims=("sample", "season_week", "place"),
                        coords={"season_week": np.asarray(weeks), "place": [str(p) for p in places],
                                "fluseason": ("sample", chosen.astype(np.int64))},
                        attrs={"family": family})


def _family_rows(table: pd.DataFrame, family: str, path: str | os.PathLike) -> pd.DataFrame:
    """The family's rows, checked to be one observed series per season."""
    rows = table[table["datasetH1"].astype(str) == family]
    if rows.empty:
        families = sorted(table["datasetH1"].astype(str).unique())
        raise TrainsetError(f"plots.past_family: no family {family!r} in {path}. Fix: use one of {families}")
    series = rows.groupby("fluseason", observed=True)[["datasetH2", "sample"]].nunique().max(axis=1)
    several = series[series > 1]
    if len(several):
        raise TrainsetError(
            f"plots.past_family: family {family!r} of {path} has several series in season {several.index[0]}: "
            f"past seasons are ground truth, one observed series per season. "
            "Fix: choose a surveillance family (e.g. fluview)")
    return rows
