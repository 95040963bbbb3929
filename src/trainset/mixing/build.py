"""Build the frames of one mix: plan, gap-fill, fill places, rescale, record provenance."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from trainset.errors import TrainsetError
from trainset.mixing.cube import GroupCube, build_cube
from trainset.mixing.fill import FILL_POLICIES, PlaceFiller
from trainset.mixing.gaps import CELL_KINDS, EXTERIOR_POLICIES, INTERIOR_POLICIES, MISSING, ZEROS, fill_gaps
from trainset.mixing.plan import plan_frames
from trainset.mixing.rng import named_rng
from trainset.mixing.scaling import national_peaks, scaling_targets
from trainset.seasons import SeasonAxis

logger = logging.getLogger(__name__)


@dataclass
class Frames:
    """The mixed frames of one mix.

    Attributes
    ----------
    values : ndarray
        float64 [frames, weeks, places].
    kind : ndarray
        int8 cell-kind codes (names in :data:`trainset.mixing.gaps.CELL_KINDS`).
    source : ndarray
        int32 index into ``labels`` of the group each cell's value came from.
    labels : ndarray
        ``H1/H2/season/sample`` of every group of the table.
    frames : DataFrame
        One row per frame: datasetH1, datasetH2, fluseason, sample, copy, scale, origin.
    axis : SeasonAxis
    summary : dict
    """

    values: np.ndarray
    kind: np.ndarray
    source: np.ndarray
    labels: np.ndarray
    frames: pd.DataFrame
    axis: SeasonAxis
    summary: dict


def build_frames(
    table: pd.DataFrame | GroupCube, mix_cfg: dict[str, Any], mix: str, axis: SeasonAxis, seed: int
) -> Frames:
    """Turn a validated table (or its :class:`GroupCube`) into the frames a mix config asks for.

    Passing the cube lets callers free the long table before the frames are allocated.

    Every random draw of a frame comes from its own generator, ``named_rng(seed, mix, group
    label, copy)``: fill sources first (in place order), then the scaling target.
    """
    policy = _policies(mix_cfg, mix)
    cube = table if isinstance(table, GroupCube) else build_cube(table, axis)
    filled, kind = fill_gaps(cube.values, policy["interior"], policy["exterior"])
    plan = plan_frames(cube.keys, mix_cfg["families"], mix, seed)
    values, kinds = filled[plan.group], kind[plan.group]
    source = np.broadcast_to(plan.group[:, None, None].astype(np.int32), values.shape).copy()
    states = axis.states_mask
    targets = None
    if plan.to_scale.any():
        targets = scaling_targets(mix_cfg.get("scaling_distribution"), cube.keys, filled, states, mix)
    labels = cube.labels
    scale = np.ones(plan.group.size)
    missing = ~cube.has_place[plan.group]
    filler = PlaceFiller(cube.keys, cube.has_place)
    needs_rng = np.flatnonzero(missing.any(axis=1) | plan.to_scale)
    for f in tqdm(needs_rng, desc=f"frames {mix}", unit="frame", mininterval=2, disable=None):
        rng = named_rng(seed, mix, labels[plan.group[f]], int(plan.copy[f]))
        places = np.flatnonzero(missing[f])
        if places.size:
            _fill_places(f, places, policy["fill"], filler, plan.group[f], rng, filled, values, kinds, source)
        if plan.to_scale[f]:
            scale[f] = _rescale(values, f, states, targets, rng)
    frames = _frame_table(cube, plan, scale, labels)
    summary = _summary(plan, kinds, scale, missing, policy)
    logger.info("mix %s: %d frames, %d with filled places, %d rescaled", mix, len(frames),
                summary["frames_filled"], summary["frames_scaled"])
    return Frames(values, kinds, source, labels, frames, axis, summary)


def _policies(mix_cfg: dict, mix: str) -> dict[str, str]:
    gaps = mix_cfg.get("gaps", {}) or {}
    policy = {
        "fill": mix_cfg.get("fill_missing_locations", "random") or "none",
        "interior": gaps.get("interior", "linear"),
        "exterior": gaps.get("exterior", "zero"),
    }
    for key, allowed in (("fill", FILL_POLICIES), ("interior", INTERIOR_POLICIES), ("exterior", EXTERIOR_POLICIES)):
        if policy[key] not in allowed:
            raise TrainsetError(f"mixes.{mix}: {key} policy {policy[key]!r} unknown. Fix: use one of {list(allowed)}")
    return policy


def _fill_places(f, places, mode, filler, group, rng, filled, values, kinds, source) -> None:
    """Fill the missing places of frame ``f`` in place, recording kind and source group."""
    if mode == "none":
        return
    if mode == "zeros":
        values[f][:, places] = 0.0
        kinds[f][:, places] = ZEROS
        return
    sources, levels = filler.choose(group, places, rng)
    found = sources >= 0
    values[f][:, places[found]] = filled[sources[found], :, places[found]].T
    source[f][:, places[found]] = sources[found]
    kinds[f][:, places] = levels
    values[f][:, places[~found]] = 0.0


def _rescale(values: np.ndarray, f: int, states: np.ndarray, targets: np.ndarray, rng) -> float:
    """Scale frame ``f`` so its national peak equals a drawn target; return the factor."""
    target = targets[rng.integers(targets.size)]
    peak = national_peaks(values[f : f + 1], states)[0]
    if not np.isfinite(peak) or peak <= 0:
        return 1.0
    factor = target / peak
    values[f] *= factor
    return float(factor)


def _frame_table(cube: GroupCube, plan, scale: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    frames = cube.keys.iloc[plan.group].reset_index(drop=True)
    frames["copy"] = plan.copy.astype(np.int64)
    frames["scale"] = scale
    frames["origin"] = [f"{label}#{copy}" for label, copy in zip(labels[plan.group], plan.copy)]
    return frames


def _summary(plan, kinds: np.ndarray, scale: np.ndarray, missing: np.ndarray, policy: dict) -> dict:
    counts = np.bincount(kinds.ravel(), minlength=len(CELL_KINDS))
    return {
        "frames": int(plan.group.size),
        "families": plan.families,
        "frames_filled": int(missing.any(axis=1).sum()),
        "places_filled": int(missing.sum()),
        "frames_scaled": int((plan.to_scale & (scale != 1.0)).sum()),
        "frames_unscalable": int((plan.to_scale & (scale == 1.0)).sum()),
        "cells_left_missing": int(counts[MISSING]),
        "cells_by_kind": {name: int(n) for name, n in zip(CELL_KINDS, counts)},
        "policies": policy,
    }
