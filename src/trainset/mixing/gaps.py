"""Week gaps inside each (group, place) series: interpolate inside, zero outside, carry the stub.

The old code turned interior gaps longer than one week into zeros. Here an interior gap (a
missing week with observed weeks on both sides) is filled by linear interpolation, and weeks
before the first or after the last observation by zero; both are configurable. Every cell gets
a kind code so provenance says which values were observed and which were made up.

Week 53 of a 53-week axis is a stub: it holds the season's last one or two days, so most seasons
have no observation in it. Zero there would draw a cliff from a high week 52 to nothing; by
default (``stub_week: carry``) the stub takes week 52's value when week 52 is observed or
interpolated (kind ``carried_stub``), and stays as the exterior policy made it otherwise.
"""

from __future__ import annotations

import numpy as np

OBSERVED, INTERPOLATED, OUTSIDE, FILL_SEASON, FILL_SAMPLE, FILL_FAMILY, ZEROS, MISSING, CARRIED = range(9)
CELL_KINDS = [
    "observed", "interpolated", "outside_range", "fill_other_season",
    "fill_other_sample", "fill_other_family", "zeros", "missing", "carried_stub",
]  # fmt: skip
"""Name of each cell-kind code, in code order (new kinds are appended: codes never change)."""

FILL_LEVELS = (FILL_SEASON, FILL_SAMPLE, FILL_FAMILY)
"""Kinds of cells copied from another group, in the order the place filler tries them."""

STUB_WEEKS = 53
"""An axis this long ends in a stub week (364 days = 52 weeks, so week 53 holds a day or two)."""


def fill_gaps(
    values: np.ndarray, interior: str = "linear", exterior: str = "zero", stub_week: str = "carry"
) -> tuple[np.ndarray, np.ndarray]:
    """Fill week gaps of every series along axis 1 of ``values`` [groups, weeks, places].

    Parameters
    ----------
    values : ndarray
        NaN marks unobserved cells.
    interior : {"linear", "zero", "none"}
        Gaps with observations on both sides: linear interpolation, zero, or left NaN.
    exterior : {"zero", "none"}
        Weeks before the first or after the last observation: zero or left NaN.
    stub_week : {"carry", "zero"}
        On a 53-week axis, an unobserved week 53 after an observed or interpolated week 52
        takes week 52's value (``carry``) or follows ``exterior`` (``zero``).

    Returns
    -------
    (filled, kind)
        Filled float64 values and an int8 array of cell-kind codes. Series with no observation
        at all (a missing place) keep NaN and get :data:`MISSING`, for the place filler.
    """
    observed = ~np.isnan(values)
    weeks = np.arange(values.shape[1])[None, :, None]
    previous = np.maximum.accumulate(np.where(observed, weeks, -1), axis=1)
    following = np.minimum.accumulate(
        np.where(observed, weeks, values.shape[1])[:, ::-1], axis=1
    )[:, ::-1]
    inside = ~observed & (previous >= 0) & (following < values.shape[1])
    has_any = observed.any(axis=1, keepdims=True)
    outside = ~observed & ~inside & has_any

    kind = np.full(values.shape, OBSERVED, dtype=np.int8)
    kind[inside] = INTERPOLATED
    kind[outside] = OUTSIDE
    kind[~has_any.repeat(values.shape[1], axis=1)] = MISSING

    filled = values.copy()
    if interior == "linear" and inside.any():
        filled[inside] = _interpolate(values, previous, following, weeks, inside)
    elif interior == "zero":
        filled[inside] = 0.0
    if exterior == "zero":
        filled[outside] = 0.0
    if stub_week == "carry" and values.shape[1] == STUB_WEEKS:
        _carry_stub(filled, kind)
    return filled, kind


def _carry_stub(filled: np.ndarray, kind: np.ndarray) -> None:
    """Week 53 takes week 52's value where 53 lies outside the data and 52 is inside it."""
    carry = (kind[:, -1] == OUTSIDE) & np.isin(kind[:, -2], (OBSERVED, INTERPOLATED))
    filled[:, -1][carry] = filled[:, -2][carry]
    kind[:, -1][carry] = CARRIED


def _interpolate(values, previous, following, weeks, inside) -> np.ndarray:
    """Linear interpolation between the neighbouring observations of each gap cell."""
    lo = np.take_along_axis(values, np.clip(previous, 0, None), axis=1)[inside]
    hi = np.take_along_axis(values, np.clip(following, None, values.shape[1] - 1), axis=1)[inside]
    t = np.broadcast_to(weeks, values.shape)[inside]
    p, f = previous[inside], following[inside]
    return lo + (hi - lo) * (t - p) / (f - p)
