"""Regression and classification metrics, and the one import point for all of evaluation.

The old trainers reported only a validation loss (seed 001) or a loss plus hand-made plots
(seed 002), so runs could not be compared on anything a reader of the task cares about. These
functions turn predictions of any task in the sequence formats (anchors section 2) into plain
dicts: floats, ints and nested lists that ``json.dump`` accepts once NaN is mapped to ``null``.

Conventions
-----------
* Inputs are numpy arrays, lists or CPU tensors (detached here; torch is never imported).
* ``mask`` is boolean, True = counts. It is broadcast to the target shape; a mask with the
  target's *leading* shape (a [N,T] step mask for [N,T,K] predictions) is accepted as is.
* ``float("nan")`` marks an undefined value: an empty selection, an R^2 of a constant target.
* Axis 0 is the sample axis; for sequence-to-sequence arrays axis 1 is time, and ``per_step``
  reports metrics along it so degradation with lead time is visible.

This module also re-exports the threshold, IRF, frame and baseline functions, so
``from trainset.evaluate.metrics import irf_metrics, threshold_metrics, ...`` works.

scikit-learn and scipy.stats are imported inside the functions that call them, never at module
level: an evaluation job is a fresh process, importing scikit-learn takes ~0.8 s (with the
scipy.stats and pandas it pulls in), and a frames report calls none of it
(tests/evaluate/test_eval_imports.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from trainset.evaluate._common import (NAN, as_array, check_same_shape, expand_mask, floats,
                                       masked_mean, names_for)
from trainset.evaluate.baselines import (ClimatologyBaseline, LinearBaseline, LogisticBaseline,
                                         MeanBaseline, climatology_baseline, linear_baseline,
                                         logistic_baseline, mean_baseline)
from trainset.evaluate.frame_metrics import frame_distribution_metrics, national_peaks
from trainset.evaluate.irf_metrics import irf_metrics, irf_metrics_by, irf_train_std
from trainset.evaluate.threshold_metrics import (calibration_curve, expected_calibration_error,
                                                 monotonicity_violations, roc_points, threshold_metrics)

__all__ = [
    "regression_metrics", "classification_metrics", "softmax",
    "threshold_metrics", "calibration_curve", "expected_calibration_error",
    "monotonicity_violations", "roc_points",
    "irf_metrics", "irf_metrics_by", "irf_train_std",
    "frame_distribution_metrics", "national_peaks",
    "mean_baseline", "linear_baseline", "climatology_baseline", "logistic_baseline",
    "MeanBaseline", "LinearBaseline", "ClimatologyBaseline", "LogisticBaseline",
]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- regression

def regression_metrics(pred: Any, true: Any, mask: Any = None, variable_axis: int = -1,
                       names: Sequence[str] | None = None) -> dict[str, Any]:
    """RMSE, MAE and R^2 overall, per variable and (sequences) per time step.

    Parameters
    ----------
    pred, true
        Same shape: [N] (one target), [N,K] (seq2static regression), [N,T,K] (seq2seq
        regression or reconstruction, then [N,T,D]) or any [N,...,K].
    mask
        Optional boolean mask (True = counts), e.g. [N,T] for padded steps.
    variable_axis
        Axis of the variables (default last); not 0, which is the sample axis. A 1-D input
        is one variable.
    names
        Variable names, keys of ``per_variable`` (default ``"0"``, ``"1"``, ...).

    Returns
    -------
    dict
        ``rmse``, ``mae``, ``r2``, ``count`` (counted elements); ``per_variable``:
        ``{name: {rmse, mae, r2, count}}``; ``per_step`` (only when ``ndim >= 3``):
        ``{rmse: [T], mae: [T], count: [T]}`` along the time axis, the first axis after the
        sample axis that is not the variable axis (axis 1 for [N,T,K]).

    Notes
    -----
    R^2 of variable v is ``1 - SSE_v / SST_v`` with SST about the mean of the counted true
    values of v, NaN when that variance is zero. The overall R^2 is the mean over variables
    with a defined R^2 (scikit-learn's ``uniform_average``), so a variable with a large scale
    does not dominate it; RMSE and MAE overall pool all elements.
    """
    p = as_array(pred, np.float64)
    t = as_array(true, np.float64)
    check_same_shape(p, t)
    if p.ndim == 0:
        raise ValueError("pred must have a sample axis")
    m = expand_mask(mask, p.shape)
    if p.ndim == 1:
        p, t, m = p[:, None], t[:, None], m[:, None]
    axis = variable_axis % p.ndim
    if axis == 0:
        raise ValueError("variable_axis cannot be 0 (the sample axis)")
    p, t, m = (np.moveaxis(a, axis, -1) for a in (p, t, m))
    n_var = p.shape[-1]
    keys = names_for(names, n_var, "names")
    sq = (p - t) ** 2
    ab = np.abs(p - t)
    lead = tuple(range(p.ndim - 1))

    count_v = m.sum(axis=lead)
    rmse_v = np.sqrt(masked_mean(sq, m, lead))
    mae_v = masked_mean(ab, m, lead)
    mean_t = masked_mean(t, m, lead)
    sse = np.where(m, sq, 0.0).sum(axis=lead)
    sst = np.where(m, (t - np.where(np.isfinite(mean_t), mean_t, 0.0)) ** 2, 0.0).sum(axis=lead)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2_v = np.where((sst > 0) & (count_v > 0), 1.0 - sse / np.where(sst > 0, sst, 1.0), np.nan)
    defined = np.isfinite(r2_v)

    out: dict[str, Any] = {
        "rmse": float(np.sqrt(masked_mean(sq, m))),
        "mae": float(masked_mean(ab, m)),
        "r2": float(r2_v[defined].mean()) if defined.any() else NAN,
        "count": int(m.sum()),
        "per_variable": {k: {"rmse": float(rmse_v[i]), "mae": float(mae_v[i]),
                             "r2": float(r2_v[i]), "count": int(count_v[i])}
                         for i, k in enumerate(keys)},
    }
    if p.ndim >= 3:
        other = (0,) + tuple(range(2, p.ndim))
        out["per_step"] = {"rmse": floats(np.sqrt(masked_mean(sq, m, other))),
                           "mae": floats(masked_mean(ab, m, other)),
                           "count": m.sum(axis=other).astype(int).tolist()}
    return out


# ----------------------------------------------------------------------- classification

def softmax(logits: Any, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax in float64."""
    z = as_array(logits, np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def _as_probs(probs: np.ndarray) -> np.ndarray:
    """Probabilities checked (non-negative, rows sum to 1 within 1e-3) and renormalised.

    Renormalising absorbs float32 rounding, which scikit-learn's ``log_loss`` rejects; a row
    that is far from a distribution means logits were passed with ``is_logits=False``.
    """
    if probs.size and (probs.min() < -1e-6 or np.abs(probs.sum(-1) - 1.0).max() > 1e-3):
        raise ValueError("probabilities must be non-negative and sum to 1 over the class axis; "
                         "pass is_logits=True for raw model outputs")
    probs = np.clip(probs, 0.0, None)
    return probs / probs.sum(-1, keepdims=True)


def classification_metrics(logits_or_probs: Any, labels: Any, num_classes: int,
                           is_logits: bool = True, mask: Any = None) -> dict[str, Any]:
    """Accuracy, macro F1, log loss, class counts and confusion matrix.

    Parameters
    ----------
    logits_or_probs
        [N,C] (seq2static) or [N,T,C] (seq2seq): class scores on the last axis.
    labels
        Integer labels of shape ``logits_or_probs.shape[:-1]``, in ``[0, num_classes)``
        wherever counted (padding must be masked out, not clipped).
    num_classes
        C; the confusion matrix and log loss always cover all C classes.
    is_logits
        True: softmax is applied; False: the scores are probabilities (checked, renormalised).
    mask
        Optional boolean mask of the label shape (True = counts), e.g. padded steps.

    Returns
    -------
    dict
        ``accuracy``, ``macro_f1`` (scikit-learn ``f1_score``, average over the classes present
        in the labels or predictions, ``zero_division=0``), ``per_class_f1`` [C] (absent
        classes 0), ``log_loss`` (scikit-learn, ``labels=range(C)``), ``count``,
        ``class_counts`` ``{true: [C], pred: [C]}``, ``confusion_matrix`` [C][C] (rows true,
        columns predicted), and for labels with ``ndim >= 2`` ``per_step``
        ``{accuracy: [T], count: [T]}`` along axis 1. With nothing counted the metrics are NaN.
    """
    from sklearn.metrics import confusion_matrix, f1_score, log_loss  # here: a frames report needs none

    scores = as_array(logits_or_probs, np.float64)
    y_all = as_array(labels)
    c = int(num_classes)
    if scores.shape[:-1] != y_all.shape or scores.shape[-1] != c:
        raise ValueError(f"scores {scores.shape} must be labels {y_all.shape} + ({c},)")
    probs = softmax(scores) if is_logits else _as_probs(scores)
    m = expand_mask(mask, y_all.shape)
    y = y_all[m].astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= c):
        raise ValueError(f"labels outside [0, {c}) among counted entries (min {y.min()}, max "
                         f"{y.max()}); mask padding out instead of passing it as a label")
    p = probs[m]
    pred = p.argmax(-1)
    out: dict[str, Any] = {"count": int(y.size),
                           "class_counts": {"true": np.bincount(y, minlength=c).tolist(),
                                            "pred": np.bincount(pred, minlength=c).tolist()},
                           "confusion_matrix": confusion_matrix(y, pred, labels=range(c)).tolist()
                           if y.size else np.zeros((c, c), int).tolist()}
    if y.size:
        out["accuracy"] = float(np.mean(pred == y))
        out["macro_f1"] = float(f1_score(y, pred, average="macro", zero_division=0.0))
        out["per_class_f1"] = floats(f1_score(y, pred, labels=range(c), average=None,
                                              zero_division=0.0))
        out["log_loss"] = float(log_loss(y, p, labels=range(c)))
    else:
        out.update(accuracy=NAN, macro_f1=NAN, per_class_f1=[NAN] * c, log_loss=NAN)
    if y_all.ndim >= 2:
        correct = probs.argmax(-1) == y_all
        other = (0,) + tuple(range(2, y_all.ndim))
        out["per_step"] = {"accuracy": floats(masked_mean(correct.astype(float), m, other)),
                           "count": m.sum(axis=other).astype(int).tolist()}
    return out

