"""Reference predictors fitted on the training split only.

A metric means little without a floor: an IRF emulator whose NRMSE is no better than the
training mean, or a flight model no better than per-threshold base rates, has learnt nothing.
The old projects reported none. Each baseline here is fitted on arrays of the *training* split
the caller passes in (never validation or test rows) and then predicts arrays shaped like the
task's targets, so the same metric functions score model and baselines alike.

* :func:`mean_baseline`: regression, the training mean of every output element.
* :func:`linear_baseline`: ridge regression on inputs flattened per sample.
* :func:`climatology_baseline`: class frequencies (classification) or per-threshold base
  rates (threshold targets), the same for every sample.
* :func:`logistic_baseline`: standardised multinomial logistic regression (classification) or
  one binary logistic regression per threshold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from trainset.evaluate._common import as_array, expand_mask, masked_mean

if TYPE_CHECKING:  # scikit-learn is imported where a model is fitted: mean and climatology need none
    from sklearn.pipeline import Pipeline

logger = logging.getLogger(__name__)

MAX_ROWS = 20_000


def _n(x_or_n: Any) -> int:
    return int(x_or_n) if isinstance(x_or_n, (int, np.integer)) else len(x_or_n)


@dataclass
class MeanBaseline:
    """Predicts ``mean`` (one value per output element) for every sample."""

    mean: np.ndarray

    def __call__(self, n: int) -> np.ndarray:
        """[n, *target shape] predictions."""
        return np.broadcast_to(self.mean, (int(n),) + self.mean.shape).copy()

    def predict(self, x: Any) -> np.ndarray:
        """Predictions for the ``len(x)`` samples of ``x`` (the inputs are ignored)."""
        return self(len(x))


def mean_baseline(train_targets: Any, mask: Any = None) -> MeanBaseline:
    """Training mean per output element (mean over the sample axis).

    ``mask`` (True = counts, e.g. ``shock_mask`` for padded IRFs) leaves padding out of the
    means; an element never counted in training predicts 0.
    """
    y = as_array(train_targets, np.float64)
    m = expand_mask(mask, y.shape)
    mean = np.nan_to_num(np.asarray(masked_mean(y, m, 0)), nan=0.0)
    return MeanBaseline(mean=mean)


@dataclass
class LinearBaseline:
    """A fitted standardise + ridge pipeline with predictions reshaped to the target shape."""

    model: Pipeline
    target_shape: tuple[int, ...]

    def predict(self, x: Any) -> np.ndarray:
        x = as_array(x, np.float64)
        return self.model.predict(x.reshape(len(x), -1)).reshape((len(x),) + self.target_shape)


def linear_baseline(train_x: Any, train_y: Any, alpha: float = 1.0) -> LinearBaseline:
    """Ridge regression (scikit-learn ``Ridge``) from inputs to targets, both flattened per sample.

    Inputs [N, ...] become rows of N x (product of the rest) and targets likewise, so one
    linear map predicts every output element: for a macro world, theta [N, P] -> IRFs
    [N, S, H+1, V] flattened (fit one per world, whose parameter vectors have their own
    meaning); for sequences, [N, T, D] -> [N, K]. Inputs are standardised first (``StandardScaler``)
    so the penalty ``alpha`` does not depend on the units of each input.
    """
    x = as_array(train_x, np.float64)
    y = as_array(train_y, np.float64)
    if len(x) != len(y):
        raise ValueError(f"train_x has {len(x)} samples but train_y has {len(y)}")
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), Ridge(alpha=alpha))
    model.fit(x.reshape(len(x), -1), y.reshape(len(y), -1))
    return LinearBaseline(model=model, target_shape=tuple(y.shape[1:]))


@dataclass
class ClimatologyBaseline:
    """Predicts the same training distribution ``probs`` for every sample.

    ``probs`` is [C] class frequencies (classification) or [K] per-threshold base rates;
    ``output_shape`` is the per-sample prediction shape.
    """

    probs: np.ndarray
    output_shape: tuple[int, ...]

    def predict_proba(self, x_or_n: Any) -> np.ndarray:
        """[n, *output_shape] probabilities for ``n`` samples (or ``len(x)``)."""
        return np.broadcast_to(self.probs, (_n(x_or_n),) + self.output_shape).copy()


def _labels(y: np.ndarray, num_classes: int) -> np.ndarray:
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"training labels outside [0, {num_classes}); mask padding out")
    return y.astype(np.int64)


def _is_classification(y: np.ndarray, num_classes: int | None) -> bool:
    """Integer labels (or an explicit ``num_classes``) mean classification; floating or boolean
    {0, 1} targets mean thresholds, as the loaders store them (int64 labels, float32 targets)."""
    return num_classes is not None or y.dtype.kind in "iu"


def _num_classes(labels: np.ndarray, num_classes: int | None) -> int:
    return int(num_classes) if num_classes is not None else int(labels.max()) + 1


def climatology_baseline(train_targets: Any, num_classes: int | None = None,
                         mask: Any = None) -> ClimatologyBaseline:
    """Class frequencies (integer labels) or per-threshold base rates (float {0, 1} targets).

    Classification: labels [N] or [N, T]; the frequencies of the counted labels (pooled over
    steps), predicted as [n, C] or [n, T, C]; C is ``num_classes``, else the largest training
    label + 1 (pass it when the last classes may be absent from training). Threshold targets:
    [N, K] floats in {0, 1}; the base rate of each threshold, predicted as [n, K].
    """
    y = as_array(train_targets)
    m = expand_mask(mask, y.shape)
    if _is_classification(y, num_classes):
        if not m.any():
            raise ValueError("no training labels to count")
        num_classes = _num_classes(y[m], num_classes)
        labels = _labels(y[m], num_classes)
        counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
        return ClimatologyBaseline(counts / counts.sum(), tuple(y.shape[1:]) + (num_classes,))
    rates = np.asarray(masked_mean(y.astype(np.float64), m, 0))
    return ClimatologyBaseline(rates, tuple(y.shape[1:]))


@dataclass
class LogisticBaseline:
    """Fitted logistic regression(s) with :meth:`predict_proba` in the task's shape.

    ``kind`` is ``"classification"`` (one multinomial model, ``classes`` seen in training,
    ``label_shape`` the per-sample label shape) or ``"threshold"`` (one model per threshold,
    ``None`` where that threshold had one class; ``base_rates`` used there).
    """

    kind: str
    models: list[Pipeline | None]
    num_classes: int = 0
    classes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    label_shape: tuple[int, ...] = ()
    base_rates: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def predict_proba(self, x: Any) -> np.ndarray:
        x = as_array(x, np.float64)
        n = len(x)
        if self.kind == "threshold":
            rows = x.reshape(n, -1)
            cols = [np.full(n, self.base_rates[k]) if model is None
                    else model.predict_proba(rows)[:, 1] for k, model in enumerate(self.models)]
            return np.stack(cols, axis=1)
        tail = self.label_shape
        if tuple(x.shape[1:1 + len(tail)]) != tail:
            raise ValueError(f"inputs {x.shape} do not start with the label shape (n,) + {tail}")
        rows = x.reshape(n * int(np.prod(tail, dtype=int)), -1)
        probs = np.zeros((len(rows), self.num_classes))
        if self.models[0] is None:
            probs[:, self.classes[0]] = 1.0
        else:
            probs[:, self.classes] = self.models[0].predict_proba(rows)
        return probs.reshape((n,) + tail + (self.num_classes,))


def _subsample(n: int, max_rows: int | None, seed: int) -> np.ndarray:
    """Indices of at most ``max_rows`` rows, drawn without replacement by ``default_rng(seed)``."""
    if max_rows is None or n <= max_rows:
        return np.arange(n)
    logger.info("logistic baseline: fitting on %d of %d training rows (seed %d)", max_rows, n, seed)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))


def _logistic(max_iter: int, c: float) -> Pipeline:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))


def logistic_baseline(train_x: Any, train_y: Any, num_classes: int | None = None,
                      mask: Any = None, max_rows: int | None = MAX_ROWS, seed: int = 0,
                      max_iter: int = 500, C: float = 1.0) -> LogisticBaseline:
    """Standardised logistic regression on the training split.

    Parameters
    ----------
    train_x
        Inputs whose leading axes are the label shape; the rest is flattened into one row
        per label: labels [N] with inputs [N, T, D] give rows of T*D (seq2static); labels
        [N, T] with inputs [N, T, D] give one row per step (seq2seq); thresholds [N, K] use
        rows of the flattened per-sample inputs.
    train_y
        Integer labels: one multinomial model over ``num_classes`` classes (default: largest
        training label + 1; classes absent from the fitted rows get probability 0). Float
        [N, K] targets in {0, 1}: one binary model per threshold; a threshold with one class
        in the fitted rows predicts the base rate of all its training rows.
    mask
        Optional boolean mask of the label shape (classification: padded steps are dropped).
    max_rows
        To keep the baseline fast, at most this many rows (default 20,000) are used, drawn
        without replacement by ``numpy.random.default_rng(seed)``; ``None`` uses all.
    seed, max_iter, C
        Subsampling seed; ``LogisticRegression`` iterations (lbfgs) and inverse penalty.
    """
    x = as_array(train_x, np.float64)
    y = as_array(train_y)
    if not _is_classification(y, num_classes):
        if y.ndim != 2 or len(x) != len(y):
            raise ValueError(f"threshold targets must be [N, K] with N = len(train_x), got {y.shape}")
        y = y.astype(np.float64)
        rows = x.reshape(len(x), -1)
        idx = _subsample(len(rows), max_rows, seed)
        models: list[Pipeline | None] = []
        for k in range(y.shape[1]):
            yk = y[idx, k]
            models.append(None if yk.min() == yk.max()
                          else _logistic(max_iter, C).fit(rows[idx], yk.astype(np.int64)))
        return LogisticBaseline("threshold", models, base_rates=y.mean(axis=0))

    if tuple(x.shape[:y.ndim]) != y.shape:
        raise ValueError(f"inputs {x.shape} must start with the label shape {y.shape}")
    m = expand_mask(mask, y.shape).reshape(-1)
    if not m.any():
        raise ValueError("no training labels to fit")
    rows = x.reshape(y.size, -1)[m]
    num_classes = _num_classes(y.reshape(-1)[m], num_classes)
    labels = _labels(y.reshape(-1)[m], num_classes)
    idx = _subsample(len(rows), max_rows, seed)
    classes = np.unique(labels[idx])
    model = None if len(classes) < 2 else _logistic(max_iter, C).fit(rows[idx], labels[idx])
    return LogisticBaseline("classification", [model], num_classes=num_classes, classes=classes,
                            label_shape=tuple(y.shape[1:]))
