"""The registered domains: what the ingest, framing, split and writer stages need from each.

A domain is one record here, so a stage never asks "which domain is this?" with if/elif: it
looks the record up by the config's ``domain`` (or the collection's ``domain`` attribute) and
calls its hooks. Adding a domain is writing its module and adding one :class:`Domain` below.

``sequences``
    Seed 001 task types. Long tables ``inputs.parquet`` (sample, t, feature, value),
    ``labels.parquet`` (per task; none for reconstruction) and optionally ``splits.parquet``
    (sample, split), see :mod:`.sequences`; or a seed-001 HDF5 file (``files: {hdf5: path}``,
    :mod:`.seed_hdf5`). Offers the ``stored`` split method: the splits the source holds.
``flights``
    Seed 002 flight forecasts. A site-day table ``sitedays.parquet``, see :mod:`.flights`.
``macro``
    Seed 003 worlds. Long tables ``theta.parquet`` (world, sample, param, value) and
    ``irfs.parquet`` (world, sample, shock, horizon, variable, value) plus ``metadata.json``
    (names, bounds and priors per world), optionally ``trajectories`` (world, sample, t,
    variable, value) and ``shocks`` (world, sample, t, shock, value), see :mod:`.macro.worlds`. Offers the
    ``extrapolation`` split method and adds per-world ``scale_statistics`` to written datasets.

Each record's ``defaults`` are the one place the code keeps a domain's config defaults; the
config schema's ``datasets`` defaults, which Snakemake fills in before a rule runs, are checked
against them by ``tests/unit/test_config.py``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from trainset.collection import Collection
from trainset.errors import TrainsetError
from trainset.splits import METHODS, SEED001_FRACTIONS, Splits, check_splits

if TYPE_CHECKING:  # annotations only: each hook imports its domain's module (pandas, xarray) when it runs,
    import pandas as pd  # so a job that splits, validates or gathers one domain's dataset imports no other's

Tables = dict[str, "pd.DataFrame | None"]
"""Long tables by file stem (None for an optional table that is absent)."""


def read_user_tables(domain: Domain, files: Mapping[str, Any], settings: Mapping[str, Any] | None = None
                     ) -> tuple[Tables, Any]:
    """The user's long tables of ``domain`` (and ``metadata``, a JSON file, when given); the
    dataset's ``settings`` are not needed to read tables."""
    from trainset.table.io import read_raw_table

    missing = [stem for stem in domain.tables if stem not in files and stem not in domain.optional]
    if missing:
        raise TrainsetError(f"datasets: files needs {missing} for domain {domain.name}. Fix: add their paths")
    unknown = sorted(set(files) - set(domain.tables) - {"metadata"})
    if unknown:  # a file given and never read would be a silently ignored key
        raise TrainsetError(f"datasets: files {unknown} are not tables of domain {domain.name}. Fix: use "
                            f"{[*domain.tables, 'metadata']}")
    tables = {stem: read_raw_table(files[stem]) if stem in files else None for stem in domain.tables}
    metadata = json.loads(Path(files["metadata"]).read_text()) if "metadata" in files else None
    return tables, metadata


@dataclass(frozen=True)
class Domain:
    """One domain's facts and hooks.

    ``demo(settings, seed)`` and ``read(domain, files, settings)`` give ``(tables, metadata)``;
    ``frame(tables, settings, attrs, summary)`` gives the canonical collection, ``attrs`` (name,
    domain, config, tables hash) going into its attributes; ``splits`` maps split methods only
    this domain offers to ``hook(collection, seed, splits_cfg)``; ``dataset_attrs(collection,
    splits)`` gives attributes every written format of the dataset stores. ``settings`` is the
    config over :attr:`defaults`.
    """

    name: str
    tables: tuple[str, ...]
    defaults: Mapping[str, Any]
    demo: Callable[[dict[str, Any], int], tuple[Tables, Any]]
    frame: Callable[[Tables, dict[str, Any], dict[str, Any], dict[str, Any]], Collection]
    optional: tuple[str, ...] = ()
    read: Callable[[Domain, Mapping[str, Any], Mapping[str, Any]], tuple[Tables, Any]] = read_user_tables
    splits: Mapping[str, Callable[[Collection, int, dict[str, Any]], Splits]] = field(default_factory=dict)
    dataset_attrs: Callable[[Collection, Splits | None], dict[str, Any]] | None = None

    def settings(self, cfg: Mapping[str, Any]) -> dict[str, Any]:
        """The dataset's config with this domain's defaults under it.

        The defaults are copied deeply: a caller changing a nested default (``params``,
        ``worlds``) in its settings must not change it for every later dataset.
        """
        return {**copy.deepcopy(dict(self.defaults)), **cfg}


def _sequences_demo(cfg: dict[str, Any], seed: int) -> tuple[Tables, Any]:
    from trainset.domains.sequences import make_sequence_tables

    inputs, labels = make_sequence_tables(cfg["recipe"], int(cfg["samples"]), seed, length=int(cfg["length"]),
                                          features=cfg["features"], **cfg["params"])
    return {"inputs": inputs, "labels": labels}, {"recipe": cfg["recipe"]}


def _sequences_read(domain: Domain, files: Mapping[str, Any], settings: Mapping[str, Any]) -> tuple[Tables, Any]:
    """A seed-001 HDF5 file (``files: {hdf5: path}``, the whole dataset) or the user's long tables."""
    if "hdf5" not in files:
        return read_user_tables(domain, files, settings)
    others = sorted(set(files) - {"hdf5"})
    if others:
        raise TrainsetError(f"datasets: files {{hdf5: ...}} is a whole dataset (data, labels and splits), so files "
                            f"{others} would not be read. Fix: give either hdf5 or the long tables "
                            f"{list(domain.tables)}, not both")
    from trainset.domains.seed_hdf5 import read_seed_file

    return read_seed_file(files["hdf5"], settings.get("task"))


def _sequences_frame(tables: Tables, cfg: dict[str, Any], attrs: dict[str, Any], summary: dict) -> Collection:
    from trainset.domains.sequences import RECIPES, frame_sequences

    metadata = summary.get("metadata") or {}
    if metadata.get("source") == "hdf5":  # the task was settled (given or inferred) when the file was read
        task, attrs = metadata["task"], {**attrs, "recipe": "hdf5"}
    else:
        task = cfg.get("task") or RECIPES[cfg["recipe"]]
    return frame_sequences(tables["inputs"], tables["labels"], task, attrs["name"], attrs, splits=tables.get("splits"))


def _sequences_stored(collection: Collection, seed: int, splits_cfg: dict[str, Any]) -> Splits:
    """The splits the source holds (its ``stored_split`` coordinate), in the order they first occur.

    ``fractions`` and ``by`` play no part, as for ``explicit``: the source decided.
    """
    parts = list(collection.parts.values())
    if not all("stored_split" in part.coords for part in parts):
        raise TrainsetError(f"{collection.attrs.get('name')}: splits.method 'stored' needs splits in the source (a "
                            "pre-split seed-001 HDF5 file's groups, or a splits table), and this dataset has none. "
                            "Fix: use method random (seed 001 cut fractions {train: 0.7, val: 0.2, test: 0.1})")
    assigned = np.concatenate([part["stored_split"].values.astype(str) for part in parts])
    names, first = np.unique(assigned, return_index=True)
    return check_splits({str(name): np.flatnonzero(assigned == name) for name in names[np.argsort(first)]},
                        assigned.size)


def _flights_demo(cfg: dict[str, Any], seed: int) -> tuple[Tables, Any]:
    from trainset.domains.flights import make_flight_table

    return {"sitedays": make_flight_table(int(cfg["sites"]), int(cfg["years"]), seed, str(cfg["start"]))}, {}


def _flights_frame(tables: Tables, cfg: dict[str, Any], attrs: dict[str, Any], summary: dict) -> Collection:
    from trainset.domains.flights import frame_flights

    return frame_flights(tables["sitedays"], attrs["name"], attrs)


def _macro_demo(cfg: dict[str, Any], seed: int) -> tuple[Tables, Any]:
    from trainset.domains.macro import simulate_worlds

    theta, irfs, metadata = simulate_worlds(dict(cfg["worlds"]), seed, horizon=int(cfg["horizon"]))
    return {"theta": theta, "irfs": irfs}, metadata


def _macro_frame(tables: Tables, cfg: dict[str, Any], attrs: dict[str, Any], summary: dict) -> Collection:
    from trainset.domains.macro import frame_worlds

    collection = frame_worlds(tables["theta"], tables["irfs"], summary.get("metadata"),
                              trajectories=tables.get("trajectories"), shocks=tables.get("shocks"))
    collection.attrs.update(attrs, task="irf", seed=summary["provenance"]["seed"])
    return collection


def _macro_extrapolation(collection: Collection, seed: int, splits_cfg: dict[str, Any]) -> Splits:
    from trainset.domains.macro import extrapolation_splits

    return extrapolation_splits(collection, seed, fractions=splits_cfg.get("fractions"))


def _macro_attrs(collection: Collection, splits: Splits | None) -> dict[str, Any]:
    """Per-world scale statistics of ``train``: worlds' IRFs differ in size, so models normalise per world."""
    from trainset.domains.macro import scale_statistics

    if splits and "train" in splits:
        return {"scale_statistics": scale_statistics(collection, splits["train"])}
    return {}


DOMAINS: Mapping[str, Domain] = MappingProxyType({domain.name: domain for domain in (
    Domain("sequences", ("inputs", "labels", "splits"), MappingProxyType(
        {"recipe": "pulses", "samples": 1000, "length": 64, "features": None, "params": {}}),
        _sequences_demo, _sequences_frame, optional=("labels", "splits"), read=_sequences_read,
        splits=MappingProxyType({"stored": _sequences_stored})),
    Domain("flights", ("sitedays",), MappingProxyType({"sites": 200, "years": 3, "start": "2021-01-01"}),
           _flights_demo, _flights_frame),
    Domain("macro", ("theta", "irfs", "trajectories", "shocks"),
           MappingProxyType({"worlds": {"nk": 200}, "horizon": 40}), _macro_demo, _macro_frame,
           optional=("trajectories", "shocks"), splits=MappingProxyType({"extrapolation": _macro_extrapolation}),
           dataset_attrs=_macro_attrs),
)})
"""Domain name -> record; the config schema's ``domain`` enum lists the same names."""


def get_domain(name: Any) -> Domain:
    """The registered domain ``name``, or an error listing the known ones."""
    if name not in DOMAINS:
        raise TrainsetError(f"datasets: domain {name!r} unknown. Fix: use one of {sorted(DOMAINS)}")
    return DOMAINS[name]


def domain_split(collection: Collection, method: str, source: Any) -> Callable | None:
    """The split hook of ``method`` when the collection's domain offers it (None for the shared methods).

    A domain-only method asked of another dataset is refused here rather than failing deep
    inside a hook that expects that domain's variables.
    """
    domain = DOMAINS.get(collection.attrs.get("domain"))
    if domain is not None and method in domain.splits:
        return domain.splits[method]
    owners = sorted(d.name for d in DOMAINS.values() if method in d.splits)
    if owners:
        raise TrainsetError(f"{source}: splits.method '{method}' is for {', '.join(owners)} datasets, and this one "
                            f"is {collection.attrs.get('domain') or 'a flu mix'}. Fix: use "
                            f"{', '.join(METHODS[:-1])} or {METHODS[-1]}")
    return None


def source_splits_default(collection: Collection, splits_cfg: dict[str, Any] | None) -> dict[str, Any]:
    """``splits_cfg``; for a dataset without a ``splits:`` section, what its source implies.

    A source holding splits (a pre-split seed-001 HDF5 file, a splits table) keeps them
    (``method: stored``); a single-layout seed-001 file is cut as the old code and
    ``trainset train --config`` cut it (random, :data:`~trainset.splits.SEED001_FRACTIONS`,
    here seeded by the workflow's seed). Any ``splits:`` section decides instead.
    """
    if splits_cfg:
        return dict(splits_cfg)
    if collection.parts and all("stored_split" in part.coords for part in collection.parts.values()):
        return {"method": "stored"}
    if collection.attrs.get("recipe") == "hdf5":
        return {"method": "random", "fractions": dict(SEED001_FRACTIONS)}
    return {}


def domain_attrs(collection: Collection, splits: Splits | None) -> dict[str, Any]:
    """Attributes the collection's domain adds to every written format (none for flu mixes)."""
    domain = DOMAINS.get(collection.attrs.get("domain"))
    if domain is None or domain.dataset_attrs is None:
        return {}
    return domain.dataset_attrs(collection, splits)
