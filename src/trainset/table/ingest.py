"""The ingest stage: a raw table (a file or the bundled demo) -> a validated Parquet table.

A table config may adapt a file that does not use trainset's names before validation:
``columns`` renames the file's columns (like ``DataFrame.rename(columns=...)``) and
``constants`` adds a column holding one value on every row, so a single-source surveillance
CSV (``date, location, value``) needs no editing. Both are checked strictly: a key that would
do nothing, or silently replace data, is refused.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import pandas as pd

from trainset.errors import TrainsetError
from trainset.provenance import file_sha256, provenance, write_json
from trainset.seasons import SeasonAxis
from trainset.table.io import read_raw_table, write_table
from trainset.table.validate import TABLE_COLUMNS, validate_table
from trainset.versions import stamp

logger = logging.getLogger(__name__)

NOT_CONSTANT = {
    "value": "the values are the data and must come from the file",
    "location_code": "each row's place must come from the file (one place per file would need one table each)",
    "week_enddate": "each row's date must come from the file",
}
"""Columns a table's ``constants`` may not set, with the reason given when one does."""

TABLE_DEFAULTS = {"size": "small", "drop_unknown_places": False, "pad_location_codes": False}
"""Defaults of a ``tables`` entry's keys (the schema's copy is tested against these)."""
DEMOS = ("flu",)
"""Bundled demo generators a table's ``demo`` may name."""


def load_raw(
    table_cfg: dict[str, Any],
    axis: SeasonAxis,
    seed: int,
    raw_file: str | os.PathLike | None = None,
    name: str = "table",
) -> tuple[pd.DataFrame, str, dict]:
    """Return (raw table, its name for messages, input hashes) for one ``tables`` entry.

    ``raw_file`` is where the configured ``path`` can be read when that is elsewhere (Snakemake's
    local copy of a storage object); messages and hashes still name the configured path, so the
    outputs do not depend on where the copy was. ``name`` is the table's key under ``tables``,
    for messages. The table's ``columns`` and ``constants`` are already applied.
    """
    key = f"tables.{name}"
    if "demo" in table_cfg:
        from trainset.demo.flu import make_flu_table

        if table_cfg["demo"] not in DEMOS:
            raise TrainsetError(f"{key}: unknown demo {table_cfg['demo']!r}. Fix: use one of {list(DEMOS)}")
        if "sep" in table_cfg:
            raise TrainsetError(f"{key}.sep is set but a demo table is not a file. Fix: remove {key}.sep")
        size = table_cfg.get("size", TABLE_DEFAULTS["size"])
        raw = make_flu_table(size, seed=seed, axis=axis)
        source, inputs = f"demo:{table_cfg['demo']}:{size}", {}
    elif "path" in table_cfg:
        path = table_cfg["path"]
        local = raw_file if raw_file is not None else path
        columns = table_cfg.get("columns") or {}
        raw = read_raw_table(local, sep=table_cfg.get("sep"), columns=columns, config_key=key)
        source, inputs = str(path), {str(path): file_sha256(local)}
    else:
        raise TrainsetError(f"{key}: each table needs either 'demo' or 'path'")
    return adapt_columns(raw, table_cfg, source, name), source, inputs


def adapt_columns(raw: pd.DataFrame, table_cfg: Mapping[str, Any], source: str, name: str) -> pd.DataFrame:
    """Apply the table's ``columns`` renames, then its ``constants``; refuse any key that would
    do nothing or overwrite the file's data, listing every such key at once."""
    columns = dict(table_cfg.get("columns") or {})
    constants = dict(table_cfg.get("constants") or {})
    key = f"tables.{name}"
    renamed = [columns.get(c, c) for c in raw.columns]
    problems = _rename_problems(list(raw.columns), columns, key) + _constant_problems(renamed, constants, key)
    if problems:
        body = "\n".join(f"  - {p}" for p in problems)
        raise TrainsetError(f"{source}: {len(problems)} problem(s) in the config of this table:\n{body}")
    if columns:
        raw = raw.rename(columns=columns)
        logger.info("%s: renamed columns %s", source, columns)
    if constants:
        raw = raw.assign(**constants)
        logger.info("%s: constant columns %s", source, constants)
    return raw


def _rename_problems(file_columns: list[str], columns: dict[str, Any], key: str) -> list[str]:
    """``columns`` keys the file lacks, targets trainset does not know, renames that collide."""
    problems = [
        f"{key}.columns renames {old!r}, which is not a column of the file; the file has {file_columns}. "
        f"Fix: use the file's own column name, or remove the entry"
        for old in columns if old not in file_columns
    ]  # fmt: skip
    problems += [
        f"{key}.columns renames {old!r} to {new!r}, which is not a trainset column {TABLE_COLUMNS}. "
        f"Fix: rename to one of those (other columns are ignored anyway; no need to rename them)"
        for old, new in columns.items() if new not in TABLE_COLUMNS
    ]  # fmt: skip
    if problems:
        return problems
    renamed = pd.Series([columns.get(c, c) for c in file_columns], index=file_columns)
    for new, olds in renamed.groupby(renamed).groups.items():
        if len(olds) > 1:
            problems.append(
                f"{key}.columns would make {len(olds)} columns named {new!r} (from {list(olds)}). "
                f"Fix: rename only one of them to {new!r}, or remove the other from the file"
            )
    return problems


def _constant_problems(renamed: list[str], constants: dict[str, Any], key: str) -> list[str]:
    """Constants for unknown or per-row columns, for columns the table has, or of a bad type."""
    problems = []
    for column, value in constants.items():
        if column not in TABLE_COLUMNS:
            problems.append(f"{key}.constants sets {column!r}, which is not a trainset column {TABLE_COLUMNS}. "
                            f"Fix: remove it")
        elif column in NOT_CONSTANT:
            problems.append(f"{key}.constants sets {column!r}, which cannot be a constant: {NOT_CONSTANT[column]}. "
                            f"Fix: remove it from constants and give the file a {column} column (or a "
                            f"{key}.columns rename to it)")
        elif column in renamed:
            problems.append(f"{key}.constants sets {column!r}, but the table already has a column {column!r}. "
                            f"Fix: remove it from constants or from the file")
        elif isinstance(value, bool) or not isinstance(value, (str, int)):
            problems.append(f"{key}.constants.{column} is {value!r}; a constant must be text or an integer. "
                            f"Fix: write e.g. nhsn or 0")
    return problems


def ingest_table(
    table_cfg: dict[str, Any],
    season_axis: dict[str, Any],
    seed: int,
    output: str | os.PathLike,
    summary: str | os.PathLike,
    raw_file: str | os.PathLike | None = None,
    name: str = "table",
) -> dict:
    """Load, validate and write one table and its summary; return the summary.

    ``raw_file``: where to read the configured ``path`` from, if not there (see :func:`load_raw`).
    ``name``: the table's key under ``tables``, so messages say ``tables.<name>.<key>``.
    """
    axis = SeasonAxis.from_config(season_axis)
    raw, source, inputs = load_raw(table_cfg, axis, seed, raw_file, name=name)
    table, report = validate_table(
        raw, axis, source=source,
        drop_unknown_places=table_cfg.get("drop_unknown_places", TABLE_DEFAULTS["drop_unknown_places"]),
        pad_location_codes=table_cfg.get("pad_location_codes", TABLE_DEFAULTS["pad_location_codes"]),
        date_format=table_cfg.get("date_format"),
        config_key=f"tables.{name}",
    )  # fmt: skip
    record = provenance(
        config={"table": table_cfg, "season_axis": season_axis}, seed=seed, inputs=inputs
    )
    write_table(table, output, record)
    result = {"source": source, **report.to_dict(), "provenance": record, **stamp("table_summary")}
    result["families"] = _family_counts(table)
    write_json(result, summary)
    return result


def _family_counts(table: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Rows and (H2, season, sample) groups per family, for a human glance at the summary."""
    groups = table.groupby("datasetH1", observed=True)[["datasetH2", "fluseason", "sample"]]
    return {
        str(family): {"rows": int(len(rows)), "groups": int(len(rows.drop_duplicates()))}
        for family, rows in groups
    }
