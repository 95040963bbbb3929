"""The US tile-grid visual check: one small panel per state, a large national-sum panel.

Built on a bare :class:`~matplotlib.figure.Figure` with an Agg canvas (never pyplot), so no
global backend state changes and no figure is registered anywhere (the one returned is freed
with its last reference). Each panel draws all samples as
one LineCollection, so time stays flat in the sample count. The PNG has no version chunk and
is written atomically: equal input gives identical bytes, a failure leaves no file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from trainset.errors import TrainsetError
from trainset.locations import load_locations
from trainset.provenance import atomic_path

logger = logging.getLogger(__name__)

DIMS = ("sample", "feature", "season_week", "place")
GRID_SHAPE = (8, 11)
NATIONAL_ROWS, NATIONAL_COLS = slice(0, 2), slice(1, 8)
LEGEND_ROWS, LEGEND_COLS = slice(5, 8), slice(9, 11)
"""Tiles no state occupies (south-east of the map): the legend goes there, never over a panel."""
ORIGIN_CHARS = 40
NATIONAL_INSET = (0.03, 0.035)
"""Room (figure fractions, left and bottom) the national panel leaves for its axis labels."""
FIGSIZE, DPI = (22.0, 16.0), 80
DEFAULT_SAMPLES = 12
"""Samples drawn when none are chosen: the ``plots.samples`` default (the schema's copy is tested against it)."""
PAST_COLOR, MANY_COLOR = "0.3", "#1f77b4"
SAMPLE_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
                 "#8c564b", "#e377c2", "#bcbd22", "#393b79", "#637939", "#7b4173")


def _check_dims(arr: xr.DataArray, name: str, required: Sequence[str]) -> None:
    """Fail early with the fix, rather than deep inside numpy with a shape error."""
    if not isinstance(arr, xr.DataArray):
        raise TrainsetError(f"{name} must be an xarray.DataArray, got {type(arr).__name__}")
    missing = [d for d in required if d not in arr.dims]
    extra = [d for d in arr.dims if d not in DIMS]
    if missing or extra:
        raise TrainsetError(
            f"{name} has dims {arr.dims}; missing {missing}, unexpected {extra}. Expected "
            f"{DIMS} (rename or transpose the array, e.g. with .rename()/.transpose())")


def _resolve_samples(n: int, sample_idx: Sequence[int] | None) -> list[int]:
    """Default to the first few samples; reject indices that would silently wrap around."""
    if sample_idx is None:
        return list(range(min(DEFAULT_SAMPLES, n)))
    idx = [int(i) for i in sample_idx]
    bad = [i for i in idx if not 0 <= i < n]
    if not idx or bad:
        raise TrainsetError(
            f"sample_idx {idx if not idx else bad} is empty or out of range: the array has {n} "
            f"samples, so pass indices in 0..{n - 1} (or None for the first {DEFAULT_SAMPLES})")
    return idx


def _state_places(data: xr.DataArray) -> tuple[list[str], dict[str, tuple[str, int, int]]]:
    """State codes on the place axis (in axis order) and each state's abbreviation and tile.

    Padding ('PAD_xx'), 'US' and territories are ignored: the national panel is the state sum.
    """
    places = [str(p) for p in data["place"].values]
    if len(set(places)) != len(places):
        raise TrainsetError("place coordinate has duplicate codes; each place must appear once")
    table = load_locations()
    table = table[table["kind"] == "state"]
    tiles = {row.location_code: (row.abbreviation, int(row.tile_row), int(row.tile_col))
             for row in table.itertuples()}
    states = [p for p in places if p in tiles]
    ignored = [p for p in places if p not in tiles]
    if not states:
        raise TrainsetError(
            f"no state place found among {len(places)} places (e.g. {places[:3]}); the place "
            "coordinate must hold two-digit FIPS codes such as '01' or '56' as strings")
    if ignored:
        logger.debug("us grid ignores %d non-state places: %s", len(ignored), ignored[:8])
    return states, tiles


def _values(arr: xr.DataArray, states: list[str], feature: int, name: str) -> np.ndarray:
    """(lines, weeks, states) float array; a state missing from ``arr`` becomes NaN."""
    if "feature" in arr.dims:
        if not 0 <= feature < arr.sizes["feature"]:
            n = arr.sizes["feature"]
            raise TrainsetError(f"feature {feature} out of range: {name} has {n} features, "
                                f"pass 0..{n - 1}")
        arr = arr.isel(feature=feature)
    arr = arr.assign_coords(place=[str(p) for p in arr["place"].values])
    arr = arr.reindex(place=states)
    if "sample" not in arr.dims:
        arr = arr.expand_dims("sample")
    return arr.transpose("sample", "season_week", "place").values.astype(float)


def _weeks(arr: xr.DataArray) -> np.ndarray:
    """The x axis: the season_week coordinate, or 1..W when the array carries none."""
    if "season_week" in arr.coords:
        return np.asarray(arr["season_week"].values, dtype=float)
    return np.arange(1, arr.sizes["season_week"] + 1, dtype=float)


def _add_lines(ax: Axes, x: np.ndarray, ys: np.ndarray, colors, alpha: float,
               width: float, zorder: float, gid: str = "samples") -> None:
    """Draw every row of ``ys`` against ``x`` as one collection (NaN weeks leave gaps).

    One artist per panel instead of one per sample is what keeps drawing time flat.
    """
    segments = np.stack([np.broadcast_to(x, ys.shape), ys], axis=-1)
    ax.add_collection(LineCollection(segments, colors=colors, linewidths=width, alpha=alpha,
                                     zorder=zorder, gid=gid), autolim=False)


def _limits(*arrays: np.ndarray | None) -> tuple[float, float]:
    """y range from zero (or the minimum when negative) to a little above the peak."""
    finite = np.concatenate([a[np.isfinite(a)] for a in arrays if a is not None] or [[]])
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = min(0.0, float(finite.min())), float(finite.max())
    return (lo, hi + 0.05 * (hi - lo)) if hi > lo else (lo - 0.5, lo + 0.5)


def _style(ax: Axes, x: np.ndarray, ylim: tuple[float, float], small: bool) -> None:
    """Light styling: x range fixed to the weeks, at most two tiny y labels on small panels."""
    ax.set_xlim(float(x.min()), float(x.max()))
    ax.set_ylim(*ylim)
    ax.margins(0)
    if small:
        ax.set_xticks([])
        ax.yaxis.set_major_locator(MaxNLocator(nbins=2, min_n_ticks=1))
        ax.tick_params(axis="y", labelsize=7, length=2, pad=1)
    else:
        ax.tick_params(labelsize=9)
        ax.grid(True, color="0.9", linewidth=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _legend(fig: Figure, anchor, data: xr.DataArray, idx: list[int], colors: list,
            past: xr.DataArray | None, axes_note: str) -> None:
    """Name the shown samples (with their origin when known, if few) and the past overlay.

    Drawn in the empty tiles south-east of the map (``anchor``, a gridspec cell range), so it
    never hides a state's curves; ``axes_note`` below it gives the state panels' axes and units.
    """
    if len(idx) <= DEFAULT_SAMPLES:
        origin = data["origin"].values if "origin" in data.coords and \
            data["origin"].dims == ("sample",) else None
        labels = [f"#{i}" + (f" {str(origin[i])[:ORIGIN_CHARS]}" if origin is not None else "")
                  for i in idx]
        handles = [Line2D([], [], color=c, lw=1.5) for c in colors]
    else:
        labels, handles = [f"{len(idx)} samples"], [Line2D([], [], color=colors[0], lw=1.5)]
    if past is not None:
        labels.append(_past_label(past))
        handles.append(Line2D([], [], color=PAST_COLOR, lw=1.5))
    box = anchor.get_position(fig)
    legend = fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(box.x0, box.y1),
                        fontsize=8, frameon=False, borderaxespad=0, handlelength=1.5,
                        title="samples (origin)" if len(idx) <= DEFAULT_SAMPLES else None,
                        title_fontsize=9, alignment="left")
    legend.set_gid("legend")
    fig.text(box.x0, box.y0, axes_note, fontsize=8, color="0.3", va="bottom", ha="left",
             wrap=True, gid="axes-note")


def _y_label(data: xr.DataArray, feature: int, units: str | None) -> str:
    """The y axis: the feature's name and its units (the data's ``units`` attribute when set)."""
    name = str(data["feature"].values[feature]) if "feature" in data.coords else f"feature {feature}"
    units = units or data.attrs.get("units") or "per season week"
    return f"{name} ({units})"


def plot_us_grid(data: xr.DataArray, path: str | os.PathLike,
                 sample_idx: Sequence[int] | None = None, feature: int = 0,
                 sharey: bool = False, past: xr.DataArray | None = None,
                 title: str | None = None, metadata: dict[str, str] | None = None,
                 units: str | None = None) -> Figure:
    """Draw samples of a (sample, feature, season_week, place) array on the US tile grid.

    The visual check after building a training array: ranges, shapes and odd states show at
    a glance. States sit at their ``tile_row``/``tile_col``; the sum over the states present
    fills the large panel (rows 0-1, cols 1-7). That sum skips NaN, so one empty state does
    not blank it, and its title counts the states with gaps so a dip is not misread.

    Parameters
    ----------
    data : xarray.DataArray
        Dims ``(sample, feature, season_week, place)``; non-state places (e.g. ``PAD_51``)
        are ignored. A per-sample ``origin`` coordinate, when present, labels the legend.
    path : str or os.PathLike
        PNG to write (atomically; parent folders are created).
    sample_idx : sequence of int, optional
        Samples to draw; default the first ``min(12, n)``.
    feature : int
        Index on the ``feature`` axis to draw.
    sharey : bool
        Share one y range across the state panels (compares magnitudes between states).
    past : xarray.DataArray, optional
        Reference curves (e.g. past seasons of ground truth, :func:`trainset.plots.past.past_seasons`):
        dims ``season_week``, ``place`` and optionally ``sample``/``feature``; drawn as thin grey
        lines behind the samples in every state panel and, summed, in the national one (artist
        gid ``past``). A ``fluseason`` coordinate names the seasons in the legend.
    title : str, optional
        What is shown (e.g. the mix); the figure title adds, once, how many samples, which
        feature and how the y ranges are set, so the caller should not repeat those.
    metadata : dict of str to str, optional
        Extra PNG text chunks (e.g. source file, config hash).
    units : str, optional
        Units of the values for the y axis label; default the array's ``units`` attribute,
        else "per season week" (each value is one week's count).

    Returns
    -------
    matplotlib.figure.Figure
        The figure written (its artists can be inspected; it holds no global state).

    Raises
    ------
    TrainsetError
        Wrong dims, sample or feature index out of range, no state place, bad metadata.
    """
    _check_dims(data, "data", DIMS)
    idx = _resolve_samples(data.sizes["sample"], sample_idx)
    states, tiles = _state_places(data)
    ys = _values(data.isel(sample=idx), states, feature, "data")
    past_ys = None
    if past is not None:
        _check_dims(past, "past", ("season_week", "place"))
        past_ys = _values(past, states, feature, "past")
    meta = _png_metadata(metadata)

    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(*GRID_SHAPE, left=0.03, right=0.985, bottom=0.03, top=0.93,
                            wspace=0.22, hspace=0.38)
    few = len(idx) <= DEFAULT_SAMPLES
    pen = _Pen(_weeks(data), list(SAMPLE_COLORS[:len(idx)]) if few else [MANY_COLOR],
               0.8 if few else 0.3, 0.9 if few else 0.6, None if past is None else _weeks(past))
    shared = _limits(ys, past_ys) if sharey else None
    for j, code in enumerate(states):
        abbr, row, col = tiles[code]
        ax = _panel(fig.add_subplot(grid[row, col]), pen, ys[:, :, j],
                    None if past_ys is None else past_ys[:, :, j], shared, small=True)
        ax.set_title(abbr, fontsize=10, fontweight="bold", pad=2)
        if np.isnan(ys[:, :, j]).all():
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", color="firebrick")
    nat = _panel(_national_axes(fig, grid), pen, _national(ys),
                 None if past_ys is None else _national(past_ys), None, small=False)
    gaps = int(np.isnan(ys).any(axis=(0, 1)).sum())
    nat.set_title(f"National: sum over {len(states)} states"
                  + (f"; {gaps} states have missing values, skipped" if gaps else ""),
                  fontsize=12, pad=3, color="firebrick" if gaps else "black")
    y_label = _y_label(data, feature, units)
    nat.set_xlabel("season week", fontsize=10, labelpad=1)
    nat.set_ylabel(y_label, fontsize=10)
    note = (f"State panels: x season week {int(pen.x.min())}-{int(pen.x.max())}, y {y_label}, "
            + ("one y range for all states." if sharey else "each state its own y range."))
    _legend(fig, grid[LEGEND_ROWS, LEGEND_COLS], data, idx, pen.colors, past, note)
    shown = f"{len(idx)} of {data.sizes['sample']} samples shown"
    fig.suptitle(f"{title or 'US grid'} — {shown}", fontsize=15, y=0.985)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata=meta)
    logger.info("wrote US grid of %d samples x %d states to %s", len(idx), len(states), path)
    return fig


def _national_axes(fig: Figure, grid) -> Axes:
    """The large panel, inset so its axis labels clear Alaska and the row of states below."""
    ax = fig.add_subplot(grid[NATIONAL_ROWS, NATIONAL_COLS])
    box, (dx, dy) = ax.get_position(), NATIONAL_INSET
    ax.set_position([box.x0 + dx, box.y0 + dy, box.width - dx, box.height - dy])
    return ax


class _Pen(NamedTuple):
    """How every panel draws: the week axes and the sample colours, alpha and line width."""

    x: np.ndarray
    colors: list[str]
    alpha: float
    width: float
    past_x: np.ndarray | None


def _panel(ax: Axes, pen: _Pen, ys: np.ndarray, past: np.ndarray | None,
           ylim: tuple[float, float] | None, small: bool) -> Axes:
    """Draw samples, and past curves as thin grey lines behind them (the guide's overlay)."""
    grow = 0.0 if small else 0.4
    _add_lines(ax, pen.x, ys, pen.colors, pen.alpha, pen.width + grow, 2)
    if past is not None:
        _add_lines(ax, pen.past_x, past, PAST_COLOR, 0.7, 0.6 + grow, 1, gid="past")
    _style(ax, pen.x, ylim or _limits(ys, past), small)
    return ax


def _past_label(past: xr.DataArray) -> str:
    """Legend text of the overlay: its seasons when known, else its line count."""
    lines = past.sizes.get("sample", 1)
    if "fluseason" in past.coords and past["fluseason"].size:
        seasons = [int(s) for s in np.atleast_1d(past["fluseason"].values)]
        family = past.attrs.get("family", "past")
        return f"{family} {seasons[0]}-{seasons[-1]} ({lines} past seasons)"
    return f"past ({lines} lines)"


def _national(ys: np.ndarray) -> np.ndarray:
    """Sum over states skipping NaN; NaN only where every state is missing that week."""
    total = np.nansum(ys, axis=2)
    total[np.isnan(ys).all(axis=2)] = np.nan
    return total


def _png_metadata(metadata: dict[str, str] | None) -> dict[str, str | None]:
    """Drop matplotlib's version chunk (bytes must not depend on the install), add ours.

    PNG keys are 1-79 Latin-1 characters; checked up front rather than failing mid-write.
    """
    meta: dict[str, str | None] = {"Software": None}
    for key, value in (metadata or {}).items():
        if not (isinstance(key, str) and isinstance(value, str) and 0 < len(key) < 80
                and all(ord(c) < 256 for c in key)):
            raise TrainsetError(f"metadata {key!r}: keys and values must be str, keys 1-79 "
                                "Latin-1 characters (PNG text chunk rules)")
        meta[key] = value
    return meta


def evenly_spaced(total: int, count: int) -> list[int]:
    """``count`` sample indices spread evenly over ``range(total)``, so a plot shows every family."""
    return sorted({int(i) for i in np.linspace(0, total - 1, num=min(count, total))})
