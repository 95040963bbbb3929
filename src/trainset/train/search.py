"""Hyper-parameter search as plain run configs: each trial is one ordinary training run.

Seed 002 ran a random search inside one notebook process (20 trials, 37 h, no seeds, one
checkpoint path overwritten by every trial). Here a search only *writes configs*: the workflow
trains every trial as its own Snakemake job (so trials run in parallel, resume, and rerun only
when their own config changes) and :func:`gather` ranks the finished trials afterwards.

A search, as declared under ``searches:`` in the workflow config::

    pulses_search:
      run: pulses_gru            # the base run under runs:
      method: random             # random | grid
      trials: 6                  # random only
      seed: 0                    # optional; default the workflow seed
      space:                     # dotted keys into the run config
        training.lr: {log_uniform: [1.0e-4, 1.0e-2]}
        training.weight_decay: {uniform: [0.0, 0.1]}
        model.params.hidden: {choice: [16, 32, 64]}
        training.batch_size: {int_uniform: [32, 128]}

Random search draws every value of trial ``i`` from its own generator,
``named_rng(seed, search_name, i, key)``: adding trials never changes earlier ones, and editing
the distribution of one key never changes the values drawn for the others. Floats are rounded to
6 significant digits so configs (and their hashes) stay readable and stable across platforms.
Grid search takes lists (or ``{choice: [...]}``) and enumerates the Cartesian product with the
keys sorted and the last key varying fastest, so the trial numbering is stable.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from trainset.errors import TrainsetError
from trainset.provenance import atomic_path, jsonable, write_json
from trainset.rng import MAX_SEED, named_rng
from trainset.versions import stamp

if TYPE_CHECKING:
    import pandas as pd  # imported where the results table is built: the workflow draws trials at start-up

logger = logging.getLogger(__name__)

__all__ = ["DISTRIBUTIONS", "METHODS", "RESULT_COLUMNS", "gather", "get_dotted", "set_dotted", "trial_configs",
           "trial_names", "trial_values", "write_search_results"]

DISTRIBUTIONS = ("uniform", "log_uniform", "int_uniform", "choice")
"""Distribution names a random search accepts (a grid takes lists or ``choice`` only)."""
METHODS = ("random", "grid")
"""Search methods."""
DEFAULT_METHOD = "random"
"""A search's ``method`` when it names none."""
SEARCH_KEY_DOCS = {
    "run": "The base run under runs: (its config, dataset and scalers).",
    "method": f"random or grid. Default: {DEFAULT_METHOD}.",
    "trials": "Random search: how many trials (an integer >= 1); a grid runs its whole product.",
    "seed": "Seed of the random draws. Default: the workflow seed.",
    "space": "Dotted keys of the run config (training.lr, model.params.hidden) -> a distribution "
             "{uniform|log_uniform|int_uniform|choice: args} (random) or a list of values (grid).",
}
"""The keys of a search under ``searches:`` and what they mean (the schema's copy is generated)."""
_SEARCH_KEYS = ("name", *SEARCH_KEY_DOCS)
RESULT_COLUMNS = ("best_val_loss", "best_epoch", "final_train_loss", "epochs")
"""Columns :func:`gather` adds after the searched keys."""


@dataclass(frozen=True)
class _Dim:
    """One searched key: its distribution and arguments (bounds or options)."""

    key: str
    kind: str
    args: tuple

    def candidates(self) -> list[Any]:
        """Values that bound what a draw can be (endpoints, or every option): checked up front."""
        if self.kind == "choice":
            return [copy.deepcopy(v) for v in self.args]
        if self.kind == "int_uniform":
            return list(self.args)
        return [_round6(v) for v in self.args]

    def draw(self, rng: np.random.Generator) -> Any:
        if self.kind == "choice":
            return copy.deepcopy(self.args[int(rng.integers(len(self.args)))])
        lo, hi = self.args
        if self.kind == "int_uniform":
            return int(rng.integers(lo, hi, endpoint=True))
        if self.kind == "uniform":
            value = float(rng.uniform(lo, hi))
        else:  # log_uniform
            value = math.exp(float(rng.uniform(math.log(lo), math.log(hi))))
        return min(max(_round6(value), lo), hi)  # rounding must not leave the range


def _round6(x: float) -> float:
    return float(f"{float(x):.6g}")


# ----------------------------------------------------------------------------- dotted keys

def set_dotted(config: dict[str, Any], key: str, value: Any) -> None:
    """Set ``config["a"]["b"]["c"] = value`` for ``key = "a.b.c"``, creating missing mappings."""
    parts = key.split(".")
    if not all(parts):
        raise TrainsetError(f"{key!r}: not a dotted key such as training.lr or model.params.hidden")
    node = config
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(parts[: i + 1])
            raise TrainsetError(f"{key}: {where} holds {child!r}, not a mapping, so {key} cannot be set")
        node = child
    node[parts[-1]] = value


def get_dotted(config: Mapping[str, Any], key: str) -> Any:
    """``config["a"]["b"]["c"]`` for ``key = "a.b.c"``; KeyError when a part is missing."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(key)
        node = node[part]
    return node


# ----------------------------------------------------------------------------- parsing

def _number(value: Any, where: str) -> float:
    if isinstance(value, str):  # PyYAML reads 1e-3 (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise TrainsetError(f"{where}: bounds must be finite numbers, got {value!r}")


def _parse_dim(where: str, key: str, spec: Any, method: str) -> _Dim:
    if isinstance(spec, (list, tuple)):
        spec = {"choice": list(spec)}
    if not isinstance(spec, Mapping) or len(spec) != 1:
        raise TrainsetError(f"{where}: expected one distribution such as {{log_uniform: [1.0e-4, 1.0e-2]}} "
                            f"or a list of values, got {spec!r}. Valid distributions: {', '.join(DISTRIBUTIONS)}")
    (kind, args), = spec.items()
    if kind not in DISTRIBUTIONS:
        raise TrainsetError(f"{where}: unknown distribution {kind!r}. Fix: use one of {', '.join(DISTRIBUTIONS)}")
    if method == "grid" and kind != "choice":
        raise TrainsetError(f"{where}: a grid search takes a list of values (or {{choice: [...]}}), got {kind}. "
                            "Fix: list the values or use method: random")
    if kind == "choice":
        if not isinstance(args, (list, tuple)) or not args:
            raise TrainsetError(f"{where}: choice needs a non-empty list of values, got {args!r}")
        try:
            options = json.loads(json.dumps(list(args), allow_nan=False))
        except (TypeError, ValueError) as err:
            raise TrainsetError(f"{where}: choices must be plain JSON values: {err}") from None
        return _Dim(key, kind, tuple(options))
    if not isinstance(args, (list, tuple)) or len(args) != 2:
        raise TrainsetError(f"{where}: {kind} needs [low, high], got {args!r}")
    if kind == "int_uniform":
        if not all(isinstance(a, int) and not isinstance(a, bool) for a in args):
            raise TrainsetError(f"{where}: int_uniform bounds must be integers, got {list(args)}")
        lo, hi = int(args[0]), int(args[1])
    else:
        lo, hi = _number(args[0], where), _number(args[1], where)
        if kind == "log_uniform" and lo <= 0:
            raise TrainsetError(f"{where}: log_uniform bounds must be > 0, got {[lo, hi]}. "
                                "Fix: use uniform for ranges that include 0")
    if lo > hi:
        raise TrainsetError(f"{where}: {kind} bounds must be [low, high] with low <= high, got {[lo, hi]}")
    return _Dim(key, kind, (lo, hi))


@dataclass(frozen=True)
class _Search:
    name: str
    method: str
    trials: int
    seed: int
    dims: tuple[_Dim, ...]


def _parse_search(search: Mapping[str, Any], seed: int, name: str | None) -> _Search:
    if not isinstance(search, Mapping):
        raise TrainsetError(f"a search must be a mapping, got {type(search).__name__}")
    name = name if name is not None else search.get("name")
    if not isinstance(name, str) or not name:
        raise TrainsetError("a search needs a name: pass name=... or {'name': ..., **searches[name]}")
    where = f"searches.{name}"
    unknown = sorted(str(k) for k in search if k not in _SEARCH_KEYS)
    if unknown:
        raise TrainsetError(f"{where}: unknown keys {unknown}. Valid keys: {', '.join(_SEARCH_KEYS)}")
    method = search.get("method", DEFAULT_METHOD)
    if method not in METHODS:
        raise TrainsetError(f"{where}.method: unknown method {method!r}. Fix: use one of {', '.join(METHODS)}")
    seed = search.get("seed", seed)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise TrainsetError(f"{where}.seed: expected an integer in 0..{MAX_SEED} (2**63-1), got {seed!r}")
    space = search.get("space")
    if not isinstance(space, Mapping) or not space:
        raise TrainsetError(f"{where}.space: expected a non-empty mapping of dotted keys to distributions, "
                            f"such as {{training.lr: {{log_uniform: [1.0e-4, 1.0e-2]}}}}, got {space!r}")
    dims = tuple(_parse_dim(f"{where}.space.{key}", str(key), space[key], method) for key in sorted(space, key=str))
    if method == "random":
        trials = search.get("trials")
        if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
            raise TrainsetError(f"{where}.trials: a random search needs trials: an integer >= 1, got {trials!r}")
    else:
        if "trials" in search:
            raise TrainsetError(f"{where}.trials: a grid search runs the whole product of its lists. "
                                "Fix: remove trials, or use method: random")
        trials = math.prod(len(d.args) for d in dims)
    return _Search(name, method, trials, seed, dims)


def _trial_name(i: int) -> str:
    return f"t{i:03d}"  # fixed width: adding trials never renames earlier ones


# ----------------------------------------------------------------------------- trials

def trial_names(search: Mapping[str, Any], name: str | None = None) -> list[str]:
    """The trial names of a search (``t000``, ``t001``, ...) without building any config."""
    return [_trial_name(i) for i in range(_parse_search(search, 0, name).trials)]


def trial_values(search: Mapping[str, Any], seed: int, name: str | None = None) -> dict[str, dict[str, Any]]:
    """Trial name -> {dotted key: value} (sorted keys); see :func:`trial_configs` for the arguments."""
    s = _parse_search(search, seed, name)
    if s.method == "grid":
        keys = [d.key for d in s.dims]
        combos = itertools.product(*(d.args for d in s.dims))
        return {_trial_name(i): dict(zip(keys, copy.deepcopy(list(combo)))) for i, combo in enumerate(combos)}
    return {_trial_name(i): {d.key: d.draw(named_rng(s.seed, s.name, i, d.key)) for d in s.dims}
            for i in range(s.trials)}


def _checked(config: dict[str, Any], where: str) -> None:
    from trainset.train.config import TrainingConfig

    try:
        TrainingConfig.from_dict(config)
    except TrainsetError as err:
        raise TrainsetError(f"{where}: {err}") from None


def trial_configs(base: Mapping[str, Any], search: Mapping[str, Any], seed: int,
                  name: str | None = None) -> dict[str, dict[str, Any]]:
    """Trial name -> the full run config of that trial, each validated as a TrainingConfig.

    Parameters
    ----------
    base : mapping
        The base run config (``config["runs"][search["run"]]``), in any layout
        :meth:`TrainingConfig.from_dict` accepts; it is deep-copied, never changed.
    search : mapping
        The search as declared under ``searches:``; its name comes from ``name`` or
        ``search["name"]`` (as the workflow's run configs carry theirs).
    seed : int
        The workflow seed, used unless the search sets its own ``seed``.
    name : str, optional
        The search name (overrides ``search["name"]``).

    Returns
    -------
    dict
        ``{"t000": config, ...}`` in trial order. Each config is the base (same layout) with the
        trial's values set at the dotted keys and ``name`` set to ``"<search>/<trial>"``, so
        trials of one search never share a run name or a config hash; a caller that places
        trials elsewhere may overwrite ``name``.

    Raises
    ------
    TrainsetError
        A malformed search or an unknown distribution (naming ``searches.<name>.space.<key>``
        and the valid ones); an invalid base run; a key or value the run config rejects. The
        endpoints of every range and every choice are checked one key at a time before any
        draw, so a bad space fails whatever the trials happen to draw.
    """
    if not isinstance(base, Mapping):
        raise TrainsetError(f"a search's base run config must be a mapping, got {type(base).__name__}")
    s = _parse_search(search, seed, name)
    where = f"searches.{s.name}"
    run = search.get("run")
    _checked(copy.deepcopy(dict(base)), f"{where}: the base run{f' {run!r}' if run else ''} is invalid")
    for dim in s.dims:
        for value in dim.candidates():
            config = copy.deepcopy(dict(base))
            try:
                set_dotted(config, dim.key, value)
            except TrainsetError as err:
                raise TrainsetError(f"{where}.space.{dim.key}: {err}") from None
            _checked(config, f"{where}.space.{dim.key}: value {value!r} makes an invalid run config")
    out: dict[str, dict[str, Any]] = {}
    for trial, values in trial_values(search, seed, s.name).items():
        config = copy.deepcopy(dict(base))
        for key, value in values.items():
            set_dotted(config, key, value)
        config = {"name": f"{s.name}/{trial}", **{k: v for k, v in config.items() if k != "name"}}
        _checked(config, f"{where}: trial {trial} {values} makes an invalid run config")
        out[trial] = config
    logger.info("search %s: %d %s trials over %s (seed %d)", s.name, len(out), s.method,
                [d.key for d in s.dims], s.seed)
    return out


# ----------------------------------------------------------------------------- results

def _read_json(path: str | os.PathLike, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise TrainsetError(f"{path}: {what} not found") from None
    except json.JSONDecodeError as err:
        raise TrainsetError(f"{path}: {what} is not valid JSON: {err}") from None


def _searched_value(config: Mapping[str, Any], key: str, path: str | os.PathLike) -> Any:
    # config.json is TrainingConfig.to_dict(): seed-003 flat keys live under training, and a
    # seed-001 model.time_pooling under model.params.
    for candidate in (key, f"training.{key}", key.replace("model.time_pooling", "model.params.time_pooling", 1)):
        try:
            return get_dotted(config, candidate)
        except KeyError:
            continue
    raise TrainsetError(f"{path}: searched key {key!r} not found in the trial's config")


def _float(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def gather(trials: Mapping[str, tuple[str | os.PathLike, str | os.PathLike]],
           space_keys: Sequence[str]) -> pd.DataFrame:
    """One row per finished trial, best first.

    Parameters
    ----------
    trials : mapping
        Trial name -> (``history.json``, ``config.json``) as the trainer writes them.
    space_keys : sequence of str
        The searched dotted keys (``sorted(search["space"])``); one column each.

    Returns
    -------
    DataFrame
        Columns ``trial``, each searched key, ``best_val_loss`` (lowest validation loss),
        ``best_epoch`` (its epoch; the first on ties), ``final_train_loss``, ``epochs`` (epochs
        run, fewer than configured after early stopping). Sorted by ``best_val_loss`` then
        ``trial``; a trial without any finite validation loss sorts last. ``table.attrs``
        holds ``configs`` (trial -> its config.json) and ``space_keys`` for
        :func:`write_search_results`.
    """
    keys = list(space_keys)
    rows, configs = [], {}
    for trial, (history_path, config_path) in trials.items():
        history = _read_json(history_path, "training history")
        config = _read_json(config_path, "run config")
        if not isinstance(history, list) or not history or not all(isinstance(h, Mapping) for h in history):
            raise TrainsetError(f"{history_path}: expected a non-empty list of epoch records, got {history!r:.80}")
        if not isinstance(config, Mapping):
            raise TrainsetError(f"{config_path}: expected a run config mapping")
        val = np.array([_float(h.get("val_loss")) for h in history])
        finite = np.isfinite(val)
        best = int(np.argmin(np.where(finite, val, np.inf))) if finite.any() else None
        row = {"trial": str(trial)}
        row.update({key: _searched_value(config, key, config_path) for key in keys})
        row.update(best_val_loss=float(val[best]) if best is not None else math.nan,
                   best_epoch=int(history[best].get("epoch", best + 1)) if best is not None else None,
                   final_train_loss=_float(history[-1].get("train_loss")),
                   epochs=len(history))
        rows.append(row)
        configs[str(trial)] = dict(config)
    import pandas as pd

    table = pd.DataFrame(rows, columns=["trial", *keys, *RESULT_COLUMNS])
    table["best_epoch"] = table["best_epoch"].astype("Int64")
    table = table.sort_values(["best_val_loss", "trial"], na_position="last", kind="mergesort")
    table = table.reset_index(drop=True)
    table.attrs = {"configs": configs, "space_keys": keys}
    return table


def write_search_results(table: pd.DataFrame, csv_path: str | os.PathLike, json_path: str | os.PathLike, *,
                         search: str | None = None, configs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write the ranking as CSV and a JSON summary (best trial and its config), each atomically.

    List or mapping values (e.g. a choice of layer sizes) are JSON-encoded in the CSV. The
    summary holds ``search``, ``metric``, ``n_trials``, ``best_trial``, ``best`` (its row),
    ``best_config`` (from ``configs`` or ``table.attrs["configs"]``; null if unknown) and
    ``ranking`` (every row, best first); NaN becomes null. Returns the summary.
    """
    if table.empty:
        raise TrainsetError(f"{json_path}: no trials to summarise")
    configs = configs if configs is not None else table.attrs.get("configs", {})
    records = jsonable(table.to_dict(orient="records"), f"{json_path}: ranking", nan_as_null=True)
    best = records[0]
    summary = {
        "search": search,
        "metric": "val_loss",
        "n_trials": len(records),
        "best_trial": best["trial"],
        "best": best,
        "best_config": copy.deepcopy(configs.get(best["trial"])),
        "ranking": records,
        **stamp("search"),
    }
    csv_table = table.copy()
    for column in csv_table.columns:
        if csv_table[column].dtype == object:
            csv_table[column] = [json.dumps(v) if isinstance(v, (list, dict, tuple)) else v for v in csv_table[column]]
    with atomic_path(csv_path) as tmp:
        csv_table.to_csv(tmp, index=False)
    write_json(summary, json_path)
    logger.info("search %s: best trial %s (val_loss %s) of %d", search or "", best["trial"],
                best["best_val_loss"], len(records))
    return summary
