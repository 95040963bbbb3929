"""A mix's config checked as a whole, before any table is read or any frame is written.

The schema checks each key alone; the rules here are about keys together: the mix's arithmetic
(``total`` and the families' shares), how its families are counted, and its policies. The old
code accepted ``fluview: {proportion: 0.8, total: 100}`` beside ``mymodel: {proportion: 0.5,
total: 100}`` and made 130 frames with shares 0.615/0.385; here such a mix is refused, naming
the numbers. Only the standard library is used, so the workflow can call this at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trainset.errors import TrainsetError

FILL_POLICIES = ("random", "zeros", "none", "skip", "error")
NO_SOURCE_POLICIES = ("error", "zeros", "skip")
FILL_SCALING = ("match_level", "none")
INTERIOR_POLICIES = ("linear", "zero", "none")
EXTERIOR_POLICIES = ("zero", "none")
STUB_WEEK_POLICIES = ("carry", "zero")
_TOLERANCE = 1e-9


@dataclass(frozen=True)
class MixPolicy:
    """How a mix counts, fills and scales its frames (every default spelled out once, here)."""

    total: int | None
    fill: str = "random"
    no_source: str = "error"
    fill_scaling: str = "match_level"
    interior: str = "linear"
    exterior: str = "zero"
    stub_week: str = "carry"


def check_mix(mix: str, cfg: dict[str, Any]) -> MixPolicy:
    """Check what the config alone decides about a mix and return its policies.

    Raises
    ------
    TrainsetError
        Naming the mix, the keys and the numbers: proportions summing to more than 1 (or less,
        without ``allow_partial: true``), families counted both ways, totals that disagree, a
        ``to_scale`` family without ``scaling_distribution``, a family rounding to no frame, or
        an unknown policy.
    """
    families = cfg.get("families") or {}
    if not families:
        raise TrainsetError(f"mixes.{mix}.families: empty. Fix: name at least one datasetH1 family "
                            "(a config overlay cannot empty a mapping: set the mix to null and define it anew)")
    total = _total(mix, cfg, families)
    _check_to_scale(mix, cfg, families)
    gaps = cfg.get("gaps") or {}
    policy = MixPolicy(
        total=total,
        fill=cfg.get("fill_missing_locations", "random") or "none",
        no_source=cfg.get("no_source", "error"),
        fill_scaling=cfg.get("fill_scaling", "match_level"),
        interior=gaps.get("interior", "linear"),
        exterior=gaps.get("exterior", "zero"),
        stub_week=gaps.get("stub_week", "carry"),
    )
    _check_choices(mix, policy)
    return policy


def _total(mix: str, cfg: dict[str, Any], families: dict[str, dict]) -> int | None:
    """The mix's frame total (None for multiplier mixes), its shares checked."""
    where = f"mixes.{mix}"
    counted = {name: ("multiplier" in spec, "proportion" in spec) for name, spec in families.items()}
    both = sorted(name for name, (m, p) in counted.items() if m and p)
    neither = sorted(name for name, (m, p) in counted.items() if not m and not p)
    if both or neither:
        raise TrainsetError(f"{where}.families {both or neither}: give each family exactly one of 'multiplier' "
                            "or 'proportion'")
    by_multiplier = sorted(name for name, (m, _) in counted.items() if m)
    by_proportion = sorted(name for name, (_, p) in counted.items() if p)
    if by_multiplier and by_proportion:
        raise TrainsetError(f"{where}: families {by_multiplier} use 'multiplier' and {by_proportion} use "
                            "'proportion'; a share of a total and a repeat count cannot be combined. Fix: count "
                            "every family of the mix the same way")
    if by_multiplier:
        if "total" in cfg or any("total" in spec for spec in families.values()):
            raise TrainsetError(f"{where}: 'total' only applies to 'proportion' families. Fix: remove it")
        return None
    total = _one_total(where, cfg, families)
    shares = {name: float(spec["proportion"]) for name, spec in families.items()}
    summed = sum(shares.values())
    if summed > 1 + _TOLERANCE:
        raise TrainsetError(f"{where}: proportions {shares} sum to {summed:.6g}, more than 1, so the realised "
                            "shares could not be the configured ones. Fix: make them sum to 1")
    if summed < 1 - _TOLERANCE and not cfg.get("allow_partial", False):
        raise TrainsetError(f"{where}: proportions {shares} sum to {summed:.6g}, less than 1: the mix would hold "
                            f"{sum(round_half_up(p * total) for p in shares.values())} of its total {total} frames. "
                            "Fix: make them sum to 1, or set allow_partial: true")
    zero = sorted(name for name, share in shares.items() if round_half_up(share * total) == 0)
    if zero:
        raise TrainsetError(f"{where}.families {zero}: proportion x total {total} rounds to 0 frames. "
                            "Fix: raise the proportion or the total, or remove the family")
    return total


def _one_total(where: str, cfg: dict[str, Any], families: dict[str, dict]) -> int:
    """``total`` of the mix; the old per-family ``total`` is accepted only when all agree."""
    per_family = {name: int(spec["total"]) for name, spec in families.items() if "total" in spec}
    totals = set(per_family.values()) | ({int(cfg["total"])} if "total" in cfg else set())
    if len(totals) > 1:
        given = {**({"total": int(cfg["total"])} if "total" in cfg else {}), **per_family}
        raise TrainsetError(f"{where}: totals disagree ({given}); a mix has one frame total. "
                            f"Fix: set total: N once on the mix and remove it from the families")
    if not totals:
        raise TrainsetError(f"{where}: proportion families need the mix's total frame count. Fix: add total: N "
                            "to the mix")
    return totals.pop()


def _check_to_scale(mix: str, cfg: dict[str, Any], families: dict[str, dict]) -> None:
    scaled = sorted(name for name, spec in families.items() if spec.get("to_scale", False))
    source = cfg.get("scaling_distribution") or {}
    if scaled and not any(source.get(key) for key in ("from_families", "values", "path")):
        raise TrainsetError(f"mixes.{mix}.scaling_distribution: families {scaled} have to_scale: true but no "
                            "distribution of target peaks is given. Fix: set from_families, values or path")


def _check_choices(mix: str, policy: MixPolicy) -> None:
    choices = {
        "fill_missing_locations": (policy.fill, FILL_POLICIES),
        "no_source": (policy.no_source, NO_SOURCE_POLICIES),
        "fill_scaling": (policy.fill_scaling, FILL_SCALING),
        "gaps.interior": (policy.interior, INTERIOR_POLICIES),
        "gaps.exterior": (policy.exterior, EXTERIOR_POLICIES),
        "gaps.stub_week": (policy.stub_week, STUB_WEEK_POLICIES),
    }
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise TrainsetError(f"mixes.{mix}.{key}: {value!r} unknown. Fix: use one of {list(allowed)}")


def round_half_up(x: float) -> int:
    """``floor(x + 0.5)``: a family's frame count from its share (0.5 rounds up, unlike ``round``)."""
    return int(x + 0.5) if x >= 0 else -int(-x + 0.5)
