"""Build the frames of one mix: plan, gap-fill, fill places, rescale, record provenance."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import pandas as pd
from tqdm import tqdm

from trainset.errors import TrainsetError
from trainset.mixing.cube import GroupCube, build_cube
from trainset.mixing.fill import FILL_POLICIES, PlaceFiller
from trainset.mixing.gaps import (
    CELL_KINDS,
    EXTERIOR_POLICIES,
    INTERIOR_POLICIES,
    MISSING,
    ZEROS,
    fill_gaps,
)
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


BLOCK_FRAMES = 256
"""Frames made (and written) at a time: memory is bounded by one block, not by the mix."""


@dataclass
class FrameBlock:
    """Frames ``start .. start + len(frames) - 1`` of a mix (arrays as in :class:`Frames`)."""

    start: int
    values: np.ndarray
    kind: np.ndarray
    source: np.ndarray
    frames: pd.DataFrame


class FrameMixer:
    """The frames of one mix, made block by block.

    Planning, gap filling and the scaling targets work on the table's groups (a size fixed by
    the table); frames are only ever materialised one block at a time, so peak memory does
    not grow with multipliers or totals. Every random draw of a frame comes from its own
    generator, ``named_rng(seed, mix, group label, copy)`` (fill sources first, in place
    order, then the scaling target), so blocks are independent and their size cannot change
    a single value.
    """

    def __init__(self, table: pd.DataFrame | GroupCube, mix_cfg: dict[str, Any], mix: str, axis: SeasonAxis,
                 seed: int) -> None:
        self.mix, self.axis, self.seed = mix, axis, seed
        self.policy = _policies(mix_cfg, mix)
        self.cube = table if isinstance(table, GroupCube) else build_cube(table, axis)
        self.filled, self.kind = fill_gaps(self.cube.values, self.policy["interior"], self.policy["exterior"])
        self.plan = plan_frames(self.cube.keys, mix_cfg["families"], mix, seed)
        self.labels = self.cube.labels
        self.targets = None
        if self.plan.to_scale.any():
            self.targets = scaling_targets(mix_cfg.get("scaling_distribution"), self.cube.keys, self.filled,
                                           axis.states_mask, mix)
        self.missing = ~self.cube.has_place[self.plan.group]
        self.scale = np.ones(self.plan.group.size)
        self._kinds = np.zeros(len(CELL_KINDS), dtype=np.int64)
        self._filler = PlaceFiller(self.cube.keys, self.cube.has_place)

    def __len__(self) -> int:
        return int(self.plan.group.size)

    def blocks(self, size: int = BLOCK_FRAMES) -> Iterator[FrameBlock]:
        """Every frame in plan order, ``size`` at a time (one pass; fills :meth:`summary`)."""
        self._kinds[:] = 0
        progress = tqdm(total=len(self), desc=f"frames {self.mix}", unit="frame", mininterval=2, disable=None)
        with progress:
            for start in range(0, len(self), size):
                block = self._block(start, min(start + size, len(self)))
                self._kinds += np.bincount(block.kind.ravel(), minlength=len(CELL_KINDS))
                progress.update(len(block.frames))
                yield block

    def _block(self, start: int, stop: int) -> FrameBlock:
        plan, group = self.plan, self.plan.group[start:stop]
        values, kinds = self.filled[group], self.kind[group]
        source = np.broadcast_to(group[:, None, None].astype(np.int32), values.shape).copy()
        states = self.axis.states_mask
        for f in np.flatnonzero(self.missing[start:stop].any(axis=1) | plan.to_scale[start:stop]):
            frame = start + f
            rng = named_rng(self.seed, self.mix, self.labels[group[f]], int(plan.copy[frame]))
            places = np.flatnonzero(self.missing[frame])
            if places.size:
                _fill_places(f, places, self.policy["fill"], self._filler, group[f], rng, self.filled, values,
                             kinds, source)
            if plan.to_scale[frame]:
                self.scale[frame] = _rescale(values, f, states, self.targets, rng)
        frames = _frame_table(self.cube, plan, self.scale, self.labels, slice(start, stop))
        return FrameBlock(start, values, kinds, source, frames)

    def summary(self) -> dict:
        """Counts over the frames made so far (all of them once :meth:`blocks` is exhausted)."""
        summary = _summary(self.plan, self._kinds, self.scale, self.missing, self.policy)
        logger.info("mix %s: %d frames, %d with filled places, %d rescaled", self.mix, summary["frames"],
                    summary["frames_filled"], summary["frames_scaled"])
        return summary


def build_frames(
    table: pd.DataFrame | GroupCube, mix_cfg: dict[str, Any], mix: str, axis: SeasonAxis, seed: int
) -> Frames:
    """All frames of a mix in memory (small mixes, tests); the stage writes :class:`FrameMixer` blocks.

    Passing the cube lets callers free the long table before the frames are allocated.
    """
    mixer = FrameMixer(table, mix_cfg, mix, axis, seed)
    blocks = list(mixer.blocks())
    values, kind, source = (np.concatenate([getattr(b, name) for b in blocks]) for name in ("values", "kind", "source"))
    frames = pd.concat([b.frames for b in blocks], ignore_index=True)
    return Frames(values, kind, source, mixer.labels, frames, axis, mixer.summary())


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


def _frame_table(cube: GroupCube, plan, scale: np.ndarray, labels: np.ndarray, rows: slice) -> pd.DataFrame:
    """The frame-level columns of frames ``rows`` (index starting at ``rows.start``)."""
    group, copy = plan.group[rows], plan.copy[rows]
    frames = cube.keys.iloc[group].reset_index(drop=True)
    frames.index += rows.start
    frames["copy"] = copy.astype(np.int64)
    frames["scale"] = scale[rows]
    frames["origin"] = pd.Series(labels[group], index=frames.index) + "#" + frames["copy"].astype(str)
    return frames


def _summary(plan, counts: np.ndarray, scale: np.ndarray, missing: np.ndarray, policy: dict) -> dict:
    """The mix's summary from per-kind cell counts and per-frame scales."""
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
