"""Frames -> the training array: an xarray DataArray (sample, feature, season_week, place).

The array is float32 on the season axis (53 weeks x 51 places) or, with ``pad_to``, zero-padded
to a larger grid for image models (e.g. 64 x 64), with padding places named ``PAD_<i>``. Each
sample keeps its provenance as coordinates (family, sub-dataset, season, sample, copy, scale,
origin, and group: the origin without the copy, for leak-free splits).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from trainset.errors import TrainsetError
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
    """Lay frame values [frames, weeks, places] out as the 4-D training array.

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
    weeks, places = list(weeks), list(places)
    data = values.astype(np.float32)[:, None, :, :]
    if pad_to is not None:
        data, weeks, places = _pad(data, weeks, places, pad_to)
    group = (
        frames["datasetH1"].astype(str) + "/" + frames["datasetH2"].astype(str) + "/"
        + frames["fluseason"].astype(str) + "/" + frames["sample"].astype(str)
    )  # fmt: skip
    origin = (group + "#" + frames["copy"].astype(str)).to_numpy(dtype=str)
    coords = {
        "sample": np.arange(len(frames)),
        "feature": ["value"],
        "season_week": np.asarray(weeks, dtype=np.int64),
        "place": np.asarray(places, dtype=str),
        "origin": ("sample", origin),
        "group": ("sample", group.to_numpy(dtype=str)),
        "datasetH1": ("sample", frames["datasetH1"].astype(str).to_numpy(dtype=str)),
        "datasetH2": ("sample", frames["datasetH2"].astype(str).to_numpy(dtype=str)),
        "fluseason": ("sample", frames["fluseason"].to_numpy(dtype=np.int64)),
        "source_sample": ("sample", frames["sample"].to_numpy(dtype=np.int64)),
        "copy": ("sample", frames["copy"].to_numpy(dtype=np.int64)),
        "scale": ("sample", frames["scale"].to_numpy(dtype=np.float64)),
    }
    attrs = {key: _attr(value) for key, value in (attrs or {}).items()}
    attrs["main_origins"] = list(origin)
    return xr.DataArray(data, dims=("sample", "feature", "season_week", "place"), coords=coords,
                        name=ARRAY_NAME, attrs=attrs)


def _pad(data: np.ndarray, weeks: list, places: list, pad_to: Sequence[int]):
    n_weeks, n_places = (int(n) for n in pad_to)
    if n_weeks < len(weeks) or n_places < len(places):
        raise TrainsetError(f"pad_to {list(pad_to)} is smaller than the season axis "
                            f"({len(weeks)} weeks x {len(places)} places). Fix: raise pad_to or set it to null")
    padded = np.zeros(data.shape[:2] + (n_weeks, n_places), dtype=data.dtype)
    padded[:, :, : len(weeks), : len(places)] = data
    weeks = weeks + list(range(weeks[-1] + 1, weeks[-1] + 1 + n_weeks - len(weeks)))
    places = places + [f"PAD_{i}" for i in range(len(places), n_places)]
    return padded, weeks, places


def _attr(value: Any) -> Any:
    """NetCDF attributes take numbers and strings; everything else becomes canonical JSON."""
    if isinstance(value, (str, int, float, np.integer, np.floating)):
        return value
    return canonical_json(value)
