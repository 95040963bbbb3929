"""World registry, drawing samples into long tables, and framing long tables as a Collection.

Long tables are the interchange form: users with their own simulator bring them, and
:func:`simulate_worlds` produces them from the registered worlds. Schema:

``theta`` table, one row per (world, sample, param)
    ``world`` (str or category), ``sample`` (int: accepted-sample number within the world),
    ``param`` (str or category), ``value`` (float).
``irfs`` table, one row per (world, sample, shock, horizon, variable)
    ``world``, ``sample``, ``shock`` (str or category), ``horizon`` (int, quarters after the
    shock), ``variable`` (str or category: output, inflation, rate), ``value`` (float: the
    response to a one-standard-deviation shock, in the world's units).
``trajectories`` table (optional), one row per (world, sample, t, variable)
    ``world``, ``sample``, ``t`` (int: simulated period), ``variable`` (str or category: the
    simulated series, e.g. output, inflation, rate), ``value`` (float): a simulated path of the
    economy, stored as ``trajectories [sample, time, trajectory_variable]``.
``shocks`` table (optional), one row per (world, sample, t, shock)
    ``world``, ``sample``, ``t``, ``shock`` (one of the world's IRF shocks), ``value`` (float):
    the structural shocks that drove the path, stored as ``shocks [sample, time, shock]``.
    When a simulator provides these tables, every world and every sample must have them (a
    variable missing from some worlds would drop out of mixed-world batches).
``metadata`` dict
    ``{"seed", "horizon", "rule", "worlds": {world: {param_names, param_bounds, param_priors,
    shock_names, variable_names, description, n_samples, rejected, rejected_reasons, draws}}}``;
    ``draws[s]`` is the draw index of accepted sample ``s`` (its generator is
    ``named_rng(seed, world, draws[s])``); ``trajectory_names`` orders the trajectories'
    series (optional). For user tables every key is optional: names default
    to the order of first appearance and bounds to the observed range (with a warning).

:func:`frame_worlds` pivots the tables by integer-code scatter into one part per world with
``theta [sample, param]`` and ``irfs [sample, shock, horizon, variable]`` (float32).
:func:`extrapolation_splits` adds parameter-space extrapolation tests to the usual random
splits; :func:`scale_statistics` gives the per-world training-split scales, since worlds'
IRFs differ in size and must be normalised per world (the old code did not).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import pandas as pd

from trainset.collection import SAMPLE, Collection
from trainset.domains.macro.base import HORIZON, World
from trainset.domains.macro.lss import LssWorld
from trainset.domains.macro.nk import NkWorld
from trainset.domains.macro.var import VarUsWorld, VarWorld
from trainset.errors import TrainsetError
from trainset.rng import named_rng
from trainset.splits import DEFAULT_FRACTIONS, Splits, check_splits

if TYPE_CHECKING:  # annotations only: the framing function imports xarray, so ingesting tables skips it
    import xarray as xr

logger = logging.getLogger(__name__)

__all__ = ["IRF_COLUMNS", "SEED_RULE", "THETA_COLUMNS", "WORLDS", "extrapolation_splits",
           "frame_worlds", "scale_statistics", "simulate_worlds"]

WORLDS: dict[str, World] = {"nk": NkWorld(), "var": VarWorld(), "var_us": VarUsWorld(), "lss": LssWorld()}
"""Registered worlds; add one with ``WORLDS["nk_tight"] = NkWorld("nk_tight", {...})``."""

THETA_COLUMNS = ("world", "sample", "param", "value")
IRF_COLUMNS = ("world", "sample", "shock", "horizon", "variable", "value")
TRAJECTORY_COLUMNS = ("world", "sample", "t", "variable", "value")
SHOCK_COLUMNS = ("world", "sample", "t", "shock", "value")
SEED_RULE = "draw d of world w uses trainset.rng.named_rng(seed, w, d); coord 'draw' holds d"
BLOCK = 256
"""Draws evaluated per batch."""


def _draw_world(world: World, n: int, seed: int, horizon: int,
                max_attempts: int) -> tuple[np.ndarray, np.ndarray, list[int], Counter]:
    """Draw indices 0, 1, ... in blocks until ``n`` are accepted; count rejections by reason.

    Blocks are aligned (draws ``[b * BLOCK, (b + 1) * BLOCK)``), so a draw is always evaluated
    with the same companions whatever ``n`` is; rejections after the n-th acceptance are not
    counted, so ``rejected == draws[-1] + 1 - n``.
    """
    thetas, irfs, draws, reasons = [], [], [], Counter()
    shape = (len(world.shock_names), horizon + 1, len(world.variable_names))
    start = 0
    while len(draws) < n:
        if start >= max_attempts:
            raise TrainsetError(f"world {world.name!r}: only {len(draws)} of {start} draws accepted "
                                f"({dict(reasons)}). Fix: widen or move the parameter bounds, or ask for fewer samples")
        for index, out in enumerate(world.try_draw_batch(seed, range(start, start + BLOCK), horizon), start):
            if len(draws) == n:
                break
            if isinstance(out, str):
                reasons[out] += 1
                continue
            theta, irf = out
            if theta.shape != (len(world.param_names),) or irf.shape != shape:
                raise TrainsetError(f"world {world.name!r} draw {index}: theta {theta.shape} / irfs {irf.shape}, "
                                    f"expected ({len(world.param_names)},) / {shape}. Fix: the world's evaluate")
            thetas.append(theta)
            irfs.append(irf)
            draws.append(index)
        start += BLOCK
    width = len(world.param_names)
    return (np.asarray(thetas, dtype=float).reshape(n, width), np.asarray(irfs, dtype=float).reshape(n, *shape),
            draws, reasons)


def _categorical(codes: list[np.ndarray], categories: list[str]) -> pd.Categorical:
    return pd.Categorical.from_codes(np.concatenate(codes).astype(np.int32), categories=categories)


def _union(lists: list[list[str]]) -> list[str]:
    return list(dict.fromkeys(name for names in lists for name in names))


def simulate_worlds(worlds: dict[str, int], seed: int, horizon: int = HORIZON,
                    registry: Mapping[str, World] | None = None,
                    max_attempts: int = 100) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Draw ``n`` accepted samples per world as long tables (schema in the module docstring).

    Parameters
    ----------
    worlds : dict of str to int
        World name -> number of accepted samples wanted.
    seed : int
        Experiment seed; draw ``d`` of world ``w`` uses ``named_rng(seed, w, d)``, so sample
        ``s`` is the same whatever ``n`` is.
    horizon : int
        Last IRF horizon H (IRFs cover 0..H).
    registry : mapping, optional
        Where world names are looked up (default :data:`WORLDS`).
    max_attempts : int
        Give up on a world after ``max(1000, max_attempts * n)`` draws.

    Returns
    -------
    theta, irfs : DataFrame
        Long tables; ``world``, ``param``, ``shock``, ``variable`` are categoricals.
    metadata : dict
        ``seed``, ``horizon``, ``rule`` and per-world names, bounds, priors, rejection counts
        and the draw index of every accepted sample.
    """
    registry = WORLDS if registry is None else registry
    if horizon < 0:
        raise TrainsetError(f"horizon must be >= 0, got {horizon}")
    chosen: dict[str, World] = {}
    for name, n in worlds.items():
        if name not in registry:
            raise TrainsetError(f"unknown world {name!r}. Fix: use one of {sorted(registry)} or register it")
        if registry[name].name != name:
            raise TrainsetError(f"world registered as {name!r} is named {registry[name].name!r}; seeds derive "
                                f"from the name. Fix: construct it with name={name!r}")
        if int(n) < 1:
            raise TrainsetError(f"world {name!r}: need at least 1 sample, got {n}")
        chosen[name] = registry[name]
    params = _union([w.param_names for w in chosen.values()])
    shocks = _union([w.shock_names for w in chosen.values()])
    variables = _union([w.variable_names for w in chosen.values()])
    t_cols: dict[str, list[np.ndarray]] = {c: [] for c in THETA_COLUMNS}
    i_cols: dict[str, list[np.ndarray]] = {c: [] for c in IRF_COLUMNS}
    meta: dict[str, Any] = {"seed": int(seed), "horizon": int(horizon), "rule": SEED_RULE, "worlds": {}}
    for code, (name, world) in enumerate(chosen.items()):
        n = int(worlds[name])
        start = time.perf_counter()
        theta, irfs, draws, reasons = _draw_world(world, n, seed, horizon, max(1000, max_attempts * n))
        rejected = sum(reasons.values())
        logger.info("world %s: %d accepted, %d rejected %s in %.2f s", name, n, rejected, dict(reasons),
                    time.perf_counter() - start)
        meta["worlds"][name] = {**world.metadata(), "n_samples": n, "rejected": rejected,
                                "rejected_reasons": dict(reasons), "draws": draws}
        sample, param = np.unravel_index(np.arange(theta.size), theta.shape)
        t_cols["world"].append(np.full(theta.size, code))
        t_cols["sample"].append(sample)
        t_cols["param"].append(np.asarray([params.index(p) for p in world.param_names])[param])
        t_cols["value"].append(theta.ravel())
        sample, shock, hor, var = np.unravel_index(np.arange(irfs.size), irfs.shape)
        i_cols["world"].append(np.full(irfs.size, code))
        i_cols["sample"].append(sample)
        i_cols["shock"].append(np.asarray([shocks.index(s) for s in world.shock_names])[shock])
        i_cols["horizon"].append(hor)
        i_cols["variable"].append(np.asarray([variables.index(v) for v in world.variable_names])[var])
        i_cols["value"].append(irfs.ravel())
    names = list(chosen)
    theta_table = pd.DataFrame({"world": _categorical(t_cols["world"], names),
                                "sample": np.concatenate(t_cols["sample"]).astype(np.int64),
                                "param": _categorical(t_cols["param"], params),
                                "value": np.concatenate(t_cols["value"])})
    irf_table = pd.DataFrame({"world": _categorical(i_cols["world"], names),
                              "sample": np.concatenate(i_cols["sample"]).astype(np.int64),
                              "shock": _categorical(i_cols["shock"], shocks),
                              "horizon": np.concatenate(i_cols["horizon"]).astype(np.int64),
                              "variable": _categorical(i_cols["variable"], variables),
                              "value": np.concatenate(i_cols["value"])})
    return theta_table, irf_table, meta


# ---------------------------------------------------------------- long tables -> Collection

def _check_table(table: pd.DataFrame, columns: tuple[str, ...], label: str) -> None:
    """Columns present, no missing values, integer keys, finite values; loud errors otherwise."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise TrainsetError(f"{label} table lacks column(s) {missing}. Fix: give it columns {list(columns)} "
                            f"(one row per {', '.join(columns[:-1])})")
    for column in columns:
        nulls = table[column].isna().to_numpy()
        if nulls.any():
            row = table.iloc[int(np.argmax(nulls))]
            raise TrainsetError(f"{label} table: column {column!r} has {int(nulls.sum())} missing/NaN values, first "
                                f"in row {dict(row[list(columns)])}. Fix: drop or re-simulate those rows")
    for column in ("sample", "horizon", "t"):
        if column in columns and not pd.api.types.is_integer_dtype(table[column]):
            raise TrainsetError(f"{label} table: column {column!r} must hold integers, got {table[column].dtype}. "
                                f"Fix: cast it, e.g. table[{column!r}].astype('int64')")
    if not pd.api.types.is_numeric_dtype(table["value"]) or not np.isfinite(table["value"].to_numpy(float)).all():
        raise TrainsetError(f"{label} table: column 'value' must be finite numbers. Fix: drop or re-simulate bad rows")


def _labels(series: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes and their labels (as str) of a label column, without a per-row str conversion."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return series.cat.codes.to_numpy(np.int64), [str(c) for c in series.cat.categories]
    codes, uniques = pd.factorize(series)
    return np.asarray(codes, dtype=np.int64), [str(u) for u in uniques]


def _positions(codes: np.ndarray, labels: list[str], names: list[str] | None, column: str,
               world: str) -> tuple[np.ndarray, list[str]]:
    """Positions of coded labels in ``names`` (default: order of first appearance)."""
    if names is None:
        names = [labels[c] for c in pd.unique(codes)]
    lookup = np.array([names.index(label) if label in names else -1 for label in labels] or [-1], dtype=np.int64)
    positions = lookup[codes]
    if (positions < 0).any():
        unknown = sorted({labels[c] for c in np.unique(codes[positions < 0])})[:5]
        raise TrainsetError(f"world {world!r}: {column} labels {unknown} are not in the metadata's {column}_names. "
                            f"Fix: add them to metadata['worlds'][{world!r}][{column + '_names'!r}] or drop the rows")
    return positions, list(names)


def _scatter(shape: tuple[int, ...], codes: list[np.ndarray], values: np.ndarray, label: str,
             axes: list[tuple[str, list[Any]]]) -> np.ndarray:
    """Dense array from coordinate codes: every cell filled exactly once, else a named error."""
    flat = np.ravel_multi_index(codes, shape)
    counts = np.bincount(flat, minlength=int(np.prod(shape)))
    for bad, what, fix in ((counts > 1, "duplicated", "keep one row per key (drop_duplicates)"),
                           (counts == 0, "missing", "supply every combination, or drop incomplete samples")):
        if bad.any():
            first = np.unravel_index(int(np.argmax(bad)), shape)
            where = {name: axis[i] for (name, axis), i in zip(axes, first)}
            raise TrainsetError(f"{label}: {int(bad.sum())} {what} cells, first at {where}. Fix: {fix}")
    out = np.empty(counts.size, dtype=np.float64)
    out[flat] = values
    return out.reshape(shape)


def frame_worlds(theta: pd.DataFrame, irfs: pd.DataFrame, metadata: dict[str, Any] | None = None,
                 trajectories: pd.DataFrame | None = None, shocks: pd.DataFrame | None = None) -> Collection:
    """Pivot long tables into a :class:`Collection` with one part per world.

    Labels are turned into integer codes once per column (categoricals are used as they are)
    and each world's values are scattered into preallocated arrays: no pivot_table, no
    per-row Python.

    Parameters
    ----------
    theta, irfs : DataFrame
        Long tables (schema in the module docstring).
    metadata : dict, optional
        As returned by :func:`simulate_worlds`; for user tables any part may be missing.
    trajectories, shocks : DataFrame, optional
        The simulator's paths and shock series (schema in the module docstring), stored as
        ``trajectories [sample, time, trajectory_variable]`` and ``shocks [sample, time,
        shock]`` float32 with coords ``time`` and ``trajectory_variable``.

    Returns
    -------
    Collection
        Parts in metadata order (else first appearance), each with ``theta [sample, param]``
        and ``irfs [sample, shock, horizon, variable]`` float32 (plus the optional series),
        coords ``param``, ``shock``, ``horizon``, ``variable`` and per-sample ``draw``; attrs ``param_names``,
        ``param_bounds``, ``param_priors``, ``shock_names``, ``variable_names``, ``seeds``.

    Raises
    ------
    TrainsetError
        Missing columns, NaN, duplicated or missing cells, unknown labels, or worlds/samples
        present in one table and not the other.
    """
    import xarray as xr

    _check_table(theta, THETA_COLUMNS, "theta")
    _check_table(irfs, IRF_COLUMNS, "irfs")
    series = {"trajectories": trajectories, "shocks": shocks}  # the loop below reuses the name shocks
    metadata = metadata or {}
    meta_worlds = metadata.get("worlds", {})
    tables = {"theta": theta, "irfs": irfs}
    coded = {key: {col: _labels(table[col]) for col in ("world", "param", "shock", "variable") if col in table}
             for key, table in tables.items()}
    numbers = {key: {col: table[col].to_numpy() for col in ("sample", "horizon", "value") if col in table}
               for key, table in tables.items()}
    rows = {}
    for key in tables:
        codes, labels = coded[key]["world"]
        rows[key] = {labels[c]: np.flatnonzero(codes == c) for c in pd.unique(codes)}
    if set(rows["theta"]) != set(rows["irfs"]):
        raise TrainsetError(f"worlds differ between tables: theta has {sorted(rows['theta'])}, irfs has "
                            f"{sorted(rows['irfs'])}. Fix: give both tables the same worlds")
    names = [w for w in meta_worlds if w in rows["theta"]] + [w for w in rows["theta"] if w not in meta_worlds]
    seed = metadata.get("seed")
    parts, sample_numbers = {}, {}
    for name in names:
        meta = meta_worlds.get(name, {})
        t, i = rows["theta"][name], rows["irfs"][name]
        samples = np.unique(numbers["theta"]["sample"][t]).astype(np.int64)
        if not np.array_equal(samples, np.unique(numbers["irfs"]["sample"][i])):
            raise TrainsetError(f"world {name!r}: theta and irfs tables have different samples. "
                                f"Fix: keep only samples present in both")
        pos = {}
        for key, col, rows_ in (("theta", "param", t), ("irfs", "shock", i), ("irfs", "variable", i)):
            codes, labels = coded[key][col]
            pos[col] = _positions(codes[rows_], labels, meta.get(f"{col}_names"), col, name)
        params, shocks, variables = pos["param"][1], pos["shock"][1], pos["variable"][1]
        horizons = np.unique(numbers["irfs"]["horizon"][i]).astype(np.int64)
        n = len(samples)
        sample_numbers[name] = samples
        theta_arr = _scatter((n, len(params)),
                             [np.searchsorted(samples, numbers["theta"]["sample"][t]), pos["param"][0]],
                             numbers["theta"]["value"][t], f"world {name!r} theta",
                             [("sample", samples), ("param", params)])
        irf_arr = _scatter((n, len(shocks), len(horizons), len(variables)),
                           [np.searchsorted(samples, numbers["irfs"]["sample"][i]), pos["shock"][0],
                            np.searchsorted(horizons, numbers["irfs"]["horizon"][i]), pos["variable"][0]],
                           numbers["irfs"]["value"][i], f"world {name!r} irfs",
                           [("sample", samples), ("shock", shocks), ("horizon", horizons), ("variable", variables)])
        draws = np.asarray(meta.get("draws", samples), dtype=np.int64)
        if draws.shape != (n,):
            raise TrainsetError(f"world {name!r}: metadata has {draws.size} draws for {n} samples. "
                                f"Fix: one draw index per sample, in sample order")
        bounds = meta.get("param_bounds")
        if bounds is None:
            logger.warning("world %s: no param_bounds in metadata; using the observed range", name)
            bounds = np.column_stack([theta_arr.min(axis=0), theta_arr.max(axis=0)]).tolist()
        if np.shape(bounds) != (len(params), 2):
            raise TrainsetError(f"world {name!r}: param_bounds has shape {np.shape(bounds)}, expected "
                                f"({len(params)}, 2). Fix: one [low, high] per parameter")
        attrs = {"world": name, "param_names": params, "param_bounds": [[float(a), float(b)] for a, b in bounds],
                 "param_priors": meta.get("param_priors", {}), "shock_names": shocks, "variable_names": variables,
                 "seeds": {"seed": seed, "rule": metadata.get("rule", "user supplied"),
                           "rejected": meta.get("rejected")},
                 "description": meta.get("description", "")}
        with np.errstate(over="ignore"):
            data = {"theta": theta_arr.astype(np.float32), "irfs": irf_arr.astype(np.float32)}
        for var, array in data.items():
            if not np.isfinite(array).all():
                raise TrainsetError(f"world {name!r}: {var} overflows float32. Fix: rescale the values")
        parts[name] = xr.Dataset(
            {"theta": ((SAMPLE, "param"), data["theta"]),
             "irfs": ((SAMPLE, "shock", "horizon", "variable"), data["irfs"])},
            coords={"param": params, "shock": shocks, "horizon": horizons, "variable": variables,
                    "draw": (SAMPLE, draws)}, attrs=attrs)
    for label, table in series.items():
        if table is not None:
            _add_series(parts, table, label, meta_worlds, sample_numbers)
    return Collection(parts, {"domain": "macro", "seed": seed, "horizon": metadata.get("horizon"),
                              "worlds": names})


_SERIES = {"trajectories": (TRAJECTORY_COLUMNS, "variable", "trajectory_variable"),
           "shocks": (SHOCK_COLUMNS, "shock", "shock")}
"""Optional simulator series: table columns, label column, the stored dimension of the labels."""


def _add_series(parts: dict[str, xr.Dataset], table: pd.DataFrame, label: str, meta_worlds: dict[str, Any],
                sample_numbers: dict[str, np.ndarray]) -> None:
    """Add the optional ``trajectories`` or ``shocks`` table to every part: ``[sample, time, labels]``.

    ``sample_numbers``: per world, the theta table's sorted sample numbers (the stored sample
    axis). Every world and sample of the parts must be covered (else named errors): a variable present
    in some worlds only would be dropped from mixed-world batches. Shock labels must be the
    world's IRF shocks; trajectory labels follow the metadata's ``trajectory_names`` when given
    (else first appearance); ``time`` must agree with the other series of the world.
    """
    columns, column, dim = _SERIES[label]
    _check_table(table, columns, label)
    codes, labels = _labels(table["world"])
    present = {labels[c] for c in pd.unique(codes)}
    if present != set(parts):
        raise TrainsetError(f"{label} table has worlds {sorted(present)}, theta has {sorted(parts)}. "
                            f"Fix: give {label} rows for every world, or leave the table out")
    label_codes, label_names = _labels(table[column])
    samples_all, times_all, values = (table[c].to_numpy() for c in ("sample", "t", "value"))
    for name, part in parts.items():
        rows = np.flatnonzero(codes == labels.index(name))
        numbers = sample_numbers[name]
        names = list(part.coords["shock"].values) if label == "shocks" else \
            meta_worlds.get(name, {}).get("trajectory_names")
        key = "shock" if label == "shocks" else "trajectory"  # errors name metadata's shock_/trajectory_names
        positions, names = _positions(label_codes[rows], label_names, names, key, name)
        times = np.unique(times_all[rows]).astype(np.int64)
        if "time" in part.coords and not np.array_equal(part.coords["time"].values, times):
            raise TrainsetError(f"world {name!r}: {label} covers periods {times[0]}..{times[-1]} ({times.size}), "
                                f"the other series {part.coords['time'].values.size}. Fix: simulate both over the "
                                "same periods")
        unknown = np.setdiff1d(samples_all[rows], numbers)
        if unknown.size:
            raise TrainsetError(f"world {name!r}: {label} has samples {unknown[:5].tolist()} that theta has not. "
                                "Fix: keep only samples present in every table")
        array = _scatter((numbers.size, times.size, len(names)),
                         [np.searchsorted(numbers, samples_all[rows]), np.searchsorted(times, times_all[rows]),
                          positions], values[rows], f"world {name!r} {label}",
                         [("sample", numbers), ("t", times), (column, names)])
        with np.errstate(over="ignore"):
            array = array.astype(np.float32)
        if not np.isfinite(array).all():
            raise TrainsetError(f"world {name!r}: {label} overflows float32. Fix: rescale the values")
        coords = {"time": times} if label == "shocks" else {"time": times, dim: names}
        parts[name] = part.assign({label: ((SAMPLE, "time", dim), array)}).assign_coords(coords)


# ---------------------------------------------------------------- splits and scales

def _cut_counts(m: int, fractions: dict[str, float]) -> np.ndarray:
    """Largest-remainder counts summing to ``m``, each >= 1 when ``m`` allows it."""
    shares = np.asarray(list(fractions.values()), dtype=float)
    if (shares < 0).any() or shares.sum() <= 0:
        raise TrainsetError(f"split fractions {fractions} must be non-negative and not all zero")
    exact = shares / shares.sum() * m
    counts = np.floor(exact).astype(int)
    counts[np.argsort(-(exact - counts), kind="stable")[: m - counts.sum()]] += 1
    for k in np.flatnonzero((counts == 0) & (shares > 0)):
        donor = int(np.argmax(counts))
        if counts[donor] > 1:
            counts[donor] -= 1
            counts[k] += 1
    return counts


def extrapolation_splits(collection: Collection, seed: int, fractions: dict[str, float] | None = None,
                         slice_fraction: float = 0.1, corner_fraction: float = 0.05,
                         slice_param: int | str = 0) -> Splits:
    """Random splits plus two parameter-space extrapolation tests, per world.

    Per world, parameters are normalised to ``u = (theta - low) / (high - low)`` by the part's
    ``param_bounds``. ``test_extrapolation_slice`` takes samples with ``u[slice_param] >= 1 -
    slice_fraction`` (the top of one parameter's range); ``test_extrapolation_corner`` takes,
    among the rest, the ``corner_fraction`` share (at least one) with the largest RMS distance
    ``|u - 0.5|`` (jointly extreme parameters). If the slice rule selects nobody, the sample
    with the largest ``u[slice_param]`` is taken, so no world ever has an empty test. The rest
    is shuffled with ``named_rng(seed, "extrapolation_splits", world)`` and cut by
    ``fractions`` (default train 0.8, val 0.1, test 0.1), each at least one sample.

    Returns
    -------
    dict of str to ndarray
        Split name -> sorted int64 global indices (parts in order, samples in order), disjoint.
    """
    fractions = dict(fractions or DEFAULT_FRACTIONS)
    names = list(fractions) + ["test_extrapolation_slice", "test_extrapolation_corner"]
    if len(set(names)) < len(names):
        raise TrainsetError(f"split names {list(fractions)} clash with the extrapolation splits. Fix: rename them")
    out: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for (world, part), offset in zip(collection.parts.items(), collection.offsets.values()):
        theta = part["theta"].values.astype(np.float64)
        n, width = theta.shape
        if n < len(names):
            raise TrainsetError(f"world {world!r} has {n} samples; {len(names)} splits need at least {len(names)}. "
                                f"Fix: draw more samples")
        bounds = np.asarray(part.attrs.get("param_bounds") or
                            np.column_stack([theta.min(axis=0), theta.max(axis=0)]), dtype=float)
        span = np.where(bounds[:, 1] > bounds[:, 0], bounds[:, 1] - bounds[:, 0], 1.0)
        u = (theta - bounds[:, 0]) / span
        column = list(part.attrs.get("param_names", part["param"].values)).index(slice_param) \
            if isinstance(slice_param, str) else int(slice_param)
        in_slice = u[:, column] >= 1.0 - slice_fraction
        if not in_slice.any():
            in_slice[int(np.argmax(u[:, column]))] = True
        rest = np.flatnonzero(~in_slice)
        distance = np.sqrt(np.mean((u[rest] - 0.5) ** 2, axis=1))
        n_corner = max(1, int(round(corner_fraction * n)))
        corner = rest[np.argsort(-distance, kind="stable")[:n_corner]]
        remaining = np.setdiff1d(rest, corner)
        order = named_rng(seed, "extrapolation_splits", world).permutation(remaining)
        pieces = np.split(order, np.cumsum(_cut_counts(len(order), fractions))[:-1])
        for name, piece in zip(fractions, pieces):
            out[name].append(offset + piece)
        out["test_extrapolation_slice"].append(offset + np.flatnonzero(in_slice))
        out["test_extrapolation_corner"].append(offset + corner)
        logger.info("world %s: %s", world, {name: int(len(v[-1])) for name, v in out.items()})
    return check_splits({name: np.concatenate(v) for name, v in out.items()}, len(collection))


def _moments(values: np.ndarray, axes: tuple[int, ...]) -> tuple[list[float], list[float]]:
    return values.mean(axis=axes).tolist(), values.std(axis=axes).tolist()


def scale_statistics(collection: Collection, train_indices: np.ndarray) -> dict[str, Any]:
    """Per-world means and standard deviations over the training split only.

    IRFs are summarised per variable (over samples, shocks and horizons) and ``theta`` per
    parameter, in float64, population std (ddof 0). Using only training rows keeps test
    information out of the normalisation.

    Returns
    -------
    dict
        ``{world: {"n_train", "irfs": {"variables", "mean", "std"}, "theta": {"params", "mean",
        "std"}}}``, JSON-able.
    """
    number, local = collection.locate(np.asarray(train_indices, dtype=np.int64))
    stats: dict[str, Any] = {}
    for k, (world, part) in enumerate(collection.parts.items()):
        rows = np.sort(local[number == k])
        if rows.size == 0:
            raise TrainsetError(f"world {world!r} has no training samples. Fix: make splits with every world in train")
        irfs = part["irfs"].values[rows].astype(np.float64)
        theta = part["theta"].values[rows].astype(np.float64)
        irf_mean, irf_std = _moments(irfs, (0, 1, 2))
        theta_mean, theta_std = _moments(theta, (0,))
        stats[world] = {"n_train": int(rows.size),
                        "irfs": {"variables": [str(v) for v in part["variable"].values],
                                 "mean": irf_mean, "std": irf_std},
                        "theta": {"params": [str(p) for p in part["param"].values],
                                  "mean": theta_mean, "std": theta_std}}
    return stats
