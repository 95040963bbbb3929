"""The fill-share check: does a filled place weigh in its frames what it weighs where observed?

A place's *share* in a frame is its own peak (max over weeks) divided by the frame's national
peak (max over weeks of the sum over the 51 places). A curve copied in the wrong units shows
up as a share far from the place's usual one: before fill scaling, Florida filled into ILI
percent frames from hospital counts held a median 91% of the national peak, against about 7%
where it is observed. For every filled place the summary gives its median share where filled
and where observed (in the mix's frames, else in the table's groups that observe it), and a
ratio above 3 is a warning in the summary and the log, naming the place, the mix and the
families involved. That is the harmful direction: a filled place that outweighs its usual share
inflates the national peak that ``to_scale`` divides by. A ratio below 1 is listed but not a
warning: a count curve filled into rate frames (ILI percent) keeps its population share, which
is smaller than the near-equal shares states have in rates. Shares are compared within one frame family where possible: ILI percent
gives every state about 2% of the national sum, counts give each its population share.
"""

from __future__ import annotations

import logging
import warnings
from typing import Callable

import numpy as np

from trainset.mixing.gaps import FILL_LEVELS
from trainset.mixing.scaling import national_peaks

logger = logging.getLogger(__name__)

LIMIT = 3.0
"""A filled place's median share may exceed its observed one by at most this factor."""


def place_shares(values: np.ndarray, states: np.ndarray) -> np.ndarray:
    """float64 [n, places]: each place's peak over its frame's national peak (NaN if that is 0)."""
    national = national_peaks(values, states)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN place (fill: none) has no peak
        shares = np.fmax.reduce(values, axis=1) / national[:, None]
    shares[~np.isfinite(shares)] = np.nan
    return shares


class ShareCheck:
    """Accumulates per-frame place shares block by block; :meth:`report` summarises them.

    Memory is [frames, places] (a few bytes a frame), not the frames themselves.
    """

    def __init__(self, states: np.ndarray, groups: np.ndarray, has_place: np.ndarray):
        self.states = states
        self._groups, self._has_place = groups, has_place  # the table's groups, for the reference
        self.shares: list[np.ndarray] = []
        self.filled: list[np.ndarray] = []
        self.sources: list[np.ndarray] = []

    def add(self, values: np.ndarray, kind: np.ndarray, source: np.ndarray) -> None:
        """One block: values, kinds and sources [n, weeks, places]."""
        self.shares.append(place_shares(values, self.states).astype(np.float32))
        filled = np.isin(kind[:, 0, :], FILL_LEVELS)
        self.filled.append(filled)
        self.sources.append(np.where(filled, source[:, 0, :], -1))

    def report(self, mix: str, families: np.ndarray, frame_family: np.ndarray, places: tuple[str, ...],
               observed: np.ndarray, fill_scaling: str) -> dict:
        """Per filled place and frame family: medians, ratio, source families; plus the warnings.

        ``observed`` is bool [frames, places]: the frame's own group has the place. A place is
        compared within the frames of one family first (units differ between families: every
        state holds about 2% of an ILI-percent sum but its population share of a count sum),
        then with every frame that observes it, then with the table's groups.
        """
        if not self.shares:
            return {"limit": LIMIT, "places": {}, "warnings": []}
        shares, filled, sources = (np.concatenate(parts) for parts in (self.shares, self.filled, self.sources))
        result, warnings = {}, []
        for p in np.flatnonzero(filled.any(axis=0)):
            entries = {}
            for family in sorted(set(frame_family[filled[:, p]].tolist())):
                ours = frame_family == family
                entry = _place_entry(shares[:, p], filled[:, p] & ours, observed[:, p], ours,
                                     lambda: self.reference(p))
                entry["source_families"] = sorted(set(families[sources[filled[:, p] & ours, p]].tolist()))
                entries[family] = entry
                if entry["ratio"] is not None and entry["ratio"] > LIMIT:
                    warnings.append(_warning(mix, places[p], family, entry, fill_scaling))
            result[places[p]] = entries
        for warning in warnings:
            logger.warning("%s", warning)
        return {"limit": LIMIT, "places": result, "warnings": warnings}

    def reference(self, place: int) -> float | None:
        """Median share of ``place`` over the table's groups that observe it (computed on demand:
        only for a place no frame of the mix observes)."""
        groups = self._has_place[:, place]
        return _median(place_shares(self._groups[groups], self.states)[:, place])


def _warning(mix: str, place: str, family: str, entry: dict, fill_scaling: str) -> str:
    fix = ("set fill_scaling: match_level" if fill_scaling == "none"
           else "check the units of the families involved, or fill from families in the same units")
    return (f"mix {mix}: place {place} filled in {family} frames from {entry['source_families']} has a median "
            f"share of the national peak of {entry['median_share_filled']:.3g} where filled and "
            f"{entry['median_share_observed']:.3g} where observed ({entry['observed_in']}), ratio "
            f"{entry['ratio']:.3g}. Fix: {fix}")


def _place_entry(shares: np.ndarray, filled: np.ndarray, observed: np.ndarray, family: np.ndarray,
                 reference: Callable[[], float | None]) -> dict:
    """Median share of one place where filled and where observed, and their ratio."""
    where_filled = _median(shares[filled])
    where_observed, basis = _median(shares[observed & family]), "frames of the same family"
    if where_observed is None:
        where_observed, basis = _median(shares[observed]), "frames of other families"
    if where_observed is None:
        where_observed, basis = reference(), "table groups"
    ratio = where_filled / where_observed if where_filled is not None and where_observed else None
    return {"frames_filled": int(filled.sum()), "frames_observed": int((observed & family).sum()),
            "median_share_filled": where_filled, "median_share_observed": where_observed,
            "observed_in": basis, "ratio": ratio}


def _median(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else None
