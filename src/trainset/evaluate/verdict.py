"""One run against its best baseline, in the task's headline metric: better, worse, by how much.

The report's first line and the index's flag both come from here, so a page never says a run
beats its baseline while another says it loses. Which way is better is a fact of the task
(:attr:`trainset.tasks.TaskSpec.direction`), never guessed from the metric's name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trainset.tasks import TaskSpec

BETTER = {"min": "lower is better", "max": "higher is better"}
ARROW = {"min": "↓", "max": "↑"}
TIE_TOLERANCE = 1e-12


@dataclass(frozen=True)
class Verdict:
    """The headline number of a run beside its best baseline's.

    ``outcome`` is ``better``, ``worse``, ``tie``, ``no baseline`` (the task has none, e.g.
    generated frames) or ``unknown`` (a score is missing or not finite).
    """

    metric: str
    direction: str
    model: float | None
    baseline: float | None
    baseline_name: str | None

    @property
    def gain(self) -> float | None:
        """How much the model beats the baseline, in metric units (negative: it loses)."""
        if self.model is None or self.baseline is None:
            return None
        diff = self.model - self.baseline
        return diff if self.direction == "max" else -diff

    @property
    def relative(self) -> float | None:
        """:attr:`gain` as a fraction of the baseline's score (None when that is zero)."""
        gain = self.gain
        if gain is None or abs(self.baseline) < TIE_TOLERANCE:
            return None
        return gain / abs(self.baseline)

    @property
    def outcome(self) -> str:
        if self.baseline_name is None and self.baseline is None:
            return "no baseline" if self.model is not None else "unknown"
        gain = self.gain
        if gain is None:
            return "unknown"
        if abs(gain) <= TIE_TOLERANCE:
            return "tie"
        return "better" if gain > 0 else "worse"

    def amount(self) -> str:
        """``0.0123 (8.1%)``: the gap in metric units and relative to the baseline."""
        gain, relative = abs(self.gain or 0.0), self.relative
        return f"{gain:.3g}" + (f" ({abs(relative):.1%})" if relative is not None else "")

    def short(self) -> str:
        """The index cell: ``better by 0.0123 (8.1%)``."""
        outcome = self.outcome
        if outcome in ("better", "worse"):
            return f"{outcome} by {self.amount()}"
        return {"tie": "ties", "no baseline": "no baseline", "unknown": "not comparable"}[outcome]

    def sentence(self) -> str:
        """The report's one-line verdict."""
        score = f"{self.metric} {_number(self.model)} ({BETTER[self.direction]})"
        name = self.baseline_name or "unnamed"
        base = f"the best baseline, {name} ({_number(self.baseline)})"
        outcome = self.outcome
        if outcome in ("better", "worse"):
            return f"{score}: {outcome} than {base}, by {self.amount()}."
        if outcome == "tie":
            return f"{score}: ties {base}."
        if outcome == "no baseline":
            return f"{score}: this task has no baseline to compare with."
        return f"{score}: not comparable with {base}, a score is missing."


def verdict(spec: TaskSpec, metrics: Mapping[str, Any]) -> Verdict:
    """The verdict of a run from its ``metrics.json`` ``metrics`` record and its task."""
    headline = metrics.get("headline", {}) or {}
    return Verdict(spec.metric, spec.direction, _finite(headline.get(spec.metric)),
                   _finite(headline.get(spec.baseline)) if spec.baseline else None,
                   metrics.get("baseline_name") if spec.baseline else None)


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"
