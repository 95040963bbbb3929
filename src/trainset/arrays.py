"""Frames -> the training array: an xarray DataArray (sample, feature, season_week, place).

The array is float32 on the season axis (53 weeks x 51 places) or, with ``pad_to``, zero-padded
to a larger grid for image models (e.g. 64 x 64), with padding places named ``PAD_<i>``. Each
sample keeps its provenance as coordinates (family, sub-dataset, season, sample, copy, scale,
origin, group: the origin without the copy, and split when the mix assigned it).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from trainset.errors import TrainsetError
from trainset.mixing.splitting import sample_coordinates
from trainset.provenance import canonical_json

ARRAY_NAME = "frames"


def frames_to_dataarray(
    values: np.ndarray,
    frames: pd.DataFrame,
    weeks: Sequence[int],
    places: Sequence[str],
    pad_to: Sequence[int] | None = None,
    attrs: dict[str, Any] | None = None,
) -> xr.DataArray:
    """Lay frame values [frames, weeks, places] out as the 4-D training array (in memory).

    Parameters
    ----------
    values, frames
        As returned by :func:`trainset.mixing.store.read_frame_values`.
    weeks, places
        Axis labels of ``values``.
    pad_to : (weeks, places), optional
        Zero-pad the grid to this size; ``None`` keeps the season axis as is.
    attrs : dict, optional
        Attributes; non-scalar values are stored as canonical JSON strings.
    """
    coords = training_coords(frames, weeks, places, pad_to)
    data = training_block(values, len(coords["season_week"]), len(coords["place"]))
    return xr.DataArray(data, dims=DIMS, coords=coords, name=ARRAY_NAME, attrs=training_attrs(coords, attrs))


DIMS = ("sample", "feature", "season_week", "place")


def training_coords(frames: pd.DataFrame, weeks: Sequence[int], places: Sequence[str],
                    pad_to: Sequence[int] | None = None) -> dict[str, Any]:
    """Coordinates of the training array: the (padded) grid and every sample's provenance."""
    weeks, places = list(weeks), list(places)
    if pad_to is not None:
        weeks, places = _pad_labels(weeks, places, pad_to)
    per_sample = sample_coordinates(frames)
    if "split" in frames and len(frames) and (frames["split"].astype(str) != "").all():
        per_sample["split"] = frames["split"].to_numpy(dtype=str)  # assigned at mixing (group splits)
    return {
        "sample": np.arange(len(frames)),
        "feature": ["value"],
        "season_week": np.asarray(weeks, dtype=np.int64),
        "place": np.asarray(places, dtype=str),
        **{name: ("sample", values) for name, values in per_sample.items()},
    }


def training_attrs(coords: dict[str, Any], attrs: dict[str, Any] | None) -> dict[str, Any]:
    """The array's attributes (non-scalars as canonical JSON) plus ``main_origins``."""
    out = {key: _attr(value) for key, value in (attrs or {}).items()}
    out["main_origins"] = list(coords["origin"][1])
    return out


def training_block(values: np.ndarray, n_weeks: int, n_places: int) -> np.ndarray:
    """float32 [frames, 1, n_weeks, n_places]: frame values zero-padded to the grid."""
    data = np.zeros((values.shape[0], 1, n_weeks, n_places), dtype=np.float32)
    data[:, 0, : values.shape[1], : values.shape[2]] = values
    return data


def _pad_labels(weeks: list, places: list, pad_to: Sequence[int]) -> tuple[list, list]:
    n_weeks, n_places = (int(n) for n in pad_to)
    if n_weeks < len(weeks) or n_places < len(places):
        raise TrainsetError(f"pad_to {list(pad_to)} is smaller than the season axis "
                            f"({len(weeks)} weeks x {len(places)} places). Fix: raise pad_to or set it to null")
    weeks = weeks + list(range(weeks[-1] + 1, weeks[-1] + 1 + n_weeks - len(weeks)))
    places = places + [f"PAD_{i}" for i in range(len(places), n_places)]
    return weeks, places


def _attr(value: Any) -> Any:
    """NetCDF attributes take numbers and strings; everything else becomes canonical JSON."""
    if isinstance(value, (str, int, float, np.integer, np.floating)):
        return value
    return canonical_json(value)
