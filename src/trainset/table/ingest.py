"""The ingest stage: a raw table (a file or the bundled demo) -> a validated Parquet table."""

from __future__ import annotations

import logging
import os
from typing import Any

import pandas as pd

from trainset.errors import TrainsetError
from trainset.provenance import file_sha256, provenance, write_json
from trainset.seasons import SeasonAxis
from trainset.table.io import read_raw_table, write_table
from trainset.table.validate import validate_table

logger = logging.getLogger(__name__)


def load_raw(
    table_cfg: dict[str, Any], axis: SeasonAxis, seed: int, raw_file: str | os.PathLike | None = None
) -> tuple[pd.DataFrame, str, dict]:
    """Return (raw table, its name for messages, input hashes) for one ``tables`` entry.

    ``raw_file`` is where the configured ``path`` can be read when that is elsewhere (Snakemake's
    local copy of a storage object); messages and hashes still name the configured path, so the
    outputs do not depend on where the copy was.
    """
    if "demo" in table_cfg:
        from trainset.demo.flu import make_flu_table

        if table_cfg["demo"] != "flu":
            raise TrainsetError(f"tables: unknown demo {table_cfg['demo']!r}. Fix: use 'flu'")
        raw = make_flu_table(table_cfg.get("size", "small"), seed=seed, axis=axis)
        return raw, f"demo:{table_cfg['demo']}:{table_cfg.get('size', 'small')}", {}
    if "path" in table_cfg:
        path = table_cfg["path"]
        local = raw_file if raw_file is not None else path
        return read_raw_table(local), str(path), {str(path): file_sha256(local)}
    raise TrainsetError("tables: each table needs either 'demo' or 'path'")


def ingest_table(
    table_cfg: dict[str, Any],
    season_axis: dict[str, Any],
    seed: int,
    output: str | os.PathLike,
    summary: str | os.PathLike,
    raw_file: str | os.PathLike | None = None,
) -> dict:
    """Load, validate and write one table and its summary; return the summary.

    ``raw_file``: where to read the configured ``path`` from, if not there (see :func:`load_raw`).
    """
    axis = SeasonAxis.from_config(season_axis)
    raw, source, inputs = load_raw(table_cfg, axis, seed, raw_file)
    table, report = validate_table(
        raw, axis, source=source, drop_unknown_places=table_cfg.get("drop_unknown_places", False)
    )
    record = provenance(
        config={"table": table_cfg, "season_axis": season_axis}, seed=seed, inputs=inputs
    )
    write_table(table, output, record)
    result = {"source": source, **report.to_dict(), "provenance": record}
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
