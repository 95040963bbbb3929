"""Evaluation plots returned as PNG bytes, ready to embed in a report or write to disk.

Every function draws on a bare :class:`~matplotlib.figure.Figure` with an Agg canvas (never
pyplot), so no global backend state changes and no figure outlives the call. The PNG carries no
matplotlib version chunk, so equal input gives byte-identical output on any install of the same
matplotlib and the report that embeds it hashes the same. Figures are small (90 dpi): a report
holds dozens of them as inline data URIs.

Missing values (NaN) leave gaps rather than failing: a metric undefined for one threshold (an
AUC with a single class present) or a masked shock should show as absent, not abort a report.

Modules: ``canvas`` (the figure, PNG bytes and shared styling), ``scores`` (learning curves,
ROC-AUC, confusion matrix, error by step or horizon), ``thresholds`` (calibration as reliability small
multiples and ROC curves, one per threshold) and ``samples`` (impulse responses, distributions,
two images side by side).
"""

from __future__ import annotations

from trainset.evaluate.figures.samples import distributions, irf_examples, side_by_side
from trainset.evaluate.figures.scores import (confusion_matrix, learning_curves, per_horizon_error, per_step_metric,
                                              roc_auc_by_threshold)
from trainset.evaluate.figures.thresholds import reliability_grid, roc_curves

__all__ = ["confusion_matrix", "distributions", "irf_examples", "learning_curves", "per_horizon_error",
           "per_step_metric", "reliability_grid", "roc_auc_by_threshold", "roc_curves",
           "side_by_side"]
