"""The ingest and framing stages of the non-flu domains, as the workflow runs them.

Each domain dataset is one entry under ``datasets:`` in the config with a ``domain`` key naming
a registered domain (:mod:`.registry` lists them with their tables). The ingest stage writes
the domain's long tables to ``results/tables/<dataset>/``, from the bundled demo generator or
from the user's own files (``files: {inputs: ..., labels: ...}``, or a seed-001 HDF5 file
``files: {hdf5: ...}`` read into those tables); the framing stage turns them
into the canonical :class:`~trainset.collection.Collection`, written as NetCDF.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from trainset.collection import Collection
from trainset.domains.registry import get_domain
from trainset.provenance import atomic_path, file_sha256, provenance, write_json
from trainset.versions import KEY, check_version, stamp

logger = logging.getLogger(__name__)


def ingest_domain(cfg: dict[str, Any], seed: int, output: str | os.PathLike,
                  local_files: dict[str, str | os.PathLike] | None = None) -> dict:
    """Write a domain dataset's long tables (demo or user files) into the folder ``output``.

    ``local_files`` maps keys of ``cfg["files"]`` to where those files can be read when that is
    not their configured path (Snakemake's local copies of storage objects); the config and the
    hashes recorded stay the same.
    """
    domain = get_domain(cfg.get("domain"))
    files = {**(cfg.get("files") or {}), **(local_files or {})}
    settings = domain.settings(cfg)
    tables, metadata = domain.read(domain, files, settings) if files else domain.demo(settings, seed)
    record = provenance(config=cfg, seed=seed, inputs={k: file_sha256(v) for k, v in files.items()
                                                       if Path(v).is_file()})
    summary = {"domain": domain.name, "rows": {name: int(len(t)) for name, t in tables.items() if t is not None},
               "metadata": metadata, "provenance": record, **stamp("domain_tables")}
    with atomic_path(output) as tmp:
        tmp.mkdir()
        for name, table in tables.items():
            if table is not None:
                table.to_parquet(tmp / f"{name}.parquet", index=False)
        write_json(summary, tmp / "summary.json")
    logger.info("ingested %s tables: %s", domain.name, summary["rows"])
    return summary


def frame_domain(tables: str | os.PathLike, cfg: dict[str, Any], name: str) -> Collection:
    """The canonical collection of a domain dataset from its ingested tables."""
    domain, folder = get_domain(cfg.get("domain")), Path(tables)
    summary = json.loads((folder / "summary.json").read_text())
    check_version("domain_tables", summary.get(KEY), folder / "summary.json")
    attrs = {"name": name, "domain": domain.name, "config": cfg, "tables_sha256": file_sha256(folder)}
    stored = {stem: _read_table(folder / f"{stem}.parquet", stem in domain.optional) for stem in domain.tables}
    return domain.frame(stored, domain.settings(cfg), attrs, summary)


def _read_table(path: Path, optional: bool) -> pd.DataFrame | None:
    """One ingested long table; None for an optional table the dataset has not got."""
    return None if optional and not path.exists() else pd.read_parquet(path)
