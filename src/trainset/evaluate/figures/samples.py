"""Plots of samples: predicted vs true impulse responses, real vs generated distributions, two images.

Each takes arrays (or PNG bytes) and gives PNG bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.image import imread
from matplotlib.lines import Line2D

from trainset.errors import TrainsetError
from trainset.evaluate.figures.canvas import (HIST_BINS, PALETTE, PNG_SIGNATURE, blank_figure, colors_for, png_bytes,
                                              tidy)


# ----------------------------------------------------------------------------- impulse responses
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
    colors = colors_for(count)
    x = np.arange(h)
    fig = blank_figure(min(2.8 * v + 0.6, 14.0), min(2.0 * s + 1.0, 16.0))
    axes = np.asarray(fig.subplots(s, v, sharex=True, squeeze=False))
    for i in range(s):
        for j in range(v):
            ax = axes[i, j]
            ax.axhline(0, color="0.7", lw=0.8)
            for k in range(count):
                ax.plot(x, t[k, i, :, j], color=colors[k], lw=1.4)
                ax.plot(x, p[k, i, :, j], color=colors[k], lw=1.4, ls="--")
            tidy(ax)
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
    return png_bytes(fig)


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
    fig = blank_figure(5.6, 3.6)
    ax = fig.add_subplot()
    for color, (name, values) in zip((PALETTE[0], PALETTE[3]), finite.items()):
        dropped = sets[name].size - values.size
        label = f"{name} (n={values.size}" + (f", {dropped} non-finite)" if dropped else ")")
        if values.size == 0:
            ax.plot([], [], color=color, label=label + " — empty")
            continue
        ax.hist(values, bins=edges, density=True, color=color, alpha=0.35, label=label)
        ax.hist(values, bins=edges, density=True, histtype="step", color=color, lw=1.5)
    tidy(ax)
    ax.set_xlabel(str(xlabel), fontsize=9)
    ax.set_ylabel("density", fontsize=9)
    ax.set_title(str(title), fontsize=11)
    ax.legend(fontsize=8, frameon=False)
    return png_bytes(fig)


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
    fig = blank_figure(width, min(width / 2 * aspect + 0.5, 20.0))
    for ax, img, label in zip(fig.subplots(1, 2), images, titles):
        ax.imshow(img, interpolation="antialiased")
        ax.set_title(str(label), fontsize=12)
        ax.set_axis_off()
    return png_bytes(fig)


__all__ = ["distributions", "irf_examples", "side_by_side"]
