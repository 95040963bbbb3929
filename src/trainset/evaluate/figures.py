"""Evaluation plots returned as PNG bytes, ready to embed in a report or write to disk.

Every function draws on a bare :class:`~matplotlib.figure.Figure` with an Agg canvas (never
pyplot), so no global backend state changes and no figure outlives the call. The PNG carries no
matplotlib version chunk, so equal input gives byte-identical output on any install of the same
matplotlib and the report that embeds it hashes the same. Figures are small (90 dpi): a report
holds dozens of them as inline data URIs.

Missing values (NaN) leave gaps rather than failing: a metric undefined for one threshold (an
AUC with a single class present) or a masked shock should show as absent, not abort a report.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import imread
from matplotlib.lines import Line2D
from matplotlib.ticker import LogFormatterSciNotation

from trainset.errors import TrainsetError

logger = logging.getLogger(__name__)

DPI = 90
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
MODEL_WIDTH, BASELINE_WIDTH = 2.2, 1.3
CALIBRATION_BINS = 10
HIST_BINS = 30


# ----------------------------------------------------------------------------- helpers
def _figure(width: float, height: float) -> Figure:
    """A pyplot-free figure with its Agg canvas attached."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    """Render to PNG bytes without the version chunk, so bytes depend only on the input."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _colors(n: int) -> list:
    """Distinct colours: the categorical palette for few lines, viridis for many (ordered)."""
    if n <= len(PALETTE):
        return list(PALETTE[:n])
    return [colormaps["viridis"](x) for x in np.linspace(0.0, 0.92, n)]


def _vector(values, name: str) -> np.ndarray:
    """1-D float array with None as NaN; reject anything that is not a flat sequence."""
    try:
        arr = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    except (TypeError, ValueError) as exc:
        raise TrainsetError(f"{name} must be a sequence of numbers (None for missing): {exc}")
    if arr.ndim != 1:
        raise TrainsetError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _series(values: Mapping[str, Sequence], name: str) -> dict[str, np.ndarray]:
    """Name -> vector, non-empty and all of one length (they share an x axis)."""
    if not isinstance(values, Mapping) or not values:
        raise TrainsetError(f"{name} must be a non-empty dict of name -> list of numbers")
    out = {str(k): _vector(v, f"{name}[{k!r}]") for k, v in values.items()}
    lengths = {k: len(v) for k, v in out.items()}
    if len(set(lengths.values())) != 1 or 0 in lengths.values():
        raise TrainsetError(f"{name}: every series needs the same non-zero length, got {lengths}")
    return out


def _positive(*arrays: np.ndarray) -> bool:
    """True when every finite value is > 0 and at least one exists (log scale is safe)."""
    finite = np.concatenate([a[np.isfinite(a)] for a in arrays])
    return finite.size > 0 and bool((finite > 0).all())


def _tidy(ax: Axes, grid: bool = True) -> None:
    """Light styling shared by every panel."""
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if grid:
        ax.grid(True, color="0.9", linewidth=0.6)
        ax.set_axisbelow(True)
    ax.tick_params(labelsize=8)


def _lines(ax: Axes, x: np.ndarray, series: dict[str, np.ndarray], marker: str | None) -> None:
    """First series (the model) thick, the rest (baselines) thinner and dashed."""
    for i, (name, y) in enumerate(series.items()):
        first = i == 0
        ax.plot(x, y, color=_colors(len(series))[i], lw=MODEL_WIDTH if first else BASELINE_WIDTH,
                ls="-" if first else "--", marker=marker, ms=4 if first else 3, label=name,
                zorder=3 if first else 2)
    ax.legend(fontsize=8, frameon=False)


# ----------------------------------------------------------------------------- training
def learning_curves(history: list[dict]) -> bytes:
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
    bytes
        PNG image.

    Raises
    ------
    TrainsetError
        Empty history, or a record that is not a dict.
    """
    if not history or not all(isinstance(h, Mapping) for h in history):
        raise TrainsetError("history must be a non-empty list of epoch dicts "
                            "(the trainer's history.json)")
    epochs = _vector([h.get("epoch", i + 1) for i, h in enumerate(history)], "history epoch")
    train = _vector([h.get("train_loss") for h in history], "history train_loss")
    val = _vector([h.get("val_loss") for h in history], "history val_loss")
    lr = _vector([h.get("lr") for h in history], "history lr")

    fig = _figure(6.4, 3.6)
    ax = fig.add_subplot()
    ax.plot(epochs, train, color=PALETTE[0], lw=1.8, marker="o", ms=3, label="train loss")
    ax.plot(epochs, val, color=PALETTE[1], lw=1.8, marker="o", ms=3, label="val loss")
    if _positive(train, val):
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
    _tidy(ax)
    ax.set_xlabel("epoch", fontsize=9)
    ax.set_ylabel("loss", fontsize=9)
    ax.set_title("Learning curves", fontsize=11)
    ax.legend(handles, labels, fontsize=8, frameon=False, loc="upper right")
    return _png(fig)


# ----------------------------------------------------------------------------- classification
def reliability_diagram(curves: Mapping[str, Mapping[str, Sequence]]) -> bytes:
    """Calibration curves against the diagonal, with prediction counts per bin below.

    Parameters
    ----------
    curves : dict
        Name (a threshold such as ``"t=50"``, or ``"pooled"``) -> dict with ``bin_centres``,
        ``mean_predicted``, ``observed`` (observed frequency) and ``counts`` per bin, typically
        10 bins on [0, 1]. Empty bins (count 0 or NaN values) are left out of the curve. The
        count axis is logarithmic when counts span more than two decades, which is the norm:
        most predictions sit near 0 or 1.

    Returns
    -------
    bytes
        PNG image.

    Raises
    ------
    TrainsetError
        No curves, a missing key, or arrays of different lengths within one curve.
    """
    if not isinstance(curves, Mapping) or not curves:
        raise TrainsetError("curves must be a non-empty dict of name -> {bin_centres, "
                            "mean_predicted, observed, counts}")
    keys = ("bin_centres", "mean_predicted", "observed", "counts")
    parsed = {}
    for name, curve in curves.items():
        missing = [k for k in keys if not isinstance(curve, Mapping) or k not in curve]
        if missing:
            raise TrainsetError(f"reliability curve {name!r} lacks {missing}; each curve needs "
                                f"{list(keys)}")
        arrays = {k: _vector(curve[k], f"curves[{name!r}][{k!r}]") for k in keys}
        if len({len(a) for a in arrays.values()}) != 1:
            raise TrainsetError(f"reliability curve {name!r}: {list(keys)} must have equal "
                                f"lengths, got {[len(a) for a in arrays.values()]}")
        parsed[str(name)] = arrays

    fig = _figure(5.6, 6.0)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1.3))
    top.plot([0, 1], [0, 1], color="0.55", lw=1, ls="--", label="perfect calibration")
    colors = _colors(len(parsed))
    all_counts = []
    for color, (name, a) in zip(colors, parsed.items()):
        empty = ~(a["counts"] > 0)
        x = np.where(empty, np.nan, a["mean_predicted"])
        y = np.where(empty, np.nan, a["observed"])
        top.plot(x, y, color=color, lw=1.5, marker="o", ms=3.5, label=name)
        bottom.step(a["bin_centres"], a["counts"], where="mid", color=color, lw=1.2)
        all_counts.append(a["counts"])
    counts = np.concatenate(all_counts)
    positive = counts[np.isfinite(counts) & (counts > 0)]
    if positive.size and positive.max() > 100 * positive.min():
        bottom.set_yscale("log")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("observed frequency", fontsize=9)
    top.set_title("Reliability diagram", fontsize=11)
    top.legend(fontsize=7 if len(parsed) > 6 else 8, frameon=False, loc="upper left",
               ncols=2 if len(parsed) > 6 else 1)
    bottom.set_xlabel("mean predicted probability", fontsize=9)
    bottom.set_ylabel("predictions\nper bin", fontsize=9)
    for ax in (top, bottom):
        _tidy(ax)
    return _png(fig)


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
    x = _vector(thresholds, "thresholds")
    series = _series({"model": auc_model, **dict(auc_baselines or {})}, "auc")
    if len(next(iter(series.values()))) != len(x):
        raise TrainsetError(f"auc lists must have one value per threshold ({len(x)})")
    fig = _figure(6.0, 3.6)
    ax = fig.add_subplot()
    ax.axhline(0.5, color="0.6", lw=1, ls=":", label="chance (0.5)")
    _lines(ax, x, series, marker="o")
    finite = np.concatenate([v[np.isfinite(v)] for v in series.values()] + [np.array([0.5])])
    ax.set_ylim(max(0.0, min(0.5, float(finite.min())) - 0.03), 1.0)
    _tidy(ax)
    ax.set_xlabel("threshold", fontsize=9)
    ax.set_ylabel("ROC-AUC", fontsize=9)
    ax.set_title("ROC-AUC by threshold", fontsize=11)
    ax.legend(fontsize=8, frameon=False, loc="best")
    return _png(fig)


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
    fig = _figure(side + 1.0, side)
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
    return _png(fig)


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
    series = _series(rmse_by_horizon, "rmse_by_horizon")
    x = np.arange(len(next(iter(series.values()))))
    fig = _figure(6.0, 3.6)
    ax = fig.add_subplot()
    _lines(ax, x, series, marker=None)
    if _positive(*series.values()):
        ax.set_ylim(bottom=0)
    _tidy(ax)
    ax.set_xlabel("horizon", fontsize=9)
    ax.set_ylabel("RMSE", fontsize=9)
    ax.set_title("Error by horizon", fontsize=11)
    return _png(fig)


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
    series = _series(values, "values")
    x = np.arange(1, len(next(iter(series.values()))) + 1)
    fig = _figure(6.0, 3.6)
    ax = fig.add_subplot()
    _lines(ax, x, series, marker="o" if len(x) <= 40 else None)
    _tidy(ax)
    ax.set_xlabel("time step", fontsize=9)
    ax.set_ylabel(str(ylabel), fontsize=9)
    ax.set_title(f"{ylabel} by time step", fontsize=11)
    return _png(fig)


def irf_examples(pred, true, shock_names: Sequence[str], variable_names: Sequence[str],
                 title: str, n: int = 3) -> bytes:
    """Predicted vs true impulse responses for a few samples, one panel per shock x variable.

    Parameters
    ----------
    pred, true : array-like, shape (N, S, H+1, V)
        Predicted and true IRFs. NaN (e.g. a shock the world lacks) leaves the panel empty.
    shock_names, variable_names : sequence of str
        S and V names for the row and column labels.
    title : str
        Figure title (e.g. world and split).
    n : int
        Samples to draw (the first ``n``); each has one colour, true solid, predicted dashed.

    Returns
    -------
    bytes
        PNG image.

    Raises
    ------
    TrainsetError
        Shapes differ, are not 4-D, or the names do not match the shock/variable axes.
    """
    p, t = np.asarray(pred, dtype=float), np.asarray(true, dtype=float)
    if p.shape != t.shape or p.ndim != 4 or p.shape[0] == 0:
        raise TrainsetError(f"pred and true must both be (N, shocks, horizons, variables) "
                            f"with N > 0; got {p.shape} and {t.shape}")
    _, s, h, v = p.shape
    if len(shock_names) != s or len(variable_names) != v:
        raise TrainsetError(f"IRFs have {s} shocks x {v} variables but {len(shock_names)} shock "
                            f"names and {len(variable_names)} variable names were given")
    if n < 1:
        raise TrainsetError(f"n must be >= 1, got {n}")
    count = min(n, p.shape[0])
    colors = _colors(count)
    x = np.arange(h)
    fig = _figure(min(2.8 * v + 0.6, 14.0), min(2.0 * s + 1.0, 16.0))
    axes = np.asarray(fig.subplots(s, v, sharex=True, squeeze=False))
    for i in range(s):
        for j in range(v):
            ax = axes[i, j]
            ax.axhline(0, color="0.7", lw=0.8)
            for k in range(count):
                ax.plot(x, t[k, i, :, j], color=colors[k], lw=1.4)
                ax.plot(x, p[k, i, :, j], color=colors[k], lw=1.4, ls="--")
            _tidy(ax)
            if np.isnan(t[:count, i, :, j]).all() and np.isnan(p[:count, i, :, j]).all():
                ax.text(0.5, 0.5, "no data (shock absent)", transform=ax.transAxes,
                        ha="center", va="center", fontsize=8, color="0.45")
                ax.set_yticks([])
            if i == 0:
                ax.set_title(str(variable_names[j]), fontsize=10)
            if j == 0:
                ax.set_ylabel(str(shock_names[i]), fontsize=9)
            if i == s - 1:
                ax.set_xlabel("horizon", fontsize=9)
    handles = [Line2D([], [], color=colors[k], lw=1.4) for k in range(count)]
    labels = [f"sample {k}" for k in range(count)]
    handles += [Line2D([], [], color="0.3", lw=1.4), Line2D([], [], color="0.3", lw=1.4, ls="--")]
    labels += ["true", "predicted"]
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=8,
               frameon=False)
    fig.suptitle(str(title), fontsize=11)
    return _png(fig)


# ----------------------------------------------------------------------------- generative
def distributions(real, generated, title: str, xlabel: str) -> bytes:
    """Overlaid histograms of a statistic over real and generated samples, on the same bins.

    Densities rather than counts, so sets of different sizes compare; the legend gives each
    set's size. Non-finite values are dropped (and counted in the legend).

    Parameters
    ----------
    real, generated : array-like
        Values of the statistic (any shape; flattened), e.g. peak size per frame.
    title, xlabel : str
        Figure title and x-axis label.

    Returns
    -------
    bytes
        PNG image.

    Raises
    ------
    TrainsetError
        Neither set has a finite value.
    """
    sets = {"real": np.asarray(real, dtype=float).ravel(),
            "generated": np.asarray(generated, dtype=float).ravel()}
    finite = {k: v[np.isfinite(v)] for k, v in sets.items()}
    pooled = np.concatenate(list(finite.values()))
    if pooled.size == 0:
        raise TrainsetError(f"distributions {title!r}: no finite value in real or generated")
    edges = np.histogram_bin_edges(pooled, bins=HIST_BINS)
    fig = _figure(5.6, 3.6)
    ax = fig.add_subplot()
    for color, (name, values) in zip((PALETTE[0], PALETTE[3]), finite.items()):
        dropped = sets[name].size - values.size
        label = f"{name} (n={values.size}" + (f", {dropped} non-finite)" if dropped else ")")
        if values.size == 0:
            ax.plot([], [], color=color, label=label + " — empty")
            continue
        ax.hist(values, bins=edges, density=True, color=color, alpha=0.35, label=label)
        ax.hist(values, bins=edges, density=True, histtype="step", color=color, lw=1.5)
    _tidy(ax)
    ax.set_xlabel(str(xlabel), fontsize=9)
    ax.set_ylabel("density", fontsize=9)
    ax.set_title(str(title), fontsize=11)
    ax.legend(fontsize=8, frameon=False)
    return _png(fig)


def side_by_side(left_png: bytes, right_png: bytes, titles: Sequence[str]) -> bytes:
    """Two existing PNGs next to each other (e.g. generated vs real US grids).

    Parameters
    ----------
    left_png, right_png : bytes
        PNG images (as returned here or read from disk).
    titles : sequence of two str
        Titles above the left and right image.

    Returns
    -------
    bytes
        PNG image, about 1300 px wide.

    Raises
    ------
    TrainsetError
        An input is not PNG bytes, or ``titles`` does not hold two strings.
    """
    if len(titles) != 2:
        raise TrainsetError(f"side_by_side needs two titles, got {len(titles)}")
    images = []
    for name, data in (("left_png", left_png), ("right_png", right_png)):
        if not isinstance(data, (bytes, bytearray)) or not bytes(data[:8]) == PNG_SIGNATURE:
            raise TrainsetError(f"{name} must be PNG bytes (read the file with "
                                "Path.read_bytes())")
        images.append(imread(io.BytesIO(bytes(data)), format="png"))
    aspect = max(img.shape[0] / img.shape[1] for img in images)
    width = 14.4
    fig = _figure(width, min(width / 2 * aspect + 0.5, 20.0))
    for ax, img, label in zip(fig.subplots(1, 2), images, titles):
        ax.imshow(img, interpolation="antialiased")
        ax.set_title(str(label), fontsize=12)
        ax.set_axis_off()
    return _png(fig)
