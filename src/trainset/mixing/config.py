"""A mix's config checked as a whole, before any table is read or any frame is written.

The schema checks each key alone; the rules here are about keys together: the mix's arithmetic
(``total`` and the families' shares), how its families are counted, and its policies. The old
code accepted ``fluview: {proportion: 0.8, total: 100}`` beside ``mymodel: {proportion: 0.5,
total: 100}`` and made 130 frames with shares 0.615/0.385; here such a mix is refused, naming
the numbers. Only the standard library is used, so the workflow can call this at start-up.
"""

from __future__ import annotations

from dataclasses import Field, dataclass, field, fields
from typing import Any

from trainset.errors import TrainsetError

FILL_POLICIES = ("random", "zeros", "none", "skip", "error")
NO_SOURCE_POLICIES = ("error", "zeros", "skip")
FILL_SCALING = ("match_level", "none")
INTERIOR_POLICIES = ("linear", "zero", "none")
EXTERIOR_POLICIES = ("zero", "none")
STUB_WEEK_POLICIES = ("carry", "zero")
MIX_DEFAULTS = {"allow_partial": False, "scaling_distribution": None, "pad_to": None}
"""Defaults of the mix keys outside :class:`MixPolicy` (the schema's copy is tested against these)."""
FAMILY_DEFAULTS = {"to_scale": False}
"""Defaults of each ``mixes.<mix>.families.<family>`` entry."""
SCALING_SOURCES = ("from_families", "values", "path")
"""The keys of ``scaling_distribution``, one of which names the target peaks."""
_TOLERANCE = 1e-9


def _policy(key: str, default: str, choices: tuple[str, ...], null: str | None = None) -> Any:
    """A :class:`MixPolicy` field read from config key ``key`` (dotted: ``gaps.interior``);
    ``null``: the choice a null value means (None: null is refused like any unknown value)."""
    return field(default=default, metadata={"key": key, "choices": choices, "null": null})


@dataclass(frozen=True)
class MixPolicy:
    """How a mix counts, fills and scales its frames (every default spelled out once, here).

    Each policy field names its config key and allowed values in its metadata; the schema's
    defaults and enums are tested against them (``tests/unit/test_schema_sources.py``).
    """

    total: int | None
    fill: str = _policy("fill_missing_locations", "random", FILL_POLICIES, null="none")
    no_source: str = _policy("no_source", "error", NO_SOURCE_POLICIES)
    fill_scaling: str = _policy("fill_scaling", "match_level", FILL_SCALING)
    interior: str = _policy("gaps.interior", "linear", INTERIOR_POLICIES)
    exterior: str = _policy("gaps.exterior", "zero", EXTERIOR_POLICIES)
    stub_week: str = _policy("gaps.stub_week", "carry", STUB_WEEK_POLICIES)


def policy_fields() -> list[Field]:
    """The :class:`MixPolicy` fields read from the config (all but ``total``)."""
    return [f for f in fields(MixPolicy) if "key" in f.metadata]


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
    policy = MixPolicy(total=total, **{f.name: _configured(cfg, f) for f in policy_fields()})
    _check_choices(mix, policy)
    return policy


def _configured(cfg: dict[str, Any], policy: Field) -> str:
    """The value of one policy field in a mix's config, its default where the key is absent."""
    *section, key = policy.metadata["key"].split(".")
    for name in section:
        cfg = cfg.get(name) or {}
    if key not in cfg:
        return policy.default
    return policy.metadata["null"] if cfg[key] is None else cfg[key]


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
    if summed < 1 - _TOLERANCE and not cfg.get("allow_partial", MIX_DEFAULTS["allow_partial"]):
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
    scaled = sorted(name for name, spec in families.items() if spec.get("to_scale", FAMILY_DEFAULTS["to_scale"]))
    source = cfg.get("scaling_distribution", MIX_DEFAULTS["scaling_distribution"]) or {}
    if scaled and not any(source.get(key) for key in SCALING_SOURCES):
        raise TrainsetError(f"mixes.{mix}.scaling_distribution: families {scaled} have to_scale: true but no "
                            "distribution of target peaks is given. Fix: set from_families, values or path")


def _check_choices(mix: str, policy: MixPolicy) -> None:
    for f in policy_fields():
        value, allowed = getattr(policy, f.name), f.metadata["choices"]
        if value not in allowed:
            raise TrainsetError(f"mixes.{mix}.{f.metadata['key']}: {value!r} unknown. Fix: use one of {list(allowed)}")


def round_half_up(x: float) -> int:
    """``floor(x + 0.5)``: a family's frame count from its share (0.5 rounds up, unlike ``round``)."""
    return int(x + 0.5) if x >= 0 else -int(-x + 0.5)
