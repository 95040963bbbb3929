"""Plots of scores: learning curves, ROC-AUC, confusion matrix, error by step or horizon.

Each takes plain numbers (what the metrics modules return) and gives PNG bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import LogFormatterSciNotation, MaxNLocator

from trainset.errors import TrainsetError
from trainset.evaluate.figures.canvas import (PALETTE, all_positive, as_series, as_vector, blank_figure, draw_lines,
                                              png_bytes, tidy)


# ----------------------------------------------------------------------------- training
def learning_curves(history: list[dict]) -> bytes:
    """PNG of :func:`learning_curves_figure`."""
    return png_bytes(learning_curves_figure(history))


def learning_curves_figure(history: list[dict]) -> Figure:
    """Train and validation loss per epoch, the LR on a twin axis, the best epoch marked.

    Parameters
    ----------
    history : list of dict
        Epoch records as the trainer writes ``history.json``: ``epoch``, ``train_loss``,
        ``val_loss`` and ``lr`` (any may be missing or None). The loss axis is logarithmic
        when every finite loss is positive, since losses span decades; so is the LR axis
        when the LR varies by more than 10x.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (epoch ticks are whole numbers: a 3-epoch run shows no epoch 2.5).

    Raises
    ------
    TrainsetError
        Empty history, or a record that is not a dict.
    """
    if not history or not all(isinstance(h, Mapping) for h in history):
        raise TrainsetError("history must be a non-empty list of epoch dicts "
                            "(the trainer's history.json)")
    epochs = as_vector([h.get("epoch", i + 1) for i, h in enumerate(history)], "history epoch")
    train = as_vector([h.get("train_loss") for h in history], "history train_loss")
    val = as_vector([h.get("val_loss") for h in history], "history val_loss")
    lr = as_vector([h.get("lr") for h in history], "history lr")

    fig = blank_figure(6.4, 3.6)
    ax = fig.add_subplot()
    ax.plot(epochs, train, color=PALETTE[0], lw=1.8, marker="o", ms=3, label="train loss")
    ax.plot(epochs, val, color=PALETTE[1], lw=1.8, marker="o", ms=3, label="val loss")
    if all_positive(train, val):
        ax.set_yscale("log")
        # Label some minor ticks too: a loss spanning one decade otherwise shows two labels.
        ax.yaxis.set_minor_formatter(LogFormatterSciNotation(labelOnlyBase=False,
                                                             minor_thresholds=(2, 0.5)))
    handles, labels = ax.get_legend_handles_labels()
    if np.isfinite(val).any():
        best = int(np.nanargmin(val))
        ax.axvline(epochs[best], color="0.35", lw=1, ls=":", zorder=1)
        ax.plot(epochs[best], val[best], marker="*", ms=13, color=PALETTE[1], mec="black",
                mew=0.6, ls="none", zorder=4)
        handles.append(Line2D([], [], marker="*", ms=10, color=PALETTE[1], mec="black",
                              mew=0.6, ls="none"))
        labels.append(f"best epoch {epochs[best]:g} (val {val[best]:.4g})")
    if np.isfinite(lr).any():
        twin = ax.twinx()
        twin.plot(epochs, lr, color="0.45", lw=1.2, ls="--")
        finite = lr[np.isfinite(lr)]
        if (finite > 0).all() and finite.max() > 10 * finite.min():
            twin.set_yscale("log")
        twin.set_ylabel("learning rate", fontsize=9, color="0.35")
        twin.tick_params(labelsize=8, colors="0.35")
        twin.spines["top"].set_visible(False)
        handles.append(Line2D([], [], color="0.45", lw=1.2, ls="--"))
        labels.append("learning rate")
    tidy(ax)
    _epoch_ticks(ax, epochs)
    ax.set_xlabel("epoch", fontsize=9)
    ax.set_ylabel("loss", fontsize=9)
    ax.set_title("Learning curves", fontsize=11)
    ax.legend(handles, labels, fontsize=8, frameon=False, loc="upper right")
    return fig


def _epoch_ticks(ax, epochs: np.ndarray) -> None:
    """Whole-number epoch ticks: a short run gets one tick per epoch, never an epoch 2.5."""
    finite = np.unique(epochs[np.isfinite(epochs)])
    if finite.size and finite.max() - finite.min() < 5:
        ax.set_xticks(finite)
        ax.set_xlim(finite.min() - 0.5, finite.max() + 0.5)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


# ----------------------------------------------------------------------------- classification
def roc_auc_by_threshold(thresholds: Sequence[float], auc_model: Sequence[float],
                         auc_baselines: Mapping[str, Sequence[float]] | None = None) -> bytes:
    """ROC-AUC of the model and of baselines at each decision threshold.

    Parameters
    ----------
    thresholds : sequence of float
        The x axis (e.g. flight-score thresholds 0, 10, ..., 100).
    auc_model : sequence of float
        Model AUC per threshold; None/NaN where undefined (one class only).
    auc_baselines : dict of str to sequence of float, optional
        Baseline name -> AUC per threshold, drawn dashed.

    Returns
    -------
    bytes
        PNG image.

    Raises
    ------
    TrainsetError
        Lengths differ from ``thresholds``.
    """
    x = as_vector(thresholds, "thresholds")
    series = as_series({"model": auc_model, **dict(auc_baselines or {})}, "auc")
    if len(next(iter(series.values()))) != len(x):
        raise TrainsetError(f"auc lists must have one value per threshold ({len(x)})")
    fig = blank_figure(6.0, 3.6)
    ax = fig.add_subplot()
    ax.axhline(0.5, color="0.6", lw=1, ls=":", label="chance (0.5)")
    draw_lines(ax, x, series, marker="o")
    finite = np.concatenate([v[np.isfinite(v)] for v in series.values()] + [np.array([0.5])])
    ax.set_ylim(max(0.0, min(0.5, float(finite.min())) - 0.03), 1.0)
    tidy(ax)
    ax.set_xlabel("threshold", fontsize=9)
    ax.set_ylabel("ROC-AUC", fontsize=9)
    ax.set_title("ROC-AUC by threshold", fontsize=11)
    ax.legend(fontsize=8, frameon=False, loc="best")
    return png_bytes(fig)


def confusion_matrix(matrix, labels: Sequence[str]) -> bytes:
    """Counts per (true, predicted) class; colour is the row share so rare classes show.

    Parameters
    ----------
    matrix : array-like, shape (K, K)
        ``matrix[i, j]`` = samples of true class ``i`` predicted as ``j``.
    labels : sequence of str
        K class names. Counts are written in the cells when K <= 20.

    Returns
    -------
    bytes
        PNG image.

    Raises
    ------
    TrainsetError
        Matrix not square or labels of the wrong length.
    """
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise TrainsetError(f"confusion matrix must be square (K, K), got shape {m.shape}")
    k = m.shape[0]
    if len(labels) != k:
        raise TrainsetError(f"confusion matrix is {k}x{k} but {len(labels)} labels were given")
    totals = m.sum(axis=1, keepdims=True)
    share = np.divide(m, totals, out=np.zeros_like(m), where=totals > 0)
    side = min(9.0, 2.6 + 0.42 * k)
    fig = blank_figure(side + 1.0, side)
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of true class")
    ticks = np.arange(k)
    names = [str(label) for label in labels]
    tilt = k > 4 and max(len(name) for name in names) > 3
    ax.set_xticks(ticks, names, rotation=45 if tilt else 0, ha="right" if tilt else "center")
    ax.set_yticks(ticks, names)
    ax.tick_params(labelsize=8)
    if k <= 20:
        size = 9 if k <= 8 else 7
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{m[i, j]:.0f}" if m[i, j] == int(m[i, j]) else f"{m[i, j]:.3g}",
                        ha="center", va="center", fontsize=size,
                        color="white" if share[i, j] > 0.55 else "black")
    ax.set_xlabel("predicted", fontsize=9)
    ax.set_ylabel("true", fontsize=9)
    ax.set_title("Confusion matrix", fontsize=11)
    return png_bytes(fig)


# ----------------------------------------------------------------------------- regression
def per_horizon_error(rmse_by_horizon: Mapping[str, Sequence[float]]) -> bytes:
    """RMSE at each IRF horizon; the first entry (the model) thick, baselines dashed.

    Parameters
    ----------
    rmse_by_horizon : dict of str to sequence of float
        Name -> RMSE at horizons 0..H (all of one length).

    Returns
    -------
    bytes
        PNG image.
    """
    series = as_series(rmse_by_horizon, "rmse_by_horizon")
    x = np.arange(len(next(iter(series.values()))))
    fig = blank_figure(6.0, 3.6)
    ax = fig.add_subplot()
    draw_lines(ax, x, series, marker=None)
    if all_positive(*series.values()):
        ax.set_ylim(bottom=0)
    tidy(ax)
    ax.set_xlabel("horizon", fontsize=9)
    ax.set_ylabel("RMSE", fontsize=9)
    ax.set_title("Error by horizon", fontsize=11)
    return png_bytes(fig)


def per_step_metric(values: Mapping[str, Sequence[float]], ylabel: str) -> bytes:
    """A seq2seq metric (accuracy, RMSE) at each time step; first entry drawn as the model.

    Parameters
    ----------
    values : dict of str to sequence of float
        Name -> metric at steps 1..T.
    ylabel : str
        What the metric is, e.g. ``"accuracy"``.

    Returns
    -------
    bytes
        PNG image.
    """
    series = as_series(values, "values")
    x = np.arange(1, len(next(iter(series.values()))) + 1)
    fig = blank_figure(6.0, 3.6)
    ax = fig.add_subplot()
    draw_lines(ax, x, series, marker="o" if len(x) <= 40 else None)
    tidy(ax)
    ax.set_xlabel("time step", fontsize=9)
    ax.set_ylabel(str(ylabel), fontsize=9)
    ax.set_title(f"{ylabel} by time step", fontsize=11)
    return png_bytes(fig)


__all__ = ["confusion_matrix", "learning_curves", "per_horizon_error", "per_step_metric", "roc_auc_by_threshold"]
