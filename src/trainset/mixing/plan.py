"""Which groups become frames, and how many copies of each.

``multiplier: m`` repeats every group of a family m times. ``proportion: p`` (with the mix's
``total: T``) gives the family exactly round(p * T) frames: every group the same number of whole
copies, the remainder drawn without replacement, so the realised mix equals the configured one
(the old formula max(1, round(int(T*p)/groups)) turned a 70/30 mix into 62.8/37.2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from trainset.errors import TrainsetError
from trainset.mixing.config import FAMILY_DEFAULTS, round_half_up
from trainset.rng import named_rng


@dataclass
class FramePlan:
    """Frames in output order: family by family (config order), groups sorted, copies last."""

    group: np.ndarray
    copy: np.ndarray
    to_scale: np.ndarray
    family: np.ndarray
    families: dict[str, dict]

    def __len__(self) -> int:
        return int(self.group.size)

    def update_shares(self) -> None:
        """Each family's realised share of the frames (after planning, and after dropping frames)."""
        family_frames = np.array([entry["frames"] for entry in self.families.values()])
        for entry in self.families.values():
            entry["share_realised"] = entry["frames"] / max(int(family_frames.sum()), 1)

    def drop(self, frames: np.ndarray) -> "FramePlan":
        """The plan without the frames marked in ``frames`` (bool [frames]); copies keep their numbers."""
        keep = ~frames
        families = {name: dict(entry) for name, entry in self.families.items()}
        for name, entry in families.items():
            entry["frames_skipped_no_source"] = int((frames & (self.family == name)).sum())
            entry["frames"] -= entry["frames_skipped_no_source"]
        plan = FramePlan(self.group[keep], self.copy[keep], self.to_scale[keep], self.family[keep], families)
        plan.update_shares()
        return plan


def plan_frames(keys: pd.DataFrame, families: dict[str, dict], mix: str, seed: int, total: int | None = None,
                eligible: np.ndarray | None = None) -> FramePlan:
    """Expand a mix's ``families`` section over the groups of the table.

    ``total`` is the mix's frame total (proportion families, see
    :func:`trainset.mixing.config.check_mix`); ``eligible`` marks the groups that may become
    frames (``fill_missing_locations: skip`` leaves out the incomplete ones): a proportion
    family still gets exactly round(p * total) frames, from its eligible groups.

    Raises
    ------
    TrainsetError
        A family absent from the table, or one with no eligible group.
    """
    available = sorted(keys["datasetH1"].unique())
    family_of = keys["datasetH1"].to_numpy()
    eligible = np.ones(len(keys), dtype=bool) if eligible is None else eligible
    parts, summary = [], {}
    for family, spec in families.items():
        groups = np.flatnonzero(family_of == family)
        if groups.size == 0:
            raise TrainsetError(
                f"mixes.{mix}.families.{family}: no such datasetH1 in the table. "
                f"Fix: use one of {available}"
            )
        kept = groups[eligible[groups]]
        if kept.size == 0:
            raise TrainsetError(f"mixes.{mix}.families.{family}: all {groups.size} groups lack some place, so "
                                "fill_missing_locations: skip leaves 0 frames. Fix: use random, or drop the family")
        counts, target = _copies(family, spec, kept.size, mix, seed, total)
        group = np.repeat(kept, counts)
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        copy = np.arange(group.size) - starts
        to_scale = bool(spec.get("to_scale", FAMILY_DEFAULTS["to_scale"]))
        parts.append((group, copy, np.full(group.size, to_scale),
                      np.full(group.size, family, dtype=object)))
        summary[family] = {
            "groups": int(groups.size),
            "groups_skipped": int(groups.size - kept.size),
            "frames_target": int(target),
            "frames": int(group.size),
            "share_target": spec.get("proportion"),
            "to_scale": to_scale,
        }
    group, copy, to_scale, family = (np.concatenate(columns) for columns in zip(*parts))
    plan = FramePlan(group=group, copy=copy, to_scale=to_scale, family=family, families=summary)
    plan.update_shares()
    return plan


def _copies(family: str, spec: dict, n_groups: int, mix: str, seed: int, total: int | None) -> tuple[np.ndarray, int]:
    """Copies per group of one family, and the family's target frame count."""
    if "multiplier" in spec:
        m = int(spec["multiplier"])
        return np.full(n_groups, m, dtype=np.int64), m * n_groups
    if total is None:
        raise TrainsetError(f"mixes.{mix}.families.{family}: 'proportion' needs the mix's total. Fix: add total: N")
    n = round_half_up(spec["proportion"] * total)
    whole, extra = divmod(n, n_groups)
    counts = np.full(n_groups, whole, dtype=np.int64)
    rng = named_rng(seed, mix, family, "plan")
    counts[np.sort(rng.choice(n_groups, size=extra, replace=False))] += 1
    return counts, n
