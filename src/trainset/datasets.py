"""The dataset stage for flu mixes: frames file -> training array -> NetCDF."""

from __future__ import annotations

import logging
import os
from typing import Any

from trainset.arrays import frames_to_dataarray
from trainset.io.netcdf import write_netcdf
from trainset.mixing.store import read_frame_values, read_frames_provenance
from trainset.provenance import file_sha256, provenance
from trainset.seasons import SeasonAxis

logger = logging.getLogger(__name__)


def write_mix_netcdf(
    frames_path: str | os.PathLike,
    output: str | os.PathLike,
    mix: str,
    mix_cfg: dict[str, Any],
    season_axis: dict[str, Any],
    seed: int,
) -> None:
    """Convert one mix's frames file into ``TS_{mix}.nc`` with its provenance as attributes."""
    axis = SeasonAxis.from_config(season_axis)
    values, frames = read_frame_values(frames_path, axis.weeks, axis.places)
    upstream = read_frames_provenance(frames_path)
    record = provenance(config=mix_cfg, seed=seed, inputs={"frames": file_sha256(frames_path)})
    attrs = {
        "mix": mix,
        "mix_cfg": mix_cfg,
        "seed": seed,
        "season_axis": season_axis,
        "input_table_sha256": upstream.get("inputs", {}).get("table", ""),
        "frames_sha256": record["inputs"]["frames"],
        "trainset_version": record["trainset_version"],
        "creation_date": record["creation_date"],
    }
    array = frames_to_dataarray(values, frames, axis.week_numbers, axis.places, mix_cfg.get("pad_to"), attrs)
    write_netcdf(array, output)
    logger.info("wrote %s: %s", output, dict(array.sizes))
