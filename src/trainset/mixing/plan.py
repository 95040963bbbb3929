"""Which groups become frames, and how many copies of each.

``multiplier: m`` repeats every group of a family m times. ``proportion: p`` with ``total: T``
gives the family exactly round(p * T) frames: every group the same number of whole copies, the
remainder drawn without replacement, so the realised mix equals the configured one (the old
formula max(1, round(int(T*p)/groups)) turned a 70/30 mix into 62.8/37.2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from trainset.errors import TrainsetError
from trainset.mixing.rng import named_rng


@dataclass
class FramePlan:
    """Frames in output order: family by family (config order), groups sorted, copies last."""

    group: np.ndarray
    copy: np.ndarray
    to_scale: np.ndarray
    families: dict[str, dict]


def plan_frames(keys: pd.DataFrame, families: dict[str, dict], mix: str, seed: int) -> FramePlan:
    """Expand a mix's ``families`` section over the groups of the table.

    Raises
    ------
    TrainsetError
        A family absent from the table, or a family spec with neither or both of
        ``multiplier`` and ``proportion``.
    """
    available = sorted(keys["datasetH1"].unique())
    parts, summary = [], {}
    for family, spec in families.items():
        groups = np.flatnonzero(keys["datasetH1"].to_numpy() == family)
        if groups.size == 0:
            raise TrainsetError(
                f"mixes.{mix}.families.{family}: no such datasetH1 in the table. "
                f"Fix: use one of {available}"
            )
        counts, target = _copies(family, spec, groups.size, mix, seed)
        group = np.repeat(groups, counts)
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        copy = np.arange(group.size) - starts
        parts.append((group, copy, np.full(group.size, bool(spec.get("to_scale", False)))))
        summary[family] = {
            "groups": int(groups.size),
            "frames_target": int(target),
            "frames": int(group.size),
            "share_target": spec.get("proportion"),
            "to_scale": bool(spec.get("to_scale", False)),
        }
    group, copy, to_scale = (np.concatenate(columns) for columns in zip(*parts))
    if group.size == 0:
        raise TrainsetError(f"mixes.{mix}: every family rounds to zero frames. Fix: raise total or the proportions")
    for entry in summary.values():
        entry["share_realised"] = entry["frames"] / group.size
    return FramePlan(group=group, copy=copy, to_scale=to_scale, families=summary)


def _copies(family: str, spec: dict, n_groups: int, mix: str, seed: int) -> tuple[np.ndarray, int]:
    """Copies per group of one family, and the family's target frame count."""
    where = f"mixes.{mix}.families.{family}"
    if ("multiplier" in spec) == ("proportion" in spec):
        raise TrainsetError(f"{where}: give exactly one of 'multiplier' or 'proportion' (with 'total')")
    if "multiplier" in spec:
        m = int(spec["multiplier"])
        return np.full(n_groups, m, dtype=np.int64), m * n_groups
    if "total" not in spec:
        raise TrainsetError(f"{where}: 'proportion' needs 'total' (the mix's total frame count)")
    n = int(np.floor(spec["proportion"] * spec["total"] + 0.5))
    whole, extra = divmod(n, n_groups)
    counts = np.full(n_groups, whole, dtype=np.int64)
    rng = named_rng(seed, mix, family, "plan")
    counts[np.sort(rng.choice(n_groups, size=extra, replace=False))] += 1
    return counts, n
