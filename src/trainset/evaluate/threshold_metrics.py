"""Metrics for ordered threshold targets: "the flight score exceeds t_k" (seed 002).

The model gives K probabilities per sample, one per threshold t_1 < ... < t_K, with targets in
{0, 1}. The old evaluation notebook drew per-threshold ROC curves, 10-bin calibration curves
with prediction histograms, per-site AUC and Brier scores and counted monotonicity violations
(anchors section 3); here the same numbers come back as one dict, so runs and baselines can be
compared and stored.

Calibration bins are equal-width on [0, 1] and assigned exactly as scikit-learn's
``calibration_curve(strategy="uniform")`` does (``searchsorted`` on the interior edges: bin 0 is
[0, 0.1], later bins are (a, b]), so ``prob_true``/``prob_pred`` match it on non-empty bins.

Since the targets are nested (exceeding t_k implies exceeding t_{k-1}), a sensible model has
p_k <= p_{k-1}; a violation is p_k > p_{k-1} + 1e-9.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from trainset.evaluate._common import (NAN, as_array, floats, group_indices, group_label,
                                       safe_div, summary)

logger = logging.getLogger(__name__)

MONOTONE_TOL = 1e-9


def calibration_curve(probs: Any, targets: Any, bins: int = 10) -> dict[str, Any]:
    """Reliability-curve data over ``bins`` equal-width bins of the predicted probability.

    Parameters
    ----------
    probs, targets
        Any shape (flattened together); probabilities in [0, 1], targets in {0, 1}.
    bins
        Number of equal-width bins on [0, 1].

    Returns
    -------
    dict
        ``edges`` [bins+1], ``bin_centres`` [bins], ``mean_predicted`` [bins] and ``observed``
        [bins] (observed frequency of 1s; both NaN for empty bins), ``counts`` [bins] (ints;
        also the histogram of predictions). The keys are those
        :func:`trainset.evaluate.figures.reliability_grid` draws.
    """
    p = as_array(probs, np.float64).ravel()
    y = as_array(targets, np.float64).ravel()
    if p.shape != y.shape:
        raise ValueError(f"probs and targets must have the same size, got {p.size} and {y.size}")
    edges = np.linspace(0.0, 1.0, int(bins) + 1)
    ids = np.searchsorted(edges[1:-1], p)
    counts = np.bincount(ids, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pred = np.where(counts > 0, np.bincount(ids, p, bins) / counts, np.nan)
        observed = np.where(counts > 0, np.bincount(ids, y, bins) / counts, np.nan)
    return {"edges": floats(edges), "bin_centres": floats((edges[:-1] + edges[1:]) / 2),
            "mean_predicted": floats(mean_pred), "observed": floats(observed),
            "counts": counts.astype(int).tolist()}


def _ece(curve: dict[str, Any]) -> float:
    counts = np.asarray(curve["counts"], float)
    gap = np.abs(np.asarray(curve["observed"]) - np.asarray(curve["mean_predicted"]))
    n = counts.sum()
    return float(np.sum(np.where(counts > 0, counts * np.nan_to_num(gap), 0.0)) / n) if n else NAN


def expected_calibration_error(probs: Any, targets: Any, bins: int = 10) -> float:
    """ECE: sum over bins of (bin count / N) * |observed frequency - mean predicted|.

    Bins as in :func:`calibration_curve`; NaN for empty input.
    """
    return _ece(calibration_curve(probs, targets, bins))


def monotonicity_violations(probs: Any, tol: float = MONOTONE_TOL) -> dict[str, Any]:
    """Count (sample, adjacent threshold pair) with ``p_k > p_{k-1} + tol``.

    Returns
    -------
    dict
        ``violations`` and ``pairs`` (N*(K-1)) and their ``rate``; ``samples_with_violation``
        (samples with any violating pair) and ``sample_rate``; ``per_pair_rate`` [K-1]
        (pair k-1 -> k). Rates are NaN when there are no pairs.
    """
    p = as_array(probs, np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must be [N, K], got shape {p.shape}")
    bad = p[:, 1:] > p[:, :-1] + tol
    n_samples = int(bad.any(axis=1).sum())
    return {"violations": int(bad.sum()), "pairs": int(bad.size),
            "rate": safe_div(bad.sum(), bad.size),
            "samples_with_violation": n_samples, "sample_rate": safe_div(n_samples, p.shape[0]),
            "per_pair_rate": floats(bad.mean(axis=0)) if p.shape[0] else [NAN] * bad.shape[1]}


def _roc(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) of binary targets ``y`` (both classes present) and finite scores ``p``.

    The arithmetic of :func:`sklearn.metrics.roc_curve` (``drop_intermediate=True``), step for
    step, so curves and AUCs are bit-identical to scikit-learn's (tests/evaluate/test_metrics.py
    compares them on random and tied scores). Why not call it: its input checks cost ~2.5 ms a
    call, and a flights report scores ~250 curves (one per site), so the checks, not the sort,
    took a tenth of the evaluation. Counts are exact integers in float64, so the order of tied
    scores cannot change them.
    """
    order = np.argsort(p, kind="stable")[::-1]  # descending score
    ranked, hits = p[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(ranked)), ranked.size - 1]  # the last row of each distinct score
    tps = np.cumsum(hits, dtype=np.float64)[last]
    fps = 1 + last.astype(np.float64) - tps
    if fps.size > 2:  # drop points collinear with their neighbours (not corners of the curve)
        corner = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        fps, tps = fps[corner], tps[corner]
    fps, tps = np.r_[0.0, fps], np.r_[0.0, tps]
    return fps / fps[-1], tps / tps[-1]


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC-AUC, NaN when only one class is present (AUC undefined).

    The trapezoidal area under :func:`_roc`, summed as :func:`sklearn.metrics.auc` does
    (``scipy.integrate.trapezoid``), so it equals :func:`sklearn.metrics.roc_auc_score` bit for bit.
    """
    if y.size == 0 or y.min() == y.max():
        return NAN
    fpr, tpr = _roc(y, p)
    return float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2.0, dtype=np.float64))


def roc_points(targets: Any, probs: Any) -> tuple[list[float], list[float]] | None:
    """(false positive rates, true positive rates) of one threshold's ROC curve; None with one class.

    Those of :func:`sklearn.metrics.roc_curve` with ``drop_intermediate=True`` (collinear points
    dropped, so the curve stays small for a figure; see :func:`_roc`). Not stored in metrics.json,
    which keeps the AUC: a curve has up to one point per distinct prediction.
    """
    y = as_array(targets, np.float64).ravel()
    p = as_array(probs, np.float64).ravel()
    if y.size == 0 or y.min() == y.max():
        return None
    if y.shape != p.shape or not np.all(np.isfinite(p)) or not np.all((y == 0) | (y == 1)):
        raise ValueError(f"targets must be 0 or 1 and probs finite, of one size (got {y.size} and {p.size})")
    fpr, tpr = _roc(y, p)
    return floats(fpr), floats(tpr)


def _binary_scores(y: np.ndarray, p: np.ndarray, bins: int) -> dict[str, Any]:
    from sklearn.metrics import log_loss  # here, not at module level: see trainset.evaluate.metrics

    curve = calibration_curve(p, y, bins)
    return {"count": int(y.size), "positives": int(y.sum()), "base_rate": float(y.mean()),
            "mean_prob": float(p.mean()), "auc": _auc(y, p),
            "brier": float(np.mean((p - y) ** 2)),
            "log_loss": float(log_loss(y, p, labels=[0, 1])),
            "accuracy": float(np.mean((p >= 0.5) == (y == 1))),
            "ece": _ece(curve), "calibration": curve}


def threshold_metrics(probs: Any, targets: Any, thresholds: Sequence[float],
                      groups: Any = None, bins: int = 10) -> dict[str, Any]:
    """Per-threshold, pooled, per-group and monotonicity metrics of threshold probabilities.

    Parameters
    ----------
    probs
        [N, K] predicted probabilities in [0, 1] for thresholds in increasing order.
    targets
        [N, K] in {0, 1}.
    thresholds
        The K threshold values, strictly increasing (e.g. 0, 10, ..., 100 km).
    groups
        Optional [N] labels (site ids). Per-group AUC and Brier pool the group's thresholds
        and are kept only for groups whose pooled targets contain both classes.
    bins
        Calibration bins (equal width).

    Returns
    -------
    dict
        ``per_threshold``: columns, each a list in threshold order: ``threshold``, ``count``,
        ``positives``, ``base_rate``, ``mean_prob``, ``auc`` (NaN when the threshold has one
        class only), ``brier``, ``log_loss``, ``accuracy`` (predicting 1 when p >= 0.5),
        ``ece`` and ``calibration`` (one :func:`calibration_curve` dict per threshold).
        ``pooled``: the same keys as scalars over all (sample, threshold) pairs, plus
        ``histogram`` (``edges``, ``counts``: the predictions in the calibration bins).
        ``monotonicity``: :func:`monotonicity_violations`.
        With ``groups``: ``per_group`` ``{label: {auc, brier, count, positives}}`` and
        ``group_summary`` ``{auc: summary, brier: summary, n_groups, n_skipped}`` where a
        summary holds mean, std, p10, median, p90 and count over the groups kept.
    """
    p = as_array(probs, np.float64)
    y = as_array(targets, np.float64)
    t = np.asarray(thresholds, dtype=np.float64)
    if p.ndim != 2 or p.shape != y.shape:
        raise ValueError(f"probs and targets must both be [N, K], got {p.shape} and {y.shape}")
    if t.shape != (p.shape[1],):
        raise ValueError(f"{t.size} thresholds given for {p.shape[1]} probability columns")
    if np.any(np.diff(t) <= 0):
        raise ValueError(f"thresholds must be strictly increasing, got {t.tolist()}")
    if p.shape[0] == 0:
        raise ValueError("no samples to evaluate")
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise ValueError("probs must be finite and in [0, 1]; apply a sigmoid to logits first")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("targets must be 0 or 1")

    rows = [_binary_scores(y[:, k], p[:, k], bins) for k in range(len(t))]
    per_threshold = {"threshold": floats(t), **{key: [r[key] for r in rows] for key in rows[0]}}
    pooled = _binary_scores(y.ravel(), p.ravel(), bins)
    pooled["histogram"] = {"edges": pooled["calibration"]["edges"],
                           "counts": pooled["calibration"]["counts"]}
    out: dict[str, Any] = {"per_threshold": per_threshold, "pooled": pooled,
                           "monotonicity": monotonicity_violations(p)}
    if groups is not None:
        per_group: dict[str, dict[str, Any]] = {}
        index = group_indices(groups, p.shape[0])
        for label, idx in index.items():
            yg, pg = y[idx].ravel(), p[idx].ravel()
            if yg.min() == yg.max():
                continue
            per_group[group_label(label)] = {"auc": _auc(yg, pg),
                                             "brier": float(np.mean((pg - yg) ** 2)),
                                             "count": int(yg.size), "positives": int(yg.sum())}
        n_all = len(index)
        out["per_group"] = per_group
        out["group_summary"] = {"auc": summary([g["auc"] for g in per_group.values()]),
                                "brier": summary([g["brier"] for g in per_group.values()]),
                                "n_groups": len(per_group), "n_skipped": n_all - len(per_group)}
        logger.debug("per-group metrics for %d groups, %d skipped (one class)",
                     len(per_group), n_all - len(per_group))
    return out
