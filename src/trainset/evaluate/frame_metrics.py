"""Distribution metrics for generated flu frames against held-out frames (seed 000).

A frame is one epidemic season on the grid season week x place ([W, P]; the 51 places are the
50 states and DC). A generative model is judged by whether its frames *look like* real seasons,
not by a per-frame error: there is no paired truth. So both sets are summarised and compared
as distributions: weekly values per place, and per frame the national epidemic curve (sum over
places) with its peak size and its peak week (1-based season week of the maximum, the first
one on ties). The two sets are compared with two-sample Kolmogorov-Smirnov statistics on peak
size and peak week (peak week is discrete, so the KS p-value is conservative) and with the
Wasserstein (earth mover's) distance, in data units, of the national-sum values.

The national sum runs over every place of the array unless ``place_mask`` selects places;
frames stored padded to 64 x 64 for an image model must be cut to weeks x places first, or the
padded places masked out (padded weeks, being zero, do not move a peak of a positive curve).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from trainset.evaluate._common import as_array, floats, summary

logger = logging.getLogger(__name__)

QUANTILES = (0.1, 0.5, 0.9)


def _frames(frames: Any, place_mask: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """[N, W, P'] float64 frames restricted to the selected places, and the place indices."""
    x = as_array(frames, np.float64)
    if x.ndim == 4 and x.shape[1] == 1:  # [N, 1, W, P] as the loaders yield
        x = x[:, 0]
    if x.ndim != 3 or x.shape[0] == 0:
        raise ValueError(f"{what} frames must be a non-empty [N, W, P] or [N, 1, W, P] array, "
                         f"got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what} frames contain NaN or inf; fill or drop them before evaluating")
    places = np.arange(x.shape[2])
    if place_mask is not None:
        pm = as_array(place_mask).astype(bool).reshape(-1)
        if pm.shape != (x.shape[2],):
            raise ValueError(f"place_mask has {pm.size} entries for {x.shape[2]} places")
        places = places[pm]
        x = x[:, :, pm]
    return x, places


def national_peaks(frames: Any, place_mask: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame national peak size and peak week (1-based, first maximum).

    Parameters
    ----------
    frames
        [N, W, P] or [N, 1, W, P].
    place_mask
        Optional [P] boolean selection of the places summed (default all).

    Returns
    -------
    tuple of numpy arrays
        ``peak_size`` [N] float (max over weeks of the sum over places) and ``peak_week`` [N]
        int in 1..W.
    """
    x, _ = _frames(frames, place_mask, "the")
    national = x.sum(axis=2)
    return national.max(axis=1), national.argmax(axis=1) + 1


def _per_place(x: np.ndarray) -> dict[str, list]:
    flat = x.reshape(-1, x.shape[2])
    q = np.quantile(flat, QUANTILES, axis=0)
    return {"mean": floats(flat.mean(axis=0)), "p10": floats(q[0]), "median": floats(q[1]),
            "p90": floats(q[2])}


def _by_week(national: np.ndarray) -> dict[str, list]:
    q = np.quantile(national, QUANTILES, axis=0)
    return {"mean": floats(national.mean(axis=0)), "p10": floats(q[0]), "median": floats(q[1]),
            "p90": floats(q[2])}


def _compare(gen: np.ndarray, held: np.ndarray) -> dict[str, Any]:
    from scipy.stats import ks_2samp, wasserstein_distance  # here: only frame reports pay for scipy.stats

    ks = ks_2samp(gen, held)
    return {"generated": summary(gen), "held_out": summary(held),
            "ks_statistic": float(ks.statistic), "ks_pvalue": float(ks.pvalue),
            "wasserstein": float(wasserstein_distance(gen, held))}


def frame_distribution_metrics(generated: Any, held_out: Any,
                               place_mask: Any = None) -> dict[str, Any]:
    """Compare generated and held-out frames as distributions.

    Parameters
    ----------
    generated, held_out
        [N, W, P] or [N, 1, W, P] frames in data units (inverse-transform model output
        first); the counts N may differ, W and P may not.
    place_mask
        Optional [P] boolean selection of places (default: every place of the array).

    Returns
    -------
    dict
        ``places`` (indices used), ``n_frames`` ``{generated, held_out}``;
        ``per_place`` ``{generated|held_out: {mean, p10, median, p90}}``, lists over places of
        the weekly values pooled over frames and weeks; ``national_by_week``
        ``{generated|held_out: {mean, p10, median, p90}}``, lists over weeks of the national
        sum; ``peak_size`` and ``peak_week``: ``{generated: summary, held_out: summary,
        ks_statistic, ks_pvalue, wasserstein}`` where a summary is mean, std (ddof=0), p10,
        median, p90 and count of the per-frame values (the values themselves:
        :func:`national_peaks`); ``national_wasserstein``: Wasserstein
        distance between the national-sum values (all frames and weeks) of the two sets.
    """
    g, places = _frames(generated, place_mask, "generated")
    h, _ = _frames(held_out, place_mask, "held-out")
    if g.shape[1:] != h.shape[1:]:
        raise ValueError(f"generated {g.shape[1:]} and held-out {h.shape[1:]} frames must have the "
                         "same weeks x places")
    from scipy.stats import wasserstein_distance

    g_nat, h_nat = g.sum(axis=2), h.sum(axis=2)
    logger.debug("comparing %d generated with %d held-out frames", len(g), len(h))
    return {
        "places": places.tolist(),
        "n_frames": {"generated": int(g.shape[0]), "held_out": int(h.shape[0])},
        "per_place": {"generated": _per_place(g), "held_out": _per_place(h)},
        "national_by_week": {"generated": _by_week(g_nat), "held_out": _by_week(h_nat)},
        "peak_size": _compare(g_nat.max(axis=1), h_nat.max(axis=1)),
        "peak_week": _compare((g_nat.argmax(axis=1) + 1).astype(float),
                              (h_nat.argmax(axis=1) + 1).astype(float)),
        "national_wasserstein": float(wasserstein_distance(g_nat.ravel(), h_nat.ravel())),
    }
