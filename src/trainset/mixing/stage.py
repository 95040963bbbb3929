"""The frames stage: validated table file -> frames Parquet file + summary JSON."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import pandas as pd

from trainset.mixing.build import FrameMixer
from trainset.mixing.cube import build_cube
from trainset.mixing.store import write_frame_blocks
from trainset.provenance import file_sha256, provenance, write_json
from trainset.seasons import SeasonAxis
from trainset.table.io import read_table
from trainset.versions import KEY, check_version, stamp

logger = logging.getLogger(__name__)

TABLE_COLUMNS_USED = ["datasetH1", "datasetH2", "fluseason", "sample", "location_code", "season_week", "value"]
"""Columns mixing reads; week_enddate is not needed once weeks are validated."""


def mix_frames(
    table_path: str | os.PathLike,
    output: str | os.PathLike,
    summary_path: str | os.PathLike,
    mix: str,
    mix_cfg: dict[str, Any],
    season_axis: dict[str, Any],
    seed: int,
    table_summary: str | os.PathLike | None = None,
    scaling_file: str | os.PathLike | None = None,
    splits_cfg: dict[str, Any] | None = None,
) -> dict:
    """Build one mix's frames from a table written by the ingest stage; return its summary.

    ``splits_cfg`` is the mix's ``splits`` section: when it keeps groups whole, frames are
    assigned to splits here and fill sources are drawn inside each split (see
    :mod:`trainset.mixing.splitting`).

    ``scaling_file``: where to read ``scaling_distribution.path`` from when that is elsewhere
    (Snakemake's local copy of a storage object); provenance keeps the configured path.
    """
    axis = SeasonAxis.from_config(season_axis)
    build_cfg = mix_cfg
    inputs = {"table": file_sha256(table_path)}
    if scaling_file is not None:
        build_cfg = {**mix_cfg, "scaling_distribution": {**mix_cfg["scaling_distribution"], "path": str(scaling_file)}}
        inputs["scaling_targets"] = file_sha256(scaling_file)
    cube = build_cube(read_table(table_path, columns=TABLE_COLUMNS_USED), axis)
    mixer = FrameMixer(cube, build_cfg, mix, axis, seed, splits_cfg)
    record = provenance(config={"mix": mix_cfg, "season_axis": season_axis, "splits": splits_cfg}, seed=seed,
                        inputs=inputs)
    text_samples = not pd.api.types.is_integer_dtype(cube.keys["sample"])
    write_frame_blocks(mixer.blocks(), axis, mixer.labels, output, record, text_samples)
    summary = {"mix": mix, **mixer.summary(), "provenance": record, **stamp("frames_summary")}
    if table_summary is not None:
        with open(table_summary) as handle:
            table_report = json.load(handle)
        check_version("table_summary", table_report.get(KEY), table_summary)
        summary["table"] = {k: table_report.get(k) for k in ("source", "rows_in", "rows_out", "dropped_places",
                                                             "dropped_missing_value")}
    write_json(summary, summary_path)
    return summary
