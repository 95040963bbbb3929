"""The ingest and framing stages of the non-flu domains, as the workflow runs them.

Each domain dataset is one entry under ``datasets:`` in the config with a ``domain`` key:

``sequences``
    Seed 001 task types. Long tables ``inputs.parquet`` (sample, t, feature, value) and
    ``labels.parquet`` (per task; none for reconstruction), see :mod:`.sequences`.
``flights``
    Seed 002 flight forecasts. A site-day table ``sitedays.parquet``, see :mod:`.flights`.
``macro``
    Seed 003 worlds. Long tables ``theta.parquet`` (world, sample, param, value) and
    ``irfs.parquet`` (world, sample, shock, horizon, variable, value) plus ``metadata.json``
    (names, bounds and priors per world), see :mod:`.macro.worlds`.

The ingest stage writes those tables to ``results/tables/<dataset>/``, from the bundled demo
generator or from the user's own files (``files: {inputs: ..., labels: ...}``); the framing
stage turns them into the canonical :class:`~trainset.collection.Collection`, written as NetCDF.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from trainset.collection import Collection
from trainset.errors import TrainsetError
from trainset.provenance import atomic_path, file_sha256, provenance
from trainset.table.io import read_raw_table

logger = logging.getLogger(__name__)

TABLES = {"sequences": ("inputs", "labels"), "flights": ("sitedays",), "macro": ("theta", "irfs")}
"""The long tables of each domain, by file stem."""


def ingest_domain(cfg: dict[str, Any], seed: int, output: str | os.PathLike,
                  local_files: dict[str, str | os.PathLike] | None = None) -> dict:
    """Write a domain dataset's long tables (demo or user files) into the folder ``output``.

    ``local_files`` maps keys of ``cfg["files"]`` to where those files can be read when that is
    not their configured path (Snakemake's local copies of storage objects); the config and the
    hashes recorded stay the same.
    """
    domain = _domain(cfg)
    files = {**(cfg.get("files") or {}), **(local_files or {})}
    tables, metadata = _user_tables(files, domain) if files else _demo_tables(cfg, domain, seed)
    record = provenance(config=cfg, seed=seed, inputs={k: file_sha256(v) for k, v in files.items()
                                                       if Path(v).is_file()})
    summary = {"domain": domain, "rows": {name: int(len(t)) for name, t in tables.items() if t is not None},
               "metadata": metadata, "provenance": record}
    with atomic_path(output) as tmp:
        tmp.mkdir()
        for name, table in tables.items():
            if table is not None:
                table.to_parquet(tmp / f"{name}.parquet", index=False)
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
    logger.info("ingested %s tables: %s", domain, summary["rows"])
    return summary


def frame_domain(tables: str | os.PathLike, cfg: dict[str, Any], name: str) -> Collection:
    """The canonical collection of a domain dataset from its ingested tables."""
    domain, folder = _domain(cfg), Path(tables)
    summary = json.loads((folder / "summary.json").read_text())
    attrs = {"name": name, "domain": domain, "config": cfg, "tables_sha256": file_sha256(folder)}
    if domain == "sequences":
        from trainset.domains.sequences import RECIPES, frame_sequences

        labels = folder / "labels.parquet"
        task = cfg.get("task") or RECIPES[cfg.get("recipe", "pulses")]
        return frame_sequences(pd.read_parquet(folder / "inputs.parquet"),
                               pd.read_parquet(labels) if labels.exists() else None, task, name, attrs)
    if domain == "flights":
        from trainset.domains.flights import frame_flights

        return frame_flights(pd.read_parquet(folder / "sitedays.parquet"), name, attrs)
    from trainset.domains.macro import frame_worlds

    collection = frame_worlds(pd.read_parquet(folder / "theta.parquet"), pd.read_parquet(folder / "irfs.parquet"),
                              summary.get("metadata"))
    collection.attrs.update(attrs, task="irf", seed=summary["provenance"]["seed"])
    return collection


def _domain(cfg: dict[str, Any]) -> str:
    domain = cfg.get("domain")
    if domain not in TABLES:
        raise TrainsetError(f"datasets: domain {domain!r} unknown. Fix: use one of {sorted(TABLES)}")
    return domain


def _demo_tables(cfg: dict[str, Any], domain: str, seed: int) -> tuple[dict[str, pd.DataFrame | None], Any]:
    if domain == "sequences":
        from trainset.domains.sequences import make_sequence_tables

        inputs, labels = make_sequence_tables(cfg.get("recipe", "pulses"), int(cfg.get("samples", 1000)), seed,
                                              length=int(cfg.get("length", 64)), features=cfg.get("features"),
                                              **cfg.get("params", {}))
        return {"inputs": inputs, "labels": labels}, {"recipe": cfg.get("recipe", "pulses")}
    if domain == "flights":
        from trainset.domains.flights import make_flight_table

        table = make_flight_table(int(cfg.get("sites", 200)), int(cfg.get("years", 3)), seed,
                                  str(cfg.get("start", "2021-01-01")))
        return {"sitedays": table}, {}
    from trainset.domains.macro import simulate_worlds

    theta, irfs, metadata = simulate_worlds(dict(cfg.get("worlds", {"nk": 200})), seed,
                                            horizon=int(cfg.get("horizon", 40)))
    return {"theta": theta, "irfs": irfs}, metadata


def _user_tables(files: dict[str, Any], domain: str) -> tuple[dict[str, pd.DataFrame | None], Any]:
    files = dict(files)
    missing = [stem for stem in TABLES[domain] if stem not in files and not (domain, stem) == ("sequences", "labels")]
    if missing:
        raise TrainsetError(f"datasets: files needs {missing} for domain {domain}. Fix: add their paths")
    tables = {stem: read_raw_table(files[stem]) if stem in files else None for stem in TABLES[domain]}
    metadata = None
    if "metadata" in files:
        metadata = json.loads(Path(files["metadata"]).read_text())
    return tables, metadata
