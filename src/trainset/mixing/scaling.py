"""Rescaling frames so their national peak matches a target drawn from a distribution.

The national curve is the sum over the 50 states and DC only: the old code summed national and
territory rows too and got targets about twice a 51-state peak.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from trainset.errors import TrainsetError


def national_peaks(values: np.ndarray, states: np.ndarray) -> np.ndarray:
    """Max over weeks of the sum over state places, per frame of ``values`` [n, weeks, places].

    NaN cells count as 0. The plain sum is tried first (no copy when every place is a state,
    the default axis); ``nansum`` of the same array sums in the same order, so a NaN elsewhere
    in the block cannot change a NaN-free frame's peak.
    """
    chosen = values if states.all() else values[:, :, states]
    totals = chosen.sum(axis=2)
    if np.isnan(totals).any():
        totals = np.nansum(chosen, axis=2)
    return totals.max(axis=1)


def scaling_targets(
    cfg: dict | None, keys: pd.DataFrame, values: np.ndarray, states: np.ndarray, mix: str
) -> tuple[np.ndarray, int]:
    """The 1-D distribution of target peaks named by a mix's ``scaling_distribution``, and how
    many groups of ``from_families`` were left out for a national peak of 0 (nothing to copy).

    ``{from_families: [...]}`` uses the national peaks of every group of those families,
    ``{values: [...]}`` a list, ``{path: file}`` a text file of numbers (one per line). A given
    target that is not a positive finite number is refused, never dropped.
    """
    where = f"mixes.{mix}.scaling_distribution"
    if not cfg:
        raise TrainsetError(f"{where}: a family has to_scale: true but no distribution is given. "
                            "Fix: set from_families, values or path")
    if "from_families" in cfg:
        families = list(cfg["from_families"])
        chosen = keys["datasetH1"].isin(families).to_numpy()
        missing = sorted(set(families) - set(keys["datasetH1"]))
        if missing:
            raise TrainsetError(f"{where}.from_families: {missing} not in the table. "
                                f"Fix: use some of {sorted(keys['datasetH1'].unique())}")
        peaks = national_peaks(values[chosen], states)
        targets, excluded = peaks[peaks > 0], int((peaks <= 0).sum())
    elif "values" in cfg:
        targets, excluded = _checked(np.asarray(cfg["values"], dtype=float), f"{where}.values"), 0
    elif "path" in cfg:
        targets, excluded = _checked(_read_targets(Path(cfg["path"]), where), f"{where}.path {cfg['path']}"), 0
    else:
        raise TrainsetError(f"{where}: give from_families, values or path")
    if targets.size == 0:
        raise TrainsetError(f"{where}: no positive target peak (every group's national peak is 0). "
                            "Fix: draw the targets from families with data")
    return np.sort(targets), excluded


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _checked(targets: np.ndarray, where: str) -> np.ndarray:
    """Given target peaks, all positive and finite in float32, the frames' storage type (a bad
    one is refused, not dropped); an empty list is refused too."""
    if targets.size == 0:
        raise TrainsetError(f"{where}: holds no target peak. Fix: give one positive number per line")
    bad = ~(np.isfinite(targets) & (targets > 0) & (targets <= _FLOAT32_MAX))
    if bad.any():
        raise TrainsetError(f"{where}: {int(bad.sum())} of {targets.size} target peaks are not positive finite "
                            f"numbers up to {_FLOAT32_MAX:.4g} (e.g. {targets[bad][:3].tolist()}). "
                            "Fix: correct or remove them")
    return targets


def _read_targets(path: Path, where: str) -> np.ndarray:
    if not path.exists():
        raise TrainsetError(f"{where}.path: {path} not found")
    try:
        with warnings.catch_warnings():  # an empty file: refused by _checked, not only warned about
            warnings.simplefilter("ignore", UserWarning)
            return np.loadtxt(path, dtype=float, ndmin=1, delimiter=",")
    except ValueError as error:
        raise TrainsetError(f"{where}.path: {path} must hold one number per line ({error})") from error
