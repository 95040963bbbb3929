"""The drawing surface every evaluation figure shares: a pyplot-free canvas, PNG bytes, styling.

Kept apart from the plots so each plot module holds only what it draws; the byte-identity
promise of :mod:`trainset.evaluate.figures` (no version chunk in the PNG) lives in
:func:`png_bytes` alone.
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

from trainset.errors import TrainsetError

logger = logging.getLogger(__name__)

DPI = 90
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
MODEL_WIDTH, BASELINE_WIDTH = 2.2, 1.3
CALIBRATION_BINS = 10
HIST_BINS = 30


def blank_figure(width: float, height: float) -> Figure:
    """A pyplot-free figure with its Agg canvas attached."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Figure) -> bytes:
    """Render to PNG bytes without the version chunk, so bytes depend only on the input."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def colors_for(n: int) -> list:
    """Distinct colours: the categorical palette for few lines, viridis for many (ordered)."""
    if n <= len(PALETTE):
        return list(PALETTE[:n])
    return [colormaps["viridis"](x) for x in np.linspace(0.0, 0.92, n)]


def as_vector(values, name: str) -> np.ndarray:
    """1-D float array with None as NaN; reject anything that is not a flat sequence."""
    try:
        arr = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    except (TypeError, ValueError) as exc:
        raise TrainsetError(f"{name} must be a sequence of numbers (None for missing): {exc}")
    if arr.ndim != 1:
        raise TrainsetError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def as_series(values: Mapping[str, Sequence], name: str) -> dict[str, np.ndarray]:
    """Name -> vector, non-empty and all of one length (they share an x axis)."""
    if not isinstance(values, Mapping) or not values:
        raise TrainsetError(f"{name} must be a non-empty dict of name -> list of numbers")
    out = {str(k): as_vector(v, f"{name}[{k!r}]") for k, v in values.items()}
    lengths = {k: len(v) for k, v in out.items()}
    if len(set(lengths.values())) != 1 or 0 in lengths.values():
        raise TrainsetError(f"{name}: every series needs the same non-zero length, got {lengths}")
    return out


def all_positive(*arrays: np.ndarray) -> bool:
    """True when every finite value is > 0 and at least one exists (log scale is safe)."""
    finite = np.concatenate([a[np.isfinite(a)] for a in arrays])
    return finite.size > 0 and bool((finite > 0).all())


def tidy(ax: Axes, grid: bool = True) -> None:
    """Light styling shared by every panel."""
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if grid:
        ax.grid(True, color="0.9", linewidth=0.6)
        ax.set_axisbelow(True)
    ax.tick_params(labelsize=8)


def draw_lines(ax: Axes, x: np.ndarray, series: dict[str, np.ndarray], marker: str | None) -> None:
    """First series (the model) thick, the rest (baselines) thinner and dashed."""
    for i, (name, y) in enumerate(series.items()):
        first = i == 0
        ax.plot(x, y, color=colors_for(len(series))[i], lw=MODEL_WIDTH if first else BASELINE_WIDTH,
                ls="-" if first else "--", marker=marker, ms=4 if first else 3, label=name,
                zorder=3 if first else 2)
    ax.legend(fontsize=8, frameon=False)


__all__ = ["BASELINE_WIDTH", "CALIBRATION_BINS", "DPI", "HIST_BINS", "MODEL_WIDTH", "PALETTE", "PNG_SIGNATURE",
           "all_positive", "as_series", "as_vector", "blank_figure", "colors_for", "draw_lines", "png_bytes", "tidy"]
