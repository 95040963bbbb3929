"""A realistic synthetic "combined" flu table, so every stage can run without the real inputs.

The real sources (FluView ILI, FluSurv-NET hospitalisations, flepiMoP simulations and Scenario
Modeling Hub projections) cannot be bundled, yet the frame builder, the converters and their tests
need a table with their shape and their quirks: states missing in early seasons, interior gaps,
partial week windows, many samples per dataset, and national/territory rows that must be removed.

Curves come from a weekly chain-binomial (Reed-Frost) SIR model per place, scaled by the place's
population, with random R and onset per (group, place). The simulation is vectorised over
groups x places and loops over the 53 season weeks only. The output is a pure function of
``(size, seed)``: sub-seeds come from :class:`numpy.random.SeedSequence`, never from ``hash()``.

Columns (one row per :data:`KEYS`, rows sorted by :data:`KEYS`)

=============  ==============  ===========================================================
column         dtype           meaning
=============  ==============  ===========================================================
datasetH1      str             family: fluview, flusurv, flepiR1, SMH_R4-R5
datasetH2      str             dataset inside the family (e.g. ``R4_model03_B``)
sample         int64           stochastic replicate, 0-based
fluseason      int64           season start year
location_code  str             FIPS code, ``US`` or a territory code
season_week    int64           1..53, ``SeasonAxis.season_and_week(week_enddate)[1]``
value          float64         ILI percent (fluview) or weekly hospital admissions (others)
week_enddate   datetime64[ns]  Saturday (Sunday for flepiR1) ending the week
=============  ==============  ===========================================================
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trainset.errors import TrainsetError
from trainset.locations import load_locations
from trainset.seasons import SeasonAxis

logger = logging.getLogger(__name__)

KEYS = ["datasetH1", "datasetH2", "fluseason", "sample", "location_code", "season_week"]
COLUMNS = ["datasetH1", "datasetH2", "sample", "fluseason", "location_code", "season_week",
           "value", "week_enddate"]
SIZES = ("small", "full")
#: Samples per dataset; the surveillance families always have exactly one.
SAMPLES = {"small": {"flepiR1": 6, "SMH_R4-R5": 2}, "full": {"flepiR1": 80, "SMH_R4-R5": 20}}
SMH_ROUNDS = {"R4": 2023, "R5": 2024}
SMH_MODELS = tuple(f"model{i:02d}" for i in range(1, 10))
SMH_SCENARIOS = {"A": 0.92, "B": 1.0, "C": 1.08}  # R multiplier, optimistic .. pessimistic
_SATURDAY, _SUNDAY = 5, 6
_N_WEEKS = 53
_FLORIDA = "12"  # never reports to ILINet


@dataclass(frozen=True)
class _Block:
    """One family on a dense [group, place, week] grid, groups and places already in key order."""

    h1: str
    h2_names: np.ndarray  # object array of names; ``h2`` indexes it
    h2: np.ndarray  # [G]
    season: np.ndarray  # [G]
    sample: np.ndarray  # [G]
    places: np.ndarray  # [P] object array of codes, ascending
    weeks: np.ndarray  # [W] season weeks held by ``values``
    weekday: int
    values: np.ndarray  # [G, P, W]
    keep: np.ndarray  # [G, P, W] bool; False marks rows the source does not have


def make_flu_table(
    size: str = "small", seed: int = 0, axis: SeasonAxis | None = None
) -> pd.DataFrame:
    """Build the synthetic combined long table of four flu dataset families.

    Parameters
    ----------
    size : {"small", "full"}
        ``"full"`` matches the real table (~2.6M rows); ``"small"`` keeps every family, season,
        missing state and gap but draws fewer samples, for tests and quick runs.
    seed : int
        Root seed; equal ``(size, seed)`` give identical tables on any run.
    axis : SeasonAxis, optional
        Season axis giving week numbers and week-end dates; default
        ``SeasonAxis.from_config({})``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`, one row per :data:`KEYS`, sorted by :data:`KEYS`.

    Raises
    ------
    TrainsetError
        If ``size`` is not one of :data:`SIZES`.
    """
    if size not in SIZES:
        raise TrainsetError(f"make_flu_table: size must be one of {', '.join(SIZES)}; got {size!r}")
    axis = axis or SeasonAxis.from_config({})
    started = time.perf_counter()
    smh_rng, flepi_rng, flusurv_rng, fluview_rng = (
        np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(4))
    blocks = [_smh(smh_rng, SAMPLES[size]["SMH_R4-R5"]),
              _flepi(flepi_rng, SAMPLES[size]["flepiR1"]),
              _flusurv(flusurv_rng), _fluview(fluview_rng)]
    frames = [_to_frame(block, axis) for block in sorted(blocks, key=lambda b: b.h1)]
    for frame in frames:
        logger.info("demo flu %s: %d rows", frame["datasetH1"].iat[0], len(frame))
    table = pd.concat(frames, ignore_index=True)[COLUMNS]
    logger.info("demo flu table (%s, seed %d): %d rows in %.2f s",
                size, seed, len(table), time.perf_counter() - started)
    return table


def _places(*kinds: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes (ascending, object array), populations and kinds of the bundled places of ``kinds``."""
    table = load_locations()
    table = table[table["kind"].isin(kinds)].sort_values("location_code")
    return (table["location_code"].to_numpy(dtype=object), table["population"].to_numpy(np.int64),
            table["kind"].to_numpy(dtype=object))


def _groups(h2: np.ndarray, season: np.ndarray, n_samples: int) -> tuple[np.ndarray, ...]:
    """Expand (H2, season) pairs, already in key order, to one group per sample."""
    return (np.repeat(h2, n_samples), np.repeat(season, n_samples),
            np.tile(np.arange(n_samples, dtype=np.int64), len(h2)))


def _simulate(rng: np.random.Generator, population: np.ndarray, r_group: np.ndarray,
              onset_group: np.ndarray) -> np.ndarray:
    """Weekly new infections [G, P, 53] of a chain-binomial SIR, one epidemic per (group, place).

    A generation is one week. Each place gets its group's R and onset week plus its own noise,
    so states of one group share a season's character without peaking in lockstep. Seeding is
    proportional to population, so the time to peak does not depend on the place's size.
    """
    shape = (len(r_group), len(population))
    r = r_group[:, None] * rng.lognormal(0.0, 0.07, shape)
    onset = np.maximum(onset_group[:, None] + rng.integers(-3, 4, shape), 0)
    pool = np.rint(population * rng.uniform(0.3, 0.45, shape)).astype(np.int64)
    seeds = rng.poisson(population * 3e-5, shape) + 1
    susceptible, infectious = pool.copy(), np.zeros(shape, np.int64)
    incidence = np.empty(shape + (_N_WEEKS,), np.int64)
    for week in range(_N_WEEKS):
        infectious = infectious + np.where(onset == week, seeds, 0)
        new = rng.binomial(susceptible, -np.expm1(-r * infectious / pool))
        susceptible -= new
        incidence[:, :, week] = infectious = new
    return incidence


def _hospitalisations(rng: np.random.Generator, incidence: np.ndarray,
                      ihr: np.ndarray) -> np.ndarray:
    """Weekly admissions: each infection is admitted with probability ``ihr`` [G] x place noise."""
    rate = ihr[:, None, None] * rng.lognormal(0.0, 0.15, incidence.shape[:2] + (1,))
    return rng.binomial(incidence, rate).astype(np.float64)


def _fluview(rng: np.random.Generator) -> _Block:
    """ILINet-like ILI percent: 13 seasons, Saturdays, late-joining states and interior gaps."""
    codes, population, _ = _places("state")
    seasons = np.arange(2010, 2023)
    h2, season, sample = _groups(np.zeros(len(seasons), np.int64), seasons, 1)
    incidence = _simulate(rng, population, rng.uniform(1.4, 1.8, len(season)),
                          rng.integers(0, 8, len(season)))
    shape = incidence.shape[:2] + (1,)
    attack = incidence / population[:, None]
    ili = rng.uniform(0.5, 1.5, shape) + 100 * rng.uniform(0.7, 1.3, shape) * attack
    ili *= rng.lognormal(0.0, 0.08, ili.shape)
    absent = np.zeros(incidence.shape[:2], bool)
    absent[:, codes == _FLORIDA] = True
    late = rng.permutation(np.flatnonzero(codes != _FLORIDA))[:5]
    n_late = np.where(season <= 2012, 2015 - season, 0)  # 5, 4, 3 late joiners in 2010-2012
    absent[:, late] = np.arange(len(late))[None, :] < n_late[:, None]
    keep = np.repeat(~absent[:, :, None], _N_WEEKS, axis=2)
    keep = _punch_gaps(rng, keep, n_single=6, runs=(2, 3))
    return _Block("fluview", np.array(["fluview"], dtype=object), h2, season, sample, codes,
                  np.arange(1, _N_WEEKS + 1), _SATURDAY, ili, keep)


def _punch_gaps(rng: np.random.Generator, keep: np.ndarray, n_single: int,
                runs: tuple[int, ...]) -> np.ndarray:
    """Drop single weeks and short runs inside the season, each in its own (group, place).

    Gaps start at week index 4..43, so present weeks remain on both sides and downstream
    interpolation (not zero filling) is exercised.
    """
    present = np.flatnonzero(keep.any(axis=2).ravel())
    group, place = np.unravel_index(rng.choice(present, n_single + len(runs), replace=False),
                                    keep.shape[:2])
    lengths = np.concatenate([np.ones(n_single, np.int64), runs])
    starts = rng.integers(4, 44, len(lengths))
    weeks = np.arange(keep.shape[2])
    gaps = (weeks >= starts[:, None]) & (weeks < (starts + lengths)[:, None])
    keep = keep.copy()
    keep[group, place] &= ~gaps
    return keep


def _flusurv(rng: np.random.Generator) -> _Block:
    """FluSurv-like admissions: 7 seasons, weeks within 10..45, one state absent 5 seasons."""
    codes, population, _ = _places("state")
    seasons = np.arange(2015, 2022)
    h2, season, sample = _groups(np.zeros(len(seasons), np.int64), seasons, 1)
    incidence = _simulate(rng, population, rng.uniform(1.4, 1.8, len(season)),
                          rng.integers(0, 8, len(season)))
    weeks = np.arange(10, 46)
    values = _hospitalisations(rng, incidence, rng.uniform(1e-3, 2e-3, len(season)))
    values = values[:, :, weeks - 1]
    first, last = rng.integers(10, 14, len(season)), rng.integers(40, 46, len(season))
    in_window = (weeks >= first[:, None]) & (weeks <= last[:, None])
    keep = np.repeat(in_window[:, None, :], len(codes), axis=1)
    keep[:5, rng.integers(len(codes))] = False  # joined the network in the sixth season
    return _Block("flusurv", np.array(["csp_flusurv"], dtype=object), h2, season, sample, codes,
                  weeks, _SATURDAY, values, keep)


def _flepi(rng: np.random.Generator, n_samples: int) -> _Block:
    """flepiMoP-like simulated admissions: 2 seasons x n samples, a 23-week window, Sundays."""
    codes, population, _ = _places("state")
    seasons = np.array([2022, 2023])
    h2, season, sample = _groups(np.zeros(len(seasons), np.int64), seasons, n_samples)
    row = season - seasons[0]
    r_group = rng.uniform(1.45, 1.7, len(seasons))[row] * rng.lognormal(0.0, 0.05, len(season))
    onset = rng.integers(2, 8, len(seasons))[row] + rng.integers(-1, 2, len(season))
    incidence = _simulate(rng, population, r_group, onset)
    weeks = np.arange(10, 33)
    values = _hospitalisations(rng, incidence, rng.uniform(1e-3, 2e-3, len(seasons))[row])
    values = values[:, :, weeks - 1]
    return _Block("flepiR1", np.array(["flepiR1"], dtype=object), h2, season, sample, codes,
                  weeks, _SUNDAY, values, np.ones(values.shape, bool))


def _smh(rng: np.random.Generator, n_samples: int) -> _Block:
    """Scenario-hub-like projections: 54 round/model/scenario datasets with 'US' and territories.

    The national row is the sum over the 51 states, as in the hub's submissions; territories
    are simulated like states. Both must be removed downstream before framing.
    """
    names = sorted(f"{rnd}_{model}_{scen}" for rnd in SMH_ROUNDS for model in SMH_MODELS
                   for scen in SMH_SCENARIOS)
    h2_season = np.array([SMH_ROUNDS[name.split("_")[0]] for name in names])
    scenario = np.array([SMH_SCENARIOS[name.rsplit("_", 1)[1]] for name in names])
    h2, season, sample = _groups(np.arange(len(names)), h2_season, n_samples)
    codes, population, kind = _places("state", "territory")
    r_h2 = rng.uniform(1.45, 1.7) * scenario * rng.lognormal(0.0, 0.05, len(names))
    r_group = r_h2[h2] * rng.lognormal(0.0, 0.04, len(h2))
    onset = rng.integers(1, 9, len(names))[h2] + rng.integers(-1, 2, len(h2))
    incidence = _simulate(rng, population, r_group, onset)
    weeks = np.arange(6, 44)
    values = _hospitalisations(rng, incidence, rng.uniform(1e-3, 2e-3, len(names))[h2])
    values = values[:, :, weeks - 1]
    national = values[:, kind == "state"].sum(axis=1, keepdims=True)
    values = np.concatenate([values, national], axis=1)  # 'US' sorts after every FIPS code
    codes = np.append(codes, "US").astype(object)
    return _Block("SMH_R4-R5", np.array(names, dtype=object), h2, season, sample, codes, weeks,
                  _SATURDAY, values, np.ones(values.shape, bool))


def _week_ends(axis: SeasonAxis, seasons: np.ndarray, weeks: np.ndarray,
               weekday: int) -> tuple[np.ndarray, np.ndarray]:
    """Week-end dates [S, W] and whether each really lies in that season week.

    Week 53 holds only one or two days of a season, so it often has no such ``weekday`` (the
    axis then returns the season's last day); such (season, week) cells do not exist in the
    source and are marked invalid.
    """
    stamps = [axis.week_end(int(s), int(w), weekday) for s in seasons for w in weeks]
    dates = pd.DatetimeIndex(stamps).as_unit("ns").to_numpy()
    got_season, got_week = axis.season_and_week(dates)
    valid = (got_season == np.repeat(seasons, len(weeks))) & (
        got_week == np.tile(weeks, len(seasons))) & (pd.DatetimeIndex(dates).day_of_week == weekday)
    shape = (len(seasons), len(weeks))
    return dates.reshape(shape), valid.reshape(shape)


def _to_frame(block: _Block, axis: SeasonAxis) -> pd.DataFrame:
    """Long rows of the kept cells; ``np.nonzero`` walks the grid in key order, so no sort."""
    seasons = np.unique(block.season)
    dates, valid = _week_ends(axis, seasons, block.weeks, block.weekday)
    row = np.searchsorted(seasons, block.season)
    group, place, week = np.nonzero(block.keep & valid[row][:, None, :])
    return pd.DataFrame({
        "datasetH1": pd.Series(np.full(len(group), block.h1, dtype=object), dtype="str"),
        "datasetH2": pd.Series(block.h2_names[block.h2[group]], dtype="str"),
        "sample": block.sample[group].astype(np.int64),
        "fluseason": block.season[group].astype(np.int64),
        "location_code": pd.Series(block.places[place], dtype="str"),
        "season_week": block.weeks[week].astype(np.int64),
        "value": block.values[group, place, week].astype(np.float64),
        "week_enddate": dates[row[group], week],
    })
