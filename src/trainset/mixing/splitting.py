"""Train/val/test decided per group before any place is filled, so fills cannot leak.

A missing place is copied from another group. If that group's own frames are in ``train`` and
the filled frame is in ``test``, the test frame holds a training curve and every held-out score
is flattered. So when a mix's splits keep whole groups together (method ``group`` or ``time``
by a per-group coordinate, the default for flu mixes), the mixer assigns every group of the
table to a split first, with the same seeded :func:`trainset.splits.make_splits` the dataset
stage would use, and the place filler draws only from groups of the frame's own split. The
assignment is stored with the frames (a ``split`` column, then a NetCDF coordinate) and the
``make_splits`` rule reads it back, so the two can never disagree.

Groups that hold no frame of the mix (families used only as fill sources) are assigned too: a
unit (a value of ``splits.by``) that has frames keeps their split; any other unit is drawn with
the shares of ``fractions``, from a BLAKE2 digest of the seed, the mix and the unit (so adding
a group to the table never moves another).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from trainset.mixing.plan import FramePlan
from trainset.splits import make_splits, with_defaults

GROUP_LEVEL = ("group", "datasetH1", "datasetH2", "fluseason", "source_sample")
"""Per-sample coordinates that are the same for every copy of a group (so a split by them
keeps groups whole)."""


def sample_coordinates(frames: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per-frame provenance coordinates of a frame table (datasetH1, datasetH2, fluseason,
    sample, copy, scale): the NetCDF's sample coordinates, and what group splits read.

    ``group`` is ``H1/H2/season/sample``; ``origin`` adds ``#copy``. Integer sample ids stay
    integers, text ids stay text.
    """
    group = (
        frames["datasetH1"].astype(str) + "/" + frames["datasetH2"].astype(str) + "/"
        + frames["fluseason"].astype(str) + "/" + frames["sample"].astype(str)
    )  # fmt: skip
    samples = frames["sample"]
    text = not pd.api.types.is_integer_dtype(samples)
    coords = {"origin": (group + "#" + frames["copy"].astype(str)).to_numpy(dtype=str)} if "copy" in frames else {}
    coords |= {
        "group": group.to_numpy(dtype=str),
        "datasetH1": frames["datasetH1"].astype(str).to_numpy(dtype=str),
        "datasetH2": frames["datasetH2"].astype(str).to_numpy(dtype=str),
        "fluseason": frames["fluseason"].to_numpy(dtype=np.int64),
        "source_sample": samples.astype(str).to_numpy(dtype=str) if text else samples.to_numpy(dtype=np.int64),
    }
    if "copy" in frames:
        coords["copy"] = frames["copy"].to_numpy(dtype=np.int64)
    if "scale" in frames:
        coords["scale"] = frames["scale"].to_numpy(dtype=np.float64)
    return coords


@dataclass
class GroupSplits:
    """The split of every planned frame and of every group of the table.

    Attributes
    ----------
    names : list of str
        Split names in ``fractions`` order; ``frame`` and ``group`` index into it.
    frame : ndarray
        int [frames] split of each planned frame.
    group : ndarray
        int [groups] split of each table group (fill sources included).
    """

    names: list[str]
    frame: np.ndarray
    group: np.ndarray

    def frame_names(self) -> np.ndarray:
        """Split name of each planned frame."""
        return np.asarray(self.names, dtype=object)[self.frame]

    def drop(self, frames: np.ndarray) -> "GroupSplits":
        """The same assignment without the frames marked in ``frames`` (bool [frames])."""
        return GroupSplits(self.names, self.frame[~frames], self.group)


def keeps_groups_whole(splits_cfg: dict[str, Any] | None) -> bool:
    """True when a splits config sends every copy of a group to the same split."""
    cfg = with_defaults(splits_cfg)
    return cfg["method"] in ("group", "time") and cfg["by"] in GROUP_LEVEL


def assign_splits(keys: pd.DataFrame, plan: FramePlan, splits_cfg: dict[str, Any] | None, seed: int,
                  mix: str) -> GroupSplits | None:
    """Assign frames and table groups to splits, or None when the splits do not keep groups whole
    (or no splits are given: library use without a dataset, ``splits_cfg=None``).

    Frames get exactly what :func:`trainset.splits.make_splits` gives for the mix's frames (so
    the shares follow ``fractions`` over frames, as before); groups inherit their unit's split.
    """
    if splits_cfg is None or not keeps_groups_whole(splits_cfg):
        return None
    cfg = with_defaults(splits_cfg)
    method, by = cfg["method"], cfg["by"]
    frames = keys.iloc[plan.group].reset_index(drop=True)
    labels = sample_coordinates(frames)[by]
    splits = make_splits(len(plan), cfg, seed, groups=labels if method == "group" else None,
                         times=labels if method == "time" else None)
    names = list(splits)
    frame = np.full(len(plan), -1, dtype=np.int64)
    for k, name in enumerate(names):
        frame[splits[name]] = k
    units = sample_coordinates(keys)[by]
    return GroupSplits(names, frame, _unit_splits(units, labels, frame, names, cfg, seed, mix))


def _unit_splits(units: np.ndarray, frame_units: np.ndarray, frame_split: np.ndarray, names: list[str],
                 cfg: dict[str, Any], seed: int, mix: str) -> np.ndarray:
    """Split of every group's unit: the one its frames got, else a seeded draw by ``fractions``."""
    codes, uniques = pd.factorize(units)
    split = np.full(len(uniques), -1, dtype=np.int64)
    split[pd.Index(uniques).get_indexer(frame_units)] = frame_split  # one split per unit: groups stay whole
    fractions = cfg["fractions"]
    bounds = np.cumsum([float(fractions[name]) for name in names])
    unmixed = np.flatnonzero(split < 0)
    draws = np.array([_uniform(seed, mix, uniques[u]) for u in unmixed]) * bounds[-1]
    split[unmixed] = np.minimum(np.searchsorted(bounds, draws, side="right"), len(names) - 1)
    return split[codes]


def _uniform(seed: int, mix: str, unit: object) -> float:
    """A number in [0, 1) named by (seed, mix, unit): stable whatever the other units are."""
    digest = hashlib.blake2b(f"{seed}\x1f{mix}\x1ffill-source-split\x1f{unit}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0**64
