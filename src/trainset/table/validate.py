"""Validation of the combined long table, before anything is mixed.

The old code let bad rows through and failed (or silently dropped data) much later. Here every
problem is found up front, vectorised over the whole table, and reported together: each names
the column, how many rows are affected, a few example rows, and the fix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trainset.errors import TrainsetError
from trainset.locations import load_locations
from trainset.seasons import SeasonAxis

logger = logging.getLogger(__name__)

KEY_COLUMNS = ["datasetH1", "datasetH2", "fluseason", "sample", "location_code", "season_week"]
"""One row per combination of these columns."""

TABLE_COLUMNS = [
    "datasetH1", "datasetH2", "sample", "fluseason", "location_code",
    "season_week", "value", "week_enddate",
]  # fmt: skip
"""Columns of the validated table, in this order."""

_STRING_COLUMNS = ["datasetH1", "datasetH2", "location_code"]
_INTEGER_COLUMNS = ["sample", "fluseason", "season_week"]
_EXAMPLES = 3


@dataclass
class TableReport:
    """What validation did to the table; stored as the table's summary JSON."""

    rows_in: int = 0
    rows_out: int = 0
    dropped_missing_value: int = 0
    dropped_places: dict[str, int] = field(default_factory=dict)
    derived_columns: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-able form."""
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "dropped_missing_value": self.dropped_missing_value,
            "dropped_places": dict(sorted(self.dropped_places.items())),
            "derived_columns": self.derived_columns,
        }


def validate_table(
    table: pd.DataFrame,
    axis: SeasonAxis,
    source: str = "table",
    drop_unknown_places: bool = False,
) -> tuple[pd.DataFrame, TableReport]:
    """Check a combined long table and return it in canonical form with a report.

    Parameters
    ----------
    table : DataFrame
        Raw rows with the :data:`TABLE_COLUMNS` (``season_week`` and ``fluseason`` may be
        absent: they are then derived from ``week_enddate`` on ``axis``).
    axis : SeasonAxis
        Weeks and places of the frame grid.
    source : str
        Name of the file or generator, used in every message.
    drop_unknown_places : bool
        Drop rows whose ``location_code`` is not a known place instead of failing. Places the
        axis removes on purpose (``US``, territories) are always dropped and counted.

    Returns
    -------
    (DataFrame, TableReport)
        The table with canonical dtypes, sorted by :data:`KEY_COLUMNS`, and what was done.

    Raises
    ------
    TrainsetError
        Listing every problem found, each with its column, row count, examples and fix.
    """
    report = TableReport(rows_in=len(table))
    table = _derive_season_columns(table, axis, source, report)
    problems = _check_columns(table, source)
    if problems:
        raise TrainsetError(_format(source, problems))
    table = _coerce(table)
    problems = _check_keys_and_values(table, axis)
    table, place_problems = _drop_places(table, axis, drop_unknown_places, report)
    problems += place_problems
    if not problems:
        problems += _check_duplicates(table)
    if problems:
        raise TrainsetError(_format(source, problems))
    missing = table["value"].isna().to_numpy()
    report.dropped_missing_value = int(missing.sum())
    table = table.loc[~missing]
    table = _sort(table)
    report.rows_out = len(table)
    logger.info("%s: %d rows in, %d rows out", source, report.rows_in, report.rows_out)
    return table, report


def _derive_season_columns(
    table: pd.DataFrame, axis: SeasonAxis, source: str, report: TableReport
) -> pd.DataFrame:
    """Fill in ``fluseason``/``season_week`` from ``week_enddate`` when the table lacks them."""
    absent = [c for c in ("fluseason", "season_week") if c not in table.columns]
    if not absent or "week_enddate" not in table.columns:
        return table
    dates = pd.to_datetime(table["week_enddate"], errors="coerce")
    if dates.isna().any():
        return table  # reported by the type check
    season, week = axis.season_and_week(dates)
    table = table.copy()
    if "fluseason" in absent:
        table["fluseason"] = season
    if "season_week" in absent:
        table["season_week"] = week
    report.derived_columns = absent
    logger.info("%s: derived %s from week_enddate", source, absent)
    return table


def _check_columns(table: pd.DataFrame, source: str) -> list[str]:
    """Missing columns and columns of the wrong type."""
    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if missing:
        return [
            f"missing column(s) {missing}; the table has {list(table.columns)}. Fix: add them "
            f"(fluseason and season_week may be omitted and are then derived from week_enddate)"
        ]
    problems = []
    for column in _STRING_COLUMNS:
        if pd.api.types.is_numeric_dtype(table[column]):
            problems.append(
                f"column '{column}' is {table[column].dtype}, expected text. Fix: store it as "
                f"strings (location codes keep their leading zero, e.g. '06')"
            )
    for column in _INTEGER_COLUMNS:
        if not pd.api.types.is_numeric_dtype(table[column]):
            problems.append(f"column '{column}' is {table[column].dtype}, expected integers. Fix: store whole numbers")
        elif _has_fraction(table[column]):
            problems.append(f"column '{column}' has non-integer values. Fix: store whole numbers")
    if not pd.api.types.is_numeric_dtype(table["value"]):
        problems.append(f"column 'value' is {table['value'].dtype}, expected numbers. Fix: store numeric values")
    dates = pd.to_datetime(table["week_enddate"], errors="coerce")
    bad_dates = dates.isna() & table["week_enddate"].notna()
    if bad_dates.any():
        problems.append(
            _rows(table, bad_dates, "week_enddate", "are not dates", "write dates as YYYY-MM-DD")
        )
    return problems


def _has_fraction(column: pd.Series) -> bool:
    values = column.to_numpy(dtype=float, na_value=np.nan)
    finite = values[np.isfinite(values)]
    return bool(np.any(finite != np.round(finite)))


def _coerce(table: pd.DataFrame) -> pd.DataFrame:
    """Canonical dtypes: strings, nullable-free int64 where possible, float64, datetimes."""
    out = pd.DataFrame(index=table.index)
    for column in _STRING_COLUMNS:
        out[column] = table[column].astype("string")
    for column in _INTEGER_COLUMNS:
        out[column] = table[column].astype("Int64")
    out["value"] = table["value"].astype("float64")
    out["week_enddate"] = pd.to_datetime(table["week_enddate"]).astype("datetime64[ns]")
    return out[TABLE_COLUMNS]


def _check_keys_and_values(table: pd.DataFrame, axis: SeasonAxis) -> list[str]:
    """NaN keys, negative values, weeks off the axis, weeks disagreeing with their dates."""
    problems = []
    for column in [*KEY_COLUMNS, "week_enddate"]:
        nan = table[column].isna()
        if nan.any():
            problems.append(_rows(table, nan, column, "are empty (NaN)", "fill in or remove those rows"))
    values = table["value"].to_numpy(dtype=float, na_value=np.nan)
    infinite = pd.Series(np.isinf(values), index=table.index)
    if infinite.any():
        problems.append(_rows(table, infinite, "value", "are infinite", "store finite numbers (NaN marks a missing week)"))
    negative = table["value"].lt(0).fillna(False)
    if negative.any():
        problems.append(_rows(table, negative, "value", "are negative", "counts and rates must be >= 0"))
    week = table["season_week"]
    off = (week.lt(1) | week.gt(axis.weeks)).fillna(False)
    if off.any():
        problems.append(
            _rows(table, off, "season_week", f"are outside 1..{axis.weeks}", "check the week numbering")
        )
    complete = table[["fluseason", "season_week", "week_enddate"]].notna().all(axis=1)
    if complete.any():
        season, week_from_date = axis.season_and_week(table.loc[complete, "week_enddate"])
        disagree = pd.Series(False, index=table.index)
        disagree[complete] = (season != table.loc[complete, "fluseason"].to_numpy()) | (
            week_from_date != table.loc[complete, "season_week"].to_numpy()
        )
        if disagree.any():
            problems.append(
                _rows(
                    table, disagree, "season_week",
                    f"disagree with week_enddate on the season axis starting {axis.start}",
                    "correct them, or drop the fluseason and season_week columns to derive them",
                )  # fmt: skip
            )
    return problems


def _drop_places(
    table: pd.DataFrame, axis: SeasonAxis, drop_unknown: bool, report: TableReport
) -> tuple[pd.DataFrame, list[str]]:
    """Drop places the axis leaves out on purpose; unknown codes fail unless told to drop."""
    codes = table["location_code"]
    on_axis = pd.Series(axis.place_index(codes.to_numpy(dtype=object, na_value=None)) >= 0, index=table.index)
    known = codes.isin(load_locations()["location_code"]).fillna(False)
    unknown = ~on_axis & ~known & codes.notna()
    problems = []
    if unknown.any() and not drop_unknown:
        problems.append(
            _rows(
                table, unknown, "location_code", "are not known places",
                "use FIPS codes like '06', or set drop_unknown_places: true for this table",
            )  # fmt: skip
        )
    drop = ~on_axis & codes.notna()
    if drop.any():
        counts = codes[drop].value_counts()
        report.dropped_places = {str(k): int(v) for k, v in counts.items()}
        logger.info("dropped %d rows of places not on the axis: %s", int(drop.sum()), report.dropped_places)
    return table.loc[~drop], problems


def _check_duplicates(table: pd.DataFrame) -> list[str]:
    duplicated = table.duplicated(KEY_COLUMNS, keep=False)
    if not duplicated.any():
        return []
    return [
        _rows(
            table, duplicated, "(datasetH1, datasetH2, fluseason, sample, location_code, season_week)",
            "share a key with another row", "keep one row per key (aggregate or deduplicate upstream)",
        )  # fmt: skip
    ]


def _sort(table: pd.DataFrame) -> pd.DataFrame:
    """Sort by the key columns so the output never depends on the input's row order."""
    table = table.astype({c: "int64" for c in _INTEGER_COLUMNS})
    return table.sort_values(KEY_COLUMNS, kind="stable", ignore_index=True)


def _rows(table: pd.DataFrame, mask: pd.Series, column: str, what: str, fix: str) -> str:
    count = int(mask.sum())
    examples = table.loc[mask].head(_EXAMPLES).to_string(max_colwidth=24)
    return f"column '{column}': {count} row(s) {what}. Fix: {fix}. Examples:\n{examples}"


def _format(source: str, problems: list[str]) -> str:
    body = "\n\n".join(f"[{i}] {p}" for i, p in enumerate(problems, start=1))
    return f"{source}: {len(problems)} problem(s) in the combined table\n\n{body}"
