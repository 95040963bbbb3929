"""Plots of threshold targets (flights): reliability small multiples and ROC curves, every threshold drawn.

The old evaluation notebook drew a calibration curve with its prediction histogram and a ROC
curve for each of the eleven thresholds (anchors section 3). A single overlaid reliability plot
hides the thresholds where calibration fails (high thresholds are rare and their few predictions
sit near 0), so calibration is drawn as small multiples, one panel per threshold, each with its
own histogram; the ROC curves share one panel, since they are read against each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from trainset.errors import TrainsetError
from trainset.evaluate.figures.canvas import as_vector, blank_figure, colors_for, png_bytes, tidy

_CURVE_KEYS = ("bin_centres", "mean_predicted", "observed", "counts")


def _curve(name: str, curve: Mapping[str, Sequence]) -> dict[str, np.ndarray]:
    missing = [k for k in _CURVE_KEYS if not isinstance(curve, Mapping) or k not in curve]
    if missing:
        raise TrainsetError(f"reliability curve {name!r} lacks {missing}; each curve needs {list(_CURVE_KEYS)}")
    arrays = {k: as_vector(curve[k], f"curves[{name!r}][{k!r}]") for k in _CURVE_KEYS}
    if len({len(a) for a in arrays.values()}) != 1 or not len(arrays["counts"]):
        raise TrainsetError(f"reliability curve {name!r}: {list(_CURVE_KEYS)} must have equal, non-zero lengths")
    return arrays


def reliability_grid(curves: Mapping[str, Mapping[str, Sequence]], columns: int = 4) -> bytes:
    """One reliability panel per threshold (small multiples), each above its prediction histogram.

    Parameters
    ----------
    curves : dict
        Panel title (``"t=10"``) -> :func:`~trainset.evaluate.threshold_metrics.calibration_curve`
        dict (``bin_centres``, ``mean_predicted``, ``observed``, ``counts``), in panel order.
        Empty bins are left out of the curve; histograms are on a log scale when counts span
        more than two decades.
    columns : int
        Panels per row.

    Returns
    -------
    bytes
        PNG image.

    Raises
    ------
    TrainsetError
        No curves, a missing key, or arrays of unequal lengths within a curve.
    """
    if not isinstance(curves, Mapping) or not curves:
        raise TrainsetError("curves must be a non-empty dict of threshold -> calibration curve")
    parsed = {str(name): _curve(str(name), curve) for name, curve in curves.items()}
    cols = max(1, min(int(columns), len(parsed)))
    rows = -(-len(parsed) // cols)
    fig = blank_figure(2.6 * cols, 3.1 * rows)
    grid = fig.add_gridspec(2 * rows, cols, height_ratios=[3, 1] * rows)
    for i, (name, a) in enumerate(parsed.items()):
        row, col = divmod(i, cols)
        top = fig.add_subplot(grid[2 * row, col])
        bottom = fig.add_subplot(grid[2 * row + 1, col], sharex=top)
        empty = ~(a["counts"] > 0)
        top.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
        top.plot(np.where(empty, np.nan, a["mean_predicted"]), np.where(empty, np.nan, a["observed"]),
                 color=colors_for(1)[0], lw=1.4, marker="o", ms=3)
        top.set_xlim(0, 1)
        top.set_ylim(0, 1)
        top.set_title(f"{name} (n={int(np.nansum(a['counts']))})", fontsize=9)
        top.tick_params(labelbottom=False)
        width = np.diff(a["bin_centres"]).min() if len(a["bin_centres"]) > 1 else 0.1
        bottom.bar(a["bin_centres"], np.nan_to_num(a["counts"]), width=0.9 * width, color="0.6")
        positive = a["counts"][np.isfinite(a["counts"]) & (a["counts"] > 0)]
        if positive.size and positive.max() > 100 * positive.min():
            bottom.set_yscale("log")
        if col == 0:
            top.set_ylabel("observed", fontsize=8)
            bottom.set_ylabel("count", fontsize=8)
        if row == rows - 1:
            bottom.set_xlabel("predicted", fontsize=8)
        for ax in (top, bottom):
            tidy(ax)
    fig.suptitle("Reliability per threshold (10 bins) with prediction histograms", fontsize=11)
    return png_bytes(fig)


def roc_curves(curves: Mapping[str, tuple[Sequence[float], Sequence[float]] | None],
               aucs: Mapping[str, float | None]) -> bytes:
    """ROC curves, one per threshold, with each AUC in the legend.

    Parameters
    ----------
    curves : dict
        Threshold label -> ``(fpr, tpr)`` (e.g. from :func:`sklearn.metrics.roc_curve`), or
        None where the threshold has one class only (the legend then says AUC undefined).
    aucs : dict
        Threshold label -> ROC-AUC (None/NaN when undefined), same keys as ``curves``.

    Returns
    -------
    bytes
        PNG image.

    Raises
    ------
    TrainsetError
        No curves, keys that differ between ``curves`` and ``aucs``, or fpr/tpr of unequal length.
    """
    if not isinstance(curves, Mapping) or not curves or set(curves) != set(aucs):
        raise TrainsetError("roc_curves needs a non-empty dict of threshold -> (fpr, tpr) and an AUC for each")
    fig = blank_figure(6.0, 5.0)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls=":", label="chance")
    for color, (name, curve) in zip(colors_for(len(curves)), curves.items()):
        auc = aucs[name]
        defined = auc is not None and np.isfinite(auc)
        label = f"{name} (AUC {auc:.3f})" if defined else f"{name} (AUC undefined: one class)"
        if curve is None:
            ax.plot([], [], color=color, lw=1.4, label=label)
            continue
        fpr, tpr = as_vector(curve[0], f"{name} fpr"), as_vector(curve[1], f"{name} tpr")
        if fpr.shape != tpr.shape:
            raise TrainsetError(f"ROC curve {name!r}: fpr and tpr lengths differ ({fpr.size}, {tpr.size})")
        ax.plot(fpr, tpr, color=color, lw=1.4, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    tidy(ax)
    ax.set_xlabel("false positive rate", fontsize=9)
    ax.set_ylabel("true positive rate", fontsize=9)
    ax.set_title("ROC curve per threshold", fontsize=11)
    ax.legend(fontsize=7, frameon=False, loc="lower right", ncols=2 if len(curves) > 6 else 1)
    return png_bytes(fig)


__all__ = ["reliability_grid", "roc_curves"]
