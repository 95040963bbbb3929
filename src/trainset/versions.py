"""The format version of every artifact trainset stores, and the refusal of one it cannot read.

Artifacts outlive the code that wrote them: a frames file from last month meets a reader that
now expects a new column. Each artifact records ``format_version`` (a JSON key, a Parquet footer
key, a NetCDF/HDF5/Zarr attribute or a checkpoint entry) and each reader calls
:func:`check_version` before it trusts the layout. A version other than the current one is
refused with the rule that rebuilds the artifact, never misread. An artifact from before
versioning (no version recorded) counts as version 0, which is outdated.

Not versioned on their own: a run's ``history.json`` (a list; the checkpoints beside it carry it
and their version) and ``config.json`` (a run config, checked like any config when read back),
and what is made for people to look at (PNG plots, HTML reports, logs).

Stdlib only: the rules layer imports it at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trainset.errors import TrainsetError

KEY = "format_version"
"""The key under which an artifact records its version (JSON files, attributes, checkpoints)."""

PARQUET_KEY = b"trainset.format_version"
"""The Parquet footer key (schema metadata) of the table and frames files."""

VERSION_ATTR = "trainset_format_version"
"""The root attribute of NetCDF and HDF5 files (attributes there share one namespace)."""


class OutdatedArtifact(TrainsetError):
    """An artifact written by another trainset format version (a rebuild fixes it)."""


@dataclass(frozen=True)
class Artifact:
    """One kind of stored artifact: its current version and the rule that rebuilds it."""

    version: int
    rule: str
    what: str
    also: tuple[str, ...] = ()
    """Other rules that write the same kind (e.g. the HDF5 presplit copy's gather rule)."""
    older: tuple[int, ...] = ()
    """Older versions this code still reads: their layout is the current one minus additions
    made for other tools (HDF5 1: no dimension scales; Zarr 1: no manifest in the root group's
    attributes, no consolidated metadata)."""

    @property
    def rules(self) -> tuple[str, ...]:
        return (self.rule, *self.also)


ARTIFACTS: dict[str, Artifact] = {a.what: a for a in (
    Artifact(1, "ingest_table", "table"),
    Artifact(1, "build_frames", "frames"),
    Artifact(1, "write_netcdf", "netcdf", ("frame_dataset",)),
    Artifact(2, "write_hdf5", "hdf5", ("write_hdf5_presplit",), older=(1,)),
    Artifact(2, "write_zarr", "zarr", older=(1,)),
    Artifact(1, "write_webdataset", "webdataset"),
    Artifact(1, "make_splits", "splits"),
    Artifact(1, "fit_scalers", "scalers"),
    Artifact(1, "train_model", "checkpoint"),
    Artifact(1, "tune_io", "io_tuning"),
    Artifact(1, "find_lr", "lr_finder"),
    Artifact(1, "evaluate_model", "metrics"),
    Artifact(1, "validate_dataset", "validation"),
    Artifact(1, "ingest_table", "table_summary"),
    Artifact(1, "build_frames", "frames_summary"),
    Artifact(1, "ingest_domain", "domain_tables"),
    Artifact(1, "gather_search", "search"),
)}


def current(what: str) -> int:
    """The version this code writes for artifacts of kind ``what``."""
    return ARTIFACTS[what].version


def stamp(what: str) -> dict[str, int]:
    """``{"format_version": N}``, to merge into the record an artifact stores."""
    return {KEY: current(what)}


def check_version(what: str, found: Any, path: Any) -> None:
    """Refuse an artifact whose recorded version is not the one this code reads.

    ``found`` is the stored value (None when the artifact records none: written before
    versioning). The message names the file, both versions and the rule to rerun.
    """
    artifact = ARTIFACTS[what]
    version = _as_int(found)
    if version == artifact.version or version in artifact.older:
        return
    if version is not None and 0 <= version < artifact.version:
        age = "outdated" if version else "from before format versions"
        reason = f"{what} format_version {version} is {age}; this trainset reads version {artifact.version}"
    else:
        shown = version if version is not None else found
        reason = (f"{what} format_version {shown!r} is unknown to this trainset (it reads version "
                  f"{artifact.version}); a newer trainset wrote it")
    raise OutdatedArtifact(f"{path}: {reason}. Fix: rebuild it with rule {' or '.join(artifact.rules)} "
                        f"(snakemake --forcerun {artifact.rule}), or read it with the trainset that wrote it")

def _as_int(found: Any) -> int | None:
    """The stored version as an int (attributes come back as numpy ints, footers as bytes);
    0 when nothing was recorded, None when the value is not a version at all."""
    if found is None:
        return 0
    if isinstance(found, bytes):
        found = found.decode(errors="replace")
    if isinstance(found, str):
        return int(found) if found.isdigit() else None
    if isinstance(found, bool):
        return None
    try:
        return int(found) if int(found) == found else None
    except (TypeError, ValueError):
        return None
