"""Build the frames of one mix: plan, split, gap-fill, fill places, rescale, record provenance."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import pandas as pd
from tqdm import tqdm

from trainset.errors import TrainsetError
from trainset.mixing.checks import ShareCheck
from trainset.mixing.config import MixPolicy, check_mix
from trainset.mixing.cube import GroupCube, build_cube
from trainset.mixing.fill import PlaceFiller, check_fillable, describe_unfillable, refuse_incomplete
from trainset.mixing.gaps import CELL_KINDS, MISSING, ZEROS, fill_gaps
from trainset.mixing.plan import FramePlan, plan_frames
from trainset.mixing.scaling import national_peaks, scaling_targets
from trainset.mixing.splitting import GroupSplits, assign_splits
from trainset.rng import named_rng
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
        One row per frame: datasetH1, datasetH2, fluseason, sample, copy, scale, split, origin.
    axis : SeasonAxis
    summary : dict
    fill_scale : ndarray
        float64 [frames, places]: the level ratio r of each filled place (1 elsewhere).
    """

    values: np.ndarray
    kind: np.ndarray
    source: np.ndarray
    labels: np.ndarray
    frames: pd.DataFrame
    axis: SeasonAxis
    summary: dict
    fill_scale: np.ndarray


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
    fill_scale: np.ndarray


class FrameMixer:
    """The frames of one mix, made block by block.

    Planning, splitting, gap filling and the scaling targets work on the table's groups (a
    size fixed by the table); frames are only ever materialised one block at a time, so peak
    memory does not grow with multipliers or totals. Every random draw of a frame comes from
    its own generator, ``named_rng(seed, mix, group label, copy)`` (fill sources first, in
    place order, then the scaling target), so blocks are independent and their size cannot
    change a single value.
    """

    def __init__(self, table: pd.DataFrame | GroupCube, mix_cfg: dict[str, Any], mix: str, axis: SeasonAxis,
                 seed: int, splits_cfg: dict[str, Any] | None = None) -> None:
        self.mix, self.axis, self.seed = mix, axis, seed
        self.policy: MixPolicy = check_mix(mix, mix_cfg)
        self.cube = table if isinstance(table, GroupCube) else build_cube(table, axis)
        p = self.policy
        self.filled, self.kind = fill_gaps(self.cube.values, p.interior, p.exterior, p.stub_week)
        self.labels = self.cube.labels
        has_place = self.cube.has_place
        plan = self._plan(mix_cfg["families"], has_place)
        self.splits: GroupSplits | None = assign_splits(self.cube.keys, plan, splits_cfg, seed, mix)
        self.unfillable_groups = 0
        self._filler = PlaceFiller(self.cube.keys, self.cube.values, self.splits.group if self.splits else None,
                                   match_level=p.fill_scaling == "match_level")
        self.plan = self._check_sources(plan, has_place) if p.fill == "random" else plan
        self.targets, self.zero_peaks_excluded = None, 0
        if self.plan.to_scale.any():
            self.targets, self.zero_peaks_excluded = scaling_targets(mix_cfg.get("scaling_distribution"), self.cube.keys, self.filled,
                                           axis.states_mask, mix)
        self.missing = ~has_place[self.plan.group]
        self.scale = np.ones(len(self.plan))
        self._kinds = np.zeros(len(CELL_KINDS), dtype=np.int64)
        self._ratios: list[np.ndarray] = []
        self._has_place = has_place
        self.shares = ShareCheck(axis.states_mask, self.filled, has_place)

    def _plan(self, families: dict[str, dict], has_place: np.ndarray) -> FramePlan:
        """The frame plan; ``error`` refuses incomplete groups and ``skip`` plans without them."""
        incomplete = ~has_place.all(axis=1)
        if self.policy.fill == "error":
            mixed = self.cube.keys["datasetH1"].isin(list(families)).to_numpy()
            bad = np.flatnonzero(mixed & incomplete)
            if bad.size:
                raise refuse_incomplete(bad, ~has_place[bad], self.labels, self.axis.places, self.mix)
        eligible = ~incomplete if self.policy.fill == "skip" else None
        return plan_frames(self.cube.keys, families, self.mix, self.seed, self.policy.total, eligible)

    def _check_sources(self, plan: FramePlan, has_place: np.ndarray) -> FramePlan:
        """Apply ``no_source`` to planned groups with a place no usable source has."""
        groups = np.unique(plan.group[~has_place[plan.group].all(axis=1)])
        bad = groups[check_fillable(self._filler, groups, ~has_place[groups])]
        self.unfillable_groups = int(bad.size)
        if bad.size == 0 or self.policy.no_source == "zeros":
            return plan
        dropped = np.isin(plan.group, bad)
        if self.policy.no_source == "error" or dropped.all():
            raise TrainsetError(describe_unfillable(self._filler, bad, ~has_place[bad], self.labels,
                                                    self.axis.places, self.mix, nothing_left=bool(dropped.all())))
        logger.warning("mix %s: %d frames of %d groups skipped: a place has no usable fill source (no_source: skip)",
                       self.mix, int(dropped.sum()), bad.size)
        if self.splits is not None:
            self.splits = self.splits.drop(dropped)
        return plan.drop(dropped)

    def __len__(self) -> int:
        return len(self.plan)

    def blocks(self, size: int = BLOCK_FRAMES) -> Iterator[FrameBlock]:
        """Every frame in plan order, ``size`` at a time (one pass; fills :meth:`summary`)."""
        self._kinds[:] = 0
        self._ratios = []
        self.shares = ShareCheck(self.axis.states_mask, self.filled, self._has_place)
        progress = tqdm(total=len(self), desc=f"frames {self.mix}", unit="frame", mininterval=2, disable=None)
        with progress:
            for start in range(0, len(self), size):
                block = self._block(start, min(start + size, len(self)))
                self._kinds += np.bincount(block.kind.ravel(), minlength=len(CELL_KINDS))
                self.shares.add(block.values, block.kind, block.source)
                progress.update(len(block.frames))
                yield block

    def _block(self, start: int, stop: int) -> FrameBlock:
        plan, group = self.plan, self.plan.group[start:stop]
        values, kinds = self.filled[group], self.kind[group]
        source = np.broadcast_to(group[:, None, None].astype(np.int32), values.shape).copy()
        fill_scale = np.ones((group.size, values.shape[2]))
        states = self.axis.states_mask
        for f in np.flatnonzero(self.missing[start:stop].any(axis=1) | plan.to_scale[start:stop]):
            frame = start + f
            rng = named_rng(self.seed, self.mix, self.labels[group[f]], int(plan.copy[frame]))
            places = np.flatnonzero(self.missing[frame])
            if places.size:
                self._fill_places(f, places, group[f], rng, values, kinds, source, fill_scale)
            if plan.to_scale[frame]:
                self.scale[frame] = _rescale(values, f, states, self.targets, rng)
        frames = _frame_table(self.cube, plan, self.scale, self.labels, self.splits, slice(start, stop))
        return FrameBlock(start, values, kinds, source, frames, fill_scale)

    def _fill_places(self, f: int, places: np.ndarray, group: int, rng: np.random.Generator, values: np.ndarray,
                     kinds: np.ndarray, source: np.ndarray, fill_scale: np.ndarray) -> None:
        """Fill the missing places of frame ``f`` of a block in place: values, kind, source, ratio."""
        mode = self.policy.fill
        if mode == "none":
            return
        if mode == "zeros":
            values[f][:, places] = 0.0
            kinds[f][:, places] = ZEROS
            return
        sources, levels, ratios = self._filler.choose(group, places, rng)
        found = sources >= 0
        copied = self.filled[sources[found], :, places[found]] * ratios[found][:, None]
        values[f][:, places[found]] = copied.T
        source[f][:, places[found]] = sources[found]
        fill_scale[f, places[found]] = ratios[found]
        kinds[f][:, places] = levels
        values[f][:, places[~found]] = 0.0  # no_source: zeros
        self._ratios.append(ratios[found])

    def summary(self) -> dict:
        """Counts over the frames made so far (all of them once :meth:`blocks` is exhausted)."""
        summary = _summary(self.plan, self._kinds, self.scale, self.missing, self.policy)
        summary["fill_scale"] = _ratio_summary(self._ratios, self.policy.fill_scaling)
        summary["groups_without_fill_source"] = self.unfillable_groups
        summary["scaling_targets"] = {"count": 0 if self.targets is None else int(self.targets.size),
                                      "groups_with_zero_peak_left_out": self.zero_peaks_excluded}
        summary["splits"] = _split_summary(self.splits)
        keys = self.cube.keys
        observed = ~self.missing
        summary["fill_share_check"] = self.shares.report(self.mix, keys["datasetH1"].to_numpy(dtype=str),
                                                         self.plan.family.astype(str), self.axis.places, observed,
                                                         self.policy.fill_scaling)
        logger.info("mix %s: %d frames, %d with filled places, %d rescaled", self.mix, summary["frames"],
                    summary["frames_filled"], summary["frames_scaled"])
        return summary


def build_frames(
    table: pd.DataFrame | GroupCube, mix_cfg: dict[str, Any], mix: str, axis: SeasonAxis, seed: int,
    splits_cfg: dict[str, Any] | None = None,
) -> Frames:
    """All frames of a mix in memory (small mixes, tests); the stage writes :class:`FrameMixer` blocks.

    Passing the cube lets callers free the long table before the frames are allocated.
    """
    mixer = FrameMixer(table, mix_cfg, mix, axis, seed, splits_cfg)
    blocks = list(mixer.blocks())
    names = ("values", "kind", "source", "fill_scale")
    values, kind, source, fill_scale = (np.concatenate([getattr(b, name) for b in blocks]) for name in names)
    frames = pd.concat([b.frames for b in blocks], ignore_index=True)
    return Frames(values, kind, source, mixer.labels, frames, axis, mixer.summary(), fill_scale)


def _rescale(values: np.ndarray, f: int, states: np.ndarray, targets: np.ndarray, rng) -> float:
    """Scale frame ``f`` so its national peak equals a drawn target; return the factor."""
    target = targets[rng.integers(targets.size)]
    peak = national_peaks(values[f : f + 1], states)[0]
    if not np.isfinite(peak) or peak <= 0:
        return 1.0
    factor = target / peak
    values[f] *= factor
    return float(factor)


def _frame_table(cube: GroupCube, plan: FramePlan, scale: np.ndarray, labels: np.ndarray,
                 splits: GroupSplits | None, rows: slice) -> pd.DataFrame:
    """The frame-level columns of frames ``rows`` (index starting at ``rows.start``)."""
    group, copy = plan.group[rows], plan.copy[rows]
    frames = cube.keys.iloc[group].reset_index(drop=True)
    frames.index += rows.start
    frames["copy"] = copy.astype(np.int64)
    frames["scale"] = scale[rows]
    frames["split"] = splits.frame_names()[rows] if splits is not None else ""
    frames["origin"] = pd.Series(labels[group], index=frames.index) + "#" + frames["copy"].astype(str)
    return frames


def _summary(plan: FramePlan, counts: np.ndarray, scale: np.ndarray, missing: np.ndarray,
             policy: MixPolicy) -> dict:
    """The mix's summary from per-kind cell counts and per-frame scales."""
    return {
        "frames": len(plan),
        "total": policy.total,
        "families": plan.families,
        "frames_filled": int(missing.any(axis=1).sum()),
        "places_filled": int(missing.sum()),
        "frames_scaled": int((plan.to_scale & (scale != 1.0)).sum()),
        "frames_unscalable": int((plan.to_scale & (scale == 1.0)).sum()),
        "cells_left_missing": int(counts[MISSING]),
        "cells_by_kind": {name: int(n) for name, n in zip(CELL_KINDS, counts)},
        "policies": {"fill": policy.fill, "no_source": policy.no_source, "fill_scaling": policy.fill_scaling,
                     "interior": policy.interior, "exterior": policy.exterior, "stub_week": policy.stub_week},
    }


def _ratio_summary(ratios: list[np.ndarray], mode: str) -> dict:
    """How far filled curves were scaled to their frames' level."""
    r = np.concatenate(ratios) if ratios else np.empty(0)
    stats = {"min": float(r.min()), "median": float(np.median(r)), "max": float(r.max())} if r.size else None
    return {"mode": mode, "places_filled": int(r.size), "ratio": stats}


def _split_summary(splits: GroupSplits | None) -> dict:
    """Frames per split, and whether fill sources were kept inside each split."""
    if splits is None:
        return {"assigned_at_mixing": False, "fill_sources_isolated": False,
                "why": "the splits do not keep groups whole (method random/explicit, or by a per-frame coordinate), "
                       "so copies of one curve are in several splits anyway"}
    counts = np.bincount(splits.frame, minlength=len(splits.names))
    return {"assigned_at_mixing": True, "fill_sources_isolated": True,
            "frames": {name: int(n) for name, n in zip(splits.names, counts)}}
