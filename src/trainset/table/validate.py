"""Validation of the combined long table, before anything is mixed.

The old code let bad rows through and failed (or silently dropped data) much later. Here every
problem is found up front, vectorised over the whole table, and reported together: each names
the column, how many rows are affected, a few example rows, and the fix.

Sample ids are labels, not numbers: an integer (or integer-valued numeric) ``sample`` column
stays int64, a text column stays text exactly as written (pandas ``string`` dtype). Groups are
ordered by (datasetH1, datasetH2, fluseason, sample); integer sample ids sort numerically, text
ids by their Unicode code points ('10.0' < '9.0').

Dates are never guessed: without a ``date_format`` only ISO dates (YYYY-MM-DD, optionally with a
time) are read, since 12/03/2022 could be March or December. Location codes that lost their
leading zero ('1' for '01') are refused, never dropped as unknown places, unless the table
config asks to zero-pad them (``pad_location_codes``). Dates and single cells (time zones,
booleans, NUL bytes, values beyond float32, tables left empty) are checked in
:mod:`trainset.table.cells`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trainset.errors import TrainsetError
from trainset.locations import load_locations
from trainset.seasons import SeasonAxis
from trainset.table.cells import cell_problems, parse_dates, refuse_empty
from trainset.table.cells import rows_problem as _rows

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
_DERIVABLE = ["fluseason", "season_week"]
_ONE_DIGIT = "[0-9]"


@dataclass
class TableReport:
    """What validation did to the table; stored as the table's summary JSON."""

    rows_in: int = 0
    rows_out: int = 0
    dropped_missing_value: int = 0
    dropped_places: dict[str, int] = field(default_factory=dict)
    derived_columns: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    padded_location_codes: int = 0

    def to_dict(self) -> dict:
        """JSON-able form."""
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "dropped_missing_value": self.dropped_missing_value,
            "dropped_places": dict(sorted(self.dropped_places.items())),
            "derived_columns": self.derived_columns,
            "ignored_columns": sorted(self.ignored_columns),
            "padded_location_codes": self.padded_location_codes,
        }


def validate_table(
    table: pd.DataFrame,
    axis: SeasonAxis,
    source: str = "table",
    drop_unknown_places: bool = False,
    pad_location_codes: bool = False,
    date_format: str | None = None,
    config_key: str = "tables.<name>",
) -> tuple[pd.DataFrame, TableReport]:
    """Check a combined long table and return it in canonical form with a report.

    Parameters
    ----------
    table : DataFrame
        Raw rows with the :data:`TABLE_COLUMNS` (``season_week`` and ``fluseason`` may be
        absent: they are then derived from ``week_enddate`` on ``axis``). Other columns are
        ignored and listed in the report.
    axis : SeasonAxis
        Weeks and places of the frame grid.
    source : str
        Name of the file or generator, used in every message.
    drop_unknown_places : bool
        Drop rows whose ``location_code`` is not a known place instead of failing. Places the
        axis removes on purpose (``US``, territories) are always dropped and counted. Codes
        that lost their leading zero are refused whatever this says.
    pad_location_codes : bool
        Zero-pad one-digit codes ('1' -> '01'; integer code columns become text first) and
        count the padded rows, for files that went through a spreadsheet.
    date_format : str, optional
        ``strftime`` format of ``week_enddate`` text; default: ISO dates only.
    config_key : str
        ``tables.<name>`` of this table, for the fixes in messages.

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
    refuse_empty(source, report.rows_in)
    problems = _missing_columns(table, config_key)
    table = _drop_extra_columns(table, source, report)
    table, code_problems = _location_codes(table, pad_location_codes, report, config_key)
    dates, date_problems = parse_dates(table, date_format, config_key)
    problems += code_problems + _check_types(table) + cell_problems(table) + date_problems
    if problems:
        raise TrainsetError(_format(source, problems))
    table = _derive_season_columns(table.assign(week_enddate=dates), axis, source, report)
    table = _coerce(table)
    problems = _check_keys_and_values(table, axis)
    table, place_problems = _drop_places(table, axis, drop_unknown_places, report, config_key)
    problems += place_problems
    if not problems:
        problems += _check_duplicates(table)
    if problems:
        raise TrainsetError(_format(source, problems))
    missing = table["value"].isna().to_numpy()
    report.dropped_missing_value = int(missing.sum())
    refuse_empty(source, report.rows_in, report.dropped_missing_value, sum(report.dropped_places.values()))
    table = table.loc[~missing]
    table = _sort(table)
    report.rows_out = len(table)
    logger.info("%s: %d rows in, %d rows out", source, report.rows_in, report.rows_out)
    return table, report


def _missing_columns(table: pd.DataFrame, config_key: str) -> list[str]:
    """Required columns the table lacks (season columns are derivable when dates are there)."""
    derivable = _DERIVABLE if "week_enddate" in table.columns else []
    missing = [c for c in TABLE_COLUMNS if c not in table.columns and c not in derivable]
    if not missing:
        return []
    return [
        f"missing column(s) {missing}; the table has {[str(c) for c in table.columns]}. Fix: add them, "
        f"rename the file's columns with {config_key}.columns, or give one value for every row with "
        f"{config_key}.constants (fluseason and season_week may be omitted and are then derived "
        f"from week_enddate)"
    ]


def _drop_extra_columns(table: pd.DataFrame, source: str, report: TableReport) -> pd.DataFrame:
    """Keep only the trainset columns; the others are named in the report, never used."""
    extra = [c for c in table.columns if c not in TABLE_COLUMNS]
    if not extra:
        return table
    report.ignored_columns = sorted(str(c) for c in extra)
    logger.info("%s: ignored columns %s (not trainset columns)", source, report.ignored_columns)
    return table.drop(columns=extra)


def _location_codes(
    table: pd.DataFrame, pad: bool, report: TableReport, config_key: str
) -> tuple[pd.DataFrame, list[str]]:
    """Integer code columns are refused (or, with ``pad``, made text); ``pad`` zero-pads '1'."""
    if "location_code" not in table.columns:
        return table, []
    codes = table["location_code"]
    numeric = pd.api.types.is_numeric_dtype(codes)
    if numeric and _has_fraction(codes):
        return table, [_location_type_problem(codes)]
    if not numeric and not pad:
        return table, []  # text codes that lost their zero are reported with the unknown places
    text = codes.astype("Int64").astype("string") if numeric else codes.astype("string")
    short = text.str.fullmatch(_ONE_DIGIT).fillna(False).astype(bool)
    if pad:
        report.padded_location_codes = int(short.sum())
        logger.info("zero-padded %d one-digit location codes", report.padded_location_codes)
        return table.assign(location_code=text.mask(short, "0" + text)), []
    lost = short & ("0" + text).isin(_known_codes()).fillna(False).astype(bool)
    if not lost.any():
        return table, [_location_type_problem(codes)]
    return table, [_lost_zero_problem(table, lost, config_key, f"is {codes.dtype}, expected text: ")]


def _location_type_problem(codes: pd.Series) -> str:
    return (
        f"column 'location_code' is {codes.dtype}, expected text. Fix: store it as "
        f"strings (location codes keep their leading zero, e.g. '06')"
    )


def _lost_zero_problem(table: pd.DataFrame, lost: pd.Series, config_key: str, prefix: str = "") -> str:
    return _rows(
        table, lost, "location_code",
        f"{prefix}lost their leading zero (e.g. 1 for '01'; zero-padded they are known places)",
        f"quote the codes as text in the file ('01', not 1), or set {config_key}.pad_location_codes: "
        f"true for this table",
    )  # fmt: skip


def _known_codes() -> pd.Series:
    return load_locations()["location_code"]


def _check_types(table: pd.DataFrame) -> list[str]:
    """Columns of the wrong type (the place and date columns are checked on their own)."""
    problems = []
    for column in ["datasetH1", "datasetH2"]:
        if column in table.columns and pd.api.types.is_numeric_dtype(table[column]):
            problems.append(
                f"column '{column}' is {table[column].dtype}, expected text. Fix: store it as strings"
            )
    if "sample" in table.columns:
        problems += _sample_problems(table["sample"])
    for column in ["fluseason", "season_week"]:
        if column not in table.columns:
            continue
        if not pd.api.types.is_numeric_dtype(table[column]):
            problems.append(f"column '{column}' is {table[column].dtype}, expected integers. Fix: store whole numbers")
        elif _has_fraction(table[column]):
            problems.append(f"column '{column}' has non-integer values. Fix: store whole numbers")
    if "value" in table.columns and not pd.api.types.is_numeric_dtype(table["value"]):
        problems.append(f"column 'value' is {table['value'].dtype}, expected numbers. Fix: store numeric values")
    return problems


def _sample_problems(sample: pd.Series) -> list[str]:
    """Sample ids are integers or text, not fractions and not a mix of both."""
    if pd.api.types.is_bool_dtype(sample):
        return ["column 'sample' is bool, expected integer or text ids. Fix: store ids such as 0, 1 or 'r1'"]
    if pd.api.types.is_numeric_dtype(sample):
        if _has_fraction(sample):
            return ["column 'sample' has non-integer values. Fix: store whole numbers, or the ids as text"]
        return []
    kind = _text_kind(sample)
    if kind in ("string", "empty"):
        return []
    return [
        f"column 'sample' mixes text with {kind} values. Fix: store every sample id as text, "
        f"or every one as an integer"
    ]


def _text_kind(column: pd.Series) -> str:
    """pandas' inferred kind of a non-numeric column ('string' when all values are text)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return pd.api.types.infer_dtype(column.cat.categories, skipna=True)
    return pd.api.types.infer_dtype(column, skipna=True)


def _is_text(column: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(column)


def _has_fraction(column: pd.Series) -> bool:
    values = column.to_numpy(dtype=float, na_value=np.nan)
    finite = values[np.isfinite(values)]
    return bool(np.any(finite != np.round(finite)))


def _derive_season_columns(
    table: pd.DataFrame, axis: SeasonAxis, source: str, report: TableReport
) -> pd.DataFrame:
    """Fill in ``fluseason``/``season_week`` from the (parsed) ``week_enddate`` when absent.

    Rows without a date get no season (NA) and are refused as empty dates afterwards.
    """
    absent = [c for c in _DERIVABLE if c not in table.columns]
    if not absent:
        return table
    dates = table["week_enddate"]
    dated = dates.notna().to_numpy()
    season, week = axis.season_and_week(dates[dated])
    derived = {}
    for column, values in (("fluseason", season), ("season_week", week)):
        full = pd.array(np.zeros(len(table), dtype=np.int64), dtype="Int64")
        full[dated] = values
        full[~dated] = pd.NA
        derived[column] = full
    table = table.assign(**{c: derived[c] for c in absent})
    report.derived_columns = absent
    logger.info("%s: derived %s from week_enddate", source, absent)
    return table


def _coerce(table: pd.DataFrame) -> pd.DataFrame:
    """Canonical dtypes: strings, nullable-free int64 where possible, float64, datetimes."""
    out = pd.DataFrame(index=table.index)
    for column in _STRING_COLUMNS:
        out[column] = table[column].astype("string")
    for column in _INTEGER_COLUMNS:
        text = column == "sample" and _is_text(table[column])
        out[column] = table[column].astype("string" if text else "Int64")
    out["value"] = table["value"].astype("float64")
    out["week_enddate"] = table["week_enddate"].astype("datetime64[ns]")
    return out[TABLE_COLUMNS]


def _check_keys_and_values(table: pd.DataFrame, axis: SeasonAxis) -> list[str]:
    """NaN keys, negative values, weeks off the axis, weeks disagreeing with their dates."""
    problems = []
    for column in [*KEY_COLUMNS, "week_enddate"]:
        nan = table[column].isna()
        if column == "sample" and _is_text(table[column]):
            nan = nan | table[column].eq("").fillna(False).astype(bool)
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
    table: pd.DataFrame, axis: SeasonAxis, drop_unknown: bool, report: TableReport, config_key: str
) -> tuple[pd.DataFrame, list[str]]:
    """Drop places the axis leaves out on purpose; unknown codes fail unless told to drop.

    A code that is a known place once zero-padded ('1' -> '01') lost its zero in a spreadsheet:
    it is always refused, never dropped, since dropping would silently lose whole states.
    """
    codes = table["location_code"]
    row_code, uniques = pd.factorize(codes)  # decide per distinct code (a few dozen), not per row
    uniques = pd.Series(np.asarray(uniques, dtype=object), dtype=object)
    known_codes = pd.Index(_known_codes())
    u_known = uniques.isin(known_codes).to_numpy()
    one_digit = uniques.str.fullmatch(_ONE_DIGIT).fillna(False).astype(bool).to_numpy()
    u_lost = ~u_known & one_digit & ("0" + uniques).isin(known_codes).to_numpy()
    u_on_axis = axis.place_index(uniques.to_numpy()) >= 0
    on_axis, known, lost = (_per_row(flags, row_code, table.index) for flags in (u_on_axis, u_known, u_lost))
    present = pd.Series(row_code >= 0, index=table.index)
    unknown = ~on_axis & ~known & present & ~lost
    problems = []
    if lost.any():
        problems.append(_lost_zero_problem(table, lost, config_key))
    if unknown.any() and not drop_unknown:
        problems.append(
            _rows(
                table, unknown, "location_code", "are not known places",
                f"use FIPS codes like '06', or set {config_key}.drop_unknown_places: true for this table",
            )  # fmt: skip
        )
    drop = ~on_axis & present & ~lost
    if drop.any():
        counts = codes[drop].value_counts()
        report.dropped_places = {str(k): int(v) for k, v in counts.items()}
        logger.info("dropped %d rows of places not on the axis: %s", int(drop.sum()), report.dropped_places)
    return table.loc[~drop], problems


def _per_row(flags: np.ndarray, row_code: np.ndarray, index: pd.Index) -> pd.Series:
    """A per-distinct-code flag spread to the rows (rows without a code, -1, get False)."""
    return pd.Series(np.append(flags, False)[row_code], index=index)


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
    table = table.astype({c: "int64" for c in _INTEGER_COLUMNS if not _is_text(table[c])})
    return table.sort_values(KEY_COLUMNS, kind="stable", ignore_index=True)


def _format(source: str, problems: list[str]) -> str:
    body = "\n\n".join(f"[{i}] {p}" for i, p in enumerate(problems, start=1))
    return f"{source}: {len(problems)} problem(s) in the combined table\n\n{body}"
