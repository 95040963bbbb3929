"""Cell checks of the combined table: its dates, and values pandas would otherwise take silently.

:func:`~trainset.table.validate.validate_table` runs these before it converts anything, and
reports their problems with its own, each naming the column, the row count and example rows.

- **Dates** are read with the table's ``date_format`` or as ISO dates, never guessed. A date
  with a time zone or UTC offset (``2015-08-01T00:00:00+02:00``, ``...Z``, a tz-aware Parquet
  column) is refused, not converted: which calendar day it names depends on the zone one
  picks (its own, or UTC), and a wrong pick moves data to the neighbouring week.
- **Booleans** in ``value``, ``fluseason`` or ``season_week`` would be stored as 1/0.
- **NUL bytes** in text columns are cut off by NetCDF/HDF5 strings, so two labels that differ
  after a NUL would merge.
- **Values beyond float32** (|x| > 3.4e38) are finite here but infinite in the datasets, which
  store float32.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
import pandas as pd

from trainset.errors import TrainsetError

EXAMPLES = 3
"""Example rows shown with each problem."""
DATE_FIX_EXAMPLE = "e.g. '%m/%d/%Y' for 12/03/2022"
FLOAT32_MAX = float(np.finfo(np.float32).max)
_TEXT_COLUMNS = ("datasetH1", "datasetH2", "location_code", "sample", "week_enddate")
_NUMBER_COLUMNS = ("value", "fluseason", "season_week")
_ZONE = r"\d[T ]?\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?|UTC|GMT)\s*$"
"""Text ending in a time with a zone or offset: ``...T00:00:00+02:00``, ``... 00:00Z``."""
_ZONED_FIX = "write plain dates, YYYY-MM-DD: the date in the data's own time zone"


def rows_problem(table: pd.DataFrame, mask: pd.Series, column: str, what: str, fix: str) -> str:
    """One problem: the column, how many rows ``what``, the fix, and a few example rows."""
    count = int(mask.sum())
    examples = table.loc[mask].head(EXAMPLES).to_string(max_colwidth=24)
    return f"column '{column}': {count} row(s) {what}. Fix: {fix}. Examples:\n{examples}"


def refuse_empty(source: str, rows_in: int, missing: int = 0, dropped: int = 0) -> None:
    """A table with no row left to mix is refused, never written with 0 rows."""
    if rows_in == 0:
        raise TrainsetError(f"{source}: the table has no data rows (a header or schema only). "
                            "Fix: give the file its rows, or remove the table")
    if rows_in == missing + dropped:
        raise TrainsetError(f"{source}: no row left of {rows_in}: {missing} have an empty (NaN) value and "
                            f"{dropped} are on places off the season axis. Fix: give the rows their values "
                            "(NaN only marks a missing week)")


def cell_problems(table: pd.DataFrame) -> list[str]:
    """Booleans where numbers belong, NUL bytes in text, values beyond float32's range."""
    problems = []
    for column in _NUMBER_COLUMNS:
        if column in table.columns and pd.api.types.is_bool_dtype(table[column]):
            problems.append(f"column '{column}' holds true/false values, which would be stored as 1/0. "
                            "Fix: store numbers")
    for column in _TEXT_COLUMNS:
        if column in table.columns and _is_text(table[column]):
            nul = _contains(table[column], "\x00")
            if nul.any():
                shown = table.loc[nul].astype(str).apply(lambda text: text.str.replace("\x00", "\\0"))
                problems.append(rows_problem(shown, nul.loc[nul], column, "hold NUL bytes (\\0), which "
                                             "NetCDF and HDF5 labels cut off", "remove the NUL characters"))
    value = table.get("value")
    if value is not None and pd.api.types.is_numeric_dtype(value) and not pd.api.types.is_bool_dtype(value):
        numbers = np.abs(value.to_numpy(dtype=float, na_value=np.nan))
        huge = pd.Series(np.isfinite(numbers) & (numbers > FLOAT32_MAX), index=table.index)
        if huge.any():
            problems.append(rows_problem(table, huge, "value", f"are beyond float32's range (|value| > "
                                         f"{FLOAT32_MAX:.4g}) and would be infinite in the datasets, which store "
                                         "float32", "rescale the values (e.g. to rates) or correct them"))
    return problems


def _is_text(column: pd.Series) -> bool:
    return column.dtype == object or isinstance(column.dtype, (pd.StringDtype, pd.CategoricalDtype))


def _contains(column: pd.Series, pattern: str, regex: bool = False) -> pd.Series:
    """Rows whose text holds ``pattern``, checked once per distinct value (labels and dates
    repeat over millions of rows)."""
    codes, uniques = pd.factorize(column)
    found = pd.Index(uniques).astype(str).str.contains(pattern, regex=regex)
    return pd.Series(np.append(np.asarray(found, dtype=bool), False)[codes], index=column.index)


def parse_dates(
    table: pd.DataFrame, date_format: str | None, config_key: str
) -> tuple[pd.Series | None, list[str]]:
    """``week_enddate`` as datetimes, read with ``date_format`` or as ISO dates, never guessed."""
    if "week_enddate" not in table.columns:
        return None, []
    column = table["week_enddate"]
    typed = pd.api.types.is_datetime64_any_dtype(column) or (
        column.dtype == object and pd.api.types.infer_dtype(column, skipna=True) in ("date", "datetime")
    )
    if typed and date_format is not None:
        return None, [f"{config_key}.date_format is set, but column 'week_enddate' already holds dates "
                      f"(not text). Fix: remove {config_key}.date_format"]
    if not typed and pd.api.types.is_numeric_dtype(column):
        return None, [f"column 'week_enddate' is {column.dtype}, expected dates. Fix: write dates as text, "
                      f"YYYY-MM-DD, or in another layout named by {config_key}.date_format"]
    zoned = _zoned(column, typed)
    if zoned.any():
        return None, [rows_problem(table, zoned, "week_enddate", "carry a time zone or UTC offset; which calendar "
                                   "date they name depends on the zone, so they are not converted", _ZONED_FIX)]
    try:
        dates = pd.to_datetime(column, format=None if typed else date_format or "ISO8601", errors="coerce")
    except ValueError as error:
        return None, [f"{config_key}.date_format {date_format!r} is not a date format ({error}). "
                      f"Fix: use strftime codes, {DATE_FIX_EXAMPLE}"]
    bad = dates.isna() & column.notna()
    if not bad.any():
        return dates, []
    if date_format is None:
        what = "are not ISO dates (YYYY-MM-DD); other layouts are not guessed"
        fix = f"write them as YYYY-MM-DD, or set {config_key}.date_format, {DATE_FIX_EXAMPLE}"
    else:
        what = f"do not match {config_key}.date_format {date_format!r}"
        fix = f"correct those dates, or {config_key}.date_format ({DATE_FIX_EXAMPLE})"
    return None, [rows_problem(table, bad, "week_enddate", what, fix)]


def _zoned(column: pd.Series, typed: bool) -> pd.Series:
    """Rows of ``week_enddate`` with a time zone: a tz-aware column, tz-aware datetime objects,
    or text ending in a time with an offset or zone."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return column.notna()
    if pd.api.types.is_datetime64_any_dtype(column):
        return pd.Series(False, index=column.index)
    if typed:  # datetime objects: tz-aware ones, of one zone or several
        return column.map(lambda v: isinstance(v, _dt.datetime) and v.tzinfo is not None).astype(bool)
    return _contains(column, _ZONE, regex=True)

