"""The dataset stage: flu frames -> NetCDF, splits, and the other formats.

Everything streams: frames go to NetCDF one row group at a time, conversions read the NetCDF
source lazily, and Zarr and WebDataset can be written by parallel jobs plus a gather step.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from trainset.collection import Collection
from trainset.errors import TrainsetError
from trainset.provenance import file_sha256, provenance

logger = logging.getLogger(__name__)


def write_mix_netcdf(
    frames_path: str | os.PathLike,
    output: str | os.PathLike,
    mix: str,
    mix_cfg: dict[str, Any],
    season_axis: dict[str, Any],
    seed: int,
    options: dict[str, Any] | None = None,
) -> None:
    """Convert one mix's frames file into ``TS_{mix}.nc`` with its provenance as attributes.

    Frames stream from the Parquet file one row group at a time into the NetCDF variable, so
    memory holds the per-sample coordinates and one block, whatever the number of frames.
    ``options`` are the mix's ``format_options.netcdf`` (``chunk``, ``compression``).
    """
    # here, not at module level: the jobs that split, convert or gather a dataset skip pandas and xarray
    import xarray as xr

    from trainset.arrays import ARRAY_NAME, DIMS, training_attrs, training_block, training_coords
    from trainset.io.netcdf import ArraySpec, write_netcdf_blocks
    from trainset.mixing.config import MIX_DEFAULTS
    from trainset.mixing.store import iter_frame_values, read_fill_scales, read_frame_table, read_frames_provenance
    from trainset.seasons import SeasonAxis

    axis = SeasonAxis.from_config(season_axis)
    frames = read_frame_table(frames_path, axis.weeks, axis.places)
    upstream = read_frames_provenance(frames_path)
    record = provenance(config=mix_cfg, seed=seed, inputs={"frames": file_sha256(frames_path)})
    attrs = {
        "mix": mix,
        "mix_cfg": mix_cfg,
        "seed": seed,
        "season_axis": season_axis,
        "input_table_sha256": upstream.get("inputs", {}).get("table", ""),
        "frames_sha256": record["inputs"]["frames"],
        "trainset_version": record["trainset_version"],
        "creation_date": record["creation_date"],
        "fill_scale": read_fill_scales(frames_path, axis.weeks, axis.places),
    }
    coords = training_coords(frames, axis.week_numbers, axis.places, mix_cfg.get("pad_to", MIX_DEFAULTS["pad_to"]))
    n_weeks, n_places = len(coords["season_week"]), len(coords["place"])
    spec = ArraySpec(ARRAY_NAME, DIMS, (len(frames), 1, n_weeks, n_places), np.dtype(np.float32),
                     training_attrs(coords, attrs))
    blocks = ((start, training_block(values, n_weeks, n_places))
              for start, values in iter_frame_values(frames_path, axis.weeks, axis.places))
    write_netcdf_blocks(output, xr.Dataset(coords=coords), spec, blocks, {"task": "frames", "name": mix}, part=mix,
                        **(options or {}))
    logger.info("wrote %s: %s", output, dict(zip(DIMS, spec.shape)))


def split_dataset(source: str | os.PathLike, output: str | os.PathLike, splits_cfg: dict[str, Any], seed: int) -> dict:
    """Write ``splits.json`` for a stored dataset from its ``splits`` config.

    Methods a domain offers (``extrapolation`` of macro worlds: parameter-slice and corner test
    splits per world) come from its registered hook.
    ``group`` and ``time`` splits read the per-sample coordinate named by ``splits_cfg["by"]``
    (for flu mixes ``group``, the origin without its copy number, keeps every copy of a curve in
    one split).

    ``random`` and ``explicit`` splits need the sample count only: it is read from the
    dataset's metadata (for NetCDF through h5py), without opening its variables through xarray.
    """
    from trainset.domains.registry import DOMAINS
    from trainset.io.base import guess_format
    from trainset.splits import with_defaults

    fmt = guess_format(source)
    method = with_defaults(splits_cfg)["method"] if splits_cfg else None
    if method in ("random", "explicit") and not any(method in domain.splits for domain in DOMAINS.values()):
        return _write_made(len(fmt.reader(source)), None, source, output, with_defaults(splits_cfg), seed)
    with fmt.open(source) as (collection, _):
        return _split(collection, source, output, splits_cfg, seed)


def _split(collection: Collection, source, output, splits_cfg: dict[str, Any], seed: int) -> dict:
    """The body of :func:`split_dataset` (reads per-sample coordinates only)."""
    from trainset.domains.registry import domain_split, source_splits_default
    from trainset.splits import with_defaults, write_splits

    splits_cfg = with_defaults(source_splits_default(collection, splits_cfg))
    method, by = splits_cfg["method"], splits_cfg["by"]
    hook = domain_split(collection, method, source)
    if hook is not None:
        splits = hook(collection, seed, splits_cfg)
        write_splits(splits, output, method=method, seed=seed, sizes={k: int(v.size) for k, v in splits.items()})
        return splits
    labels = None
    if method in ("group", "time"):
        assigned = _assigned_at_mixing(collection)
        if assigned is not None:
            return _write_assigned(assigned, output, splits_cfg, seed, source)
        labels = _per_sample(collection, by, source)
    return _write_made(len(collection), labels, source, output, splits_cfg, seed)


def _write_made(n: int, labels: Any, source, output, splits_cfg: dict[str, Any], seed: int) -> dict:
    """Make the splits of ``n`` samples (``labels``: per-sample groups or times, or None) and write them."""
    from trainset.splits import make_splits, write_splits

    method, by = splits_cfg["method"], splits_cfg["by"]
    splits = make_splits(n, splits_cfg, seed, groups=labels if method == "group" else None,
                         times=labels if method == "time" else None)
    write_splits(splits, output, method=method, by=by if labels is not None else None, seed=seed,
                 sizes={name: int(ix.size) for name, ix in splits.items()})
    logger.info("splits of %s: %s", source, {name: int(ix.size) for name, ix in splits.items()})
    return splits


def _assigned_at_mixing(collection: Collection) -> np.ndarray | None:
    """The per-sample ``split`` a flu mix recorded when it kept fill sources inside splits."""
    parts = list(collection.parts.values())
    if not parts or not all("split" in part.coords and part["split"].dims == ("sample",) for part in parts):
        return None
    return np.concatenate([part["split"].values.astype(str) for part in parts])


def _write_assigned(assigned: np.ndarray, output, splits_cfg: dict[str, Any], seed: int, source) -> dict:
    """Splits as the mixing stage assigned them (fill sources were drawn inside these splits)."""
    from trainset.splits import check_splits, with_defaults, write_splits

    splits_cfg = with_defaults(splits_cfg)
    names = list(splits_cfg["fractions"])
    unknown = sorted(set(assigned) - set(names))
    if unknown:
        raise TrainsetError(f"{source}: samples assigned to splits {unknown} at mixing, not in splits.fractions "
                            f"{names}. Fix: rebuild the frames (snakemake reruns build_frames)")
    splits = check_splits({name: np.flatnonzero(assigned == name) for name in names}, assigned.size)
    sizes = {name: int(ix.size) for name, ix in splits.items()}
    write_splits(splits, output, method=splits_cfg["method"], by=splits_cfg["by"],
                 seed=seed, sizes=sizes, assigned_at="mixing")
    logger.info("splits of %s (assigned at mixing): %s", source, sizes)
    return splits


def _per_sample(collection: Collection, name: str, source) -> Any:
    """A per-sample coordinate across all parts (the part name itself for ``part``)."""
    values = []
    for part_name, part in collection.parts.items():
        if name == "part":
            values.append(np.full(part.sizes["sample"], part_name))
        elif name in part.coords and part[name].dims == ("sample",):
            values.append(part[name].values)
        else:
            raise TrainsetError(f"{source}: splits.by '{name}' is not a per-sample coordinate. "
                                f"Fix: use one of {sorted(c for c in part.coords if part[c].dims == ('sample',))} or 'part'")
    return np.concatenate(values)


def convert_dataset(source: str | os.PathLike, splits_path: str | os.PathLike | None, format_name: str,
                    output: str | os.PathLike, options: dict[str, Any] | None = None) -> None:
    """Write the dataset stored at ``source`` (and its splits) as stored copy ``format_name``.

    ``options`` are the dataset's ``format_options.<format>``; the options a variant fixes
    (``hdf5_presplit``: ``layout``) are laid over them here, in this module only
    (:meth:`~trainset.io.base.StoredCopy.writer_options`), for every writer below. The source is
    opened lazily: writers read it slab by slab, so memory stays bounded.
    """
    from trainset.io.base import get_copy, guess_format

    copy = get_copy(format_name)
    with guess_format(source).open(source) as (collection, stored):
        splits = _splits(splits_path, stored, len(collection))
        copy.adapter.write(_with_statistics(collection, splits, source), output, splits, **copy.writer_options(options))
    logger.info("wrote %s as %s", output, format_name)


def _parallel_copy(format_name: str) -> Any:
    """The stored copy ``format_name``, refused unless parallel jobs write it."""
    from trainset.io.base import get_copy, stored_copies

    copy = get_copy(format_name)
    if not copy.parallel:
        written = [name for name, c in stored_copies().items() if c.parallel]
        raise TrainsetError(f"{format_name}: not written in jobs. Fix: use one of {written}")
    return copy


def write_dataset_job(source: str | os.PathLike, splits_path: str | os.PathLike | None, format_name: str,
                      output: str | os.PathLike, options: dict[str, Any], job: int, jobs: int) -> None:
    """Job ``job`` of ``jobs`` writing its share of a WebDataset (shards), Zarr store or HDF5 file
    (sample chunks): :meth:`~trainset.io.base.Format.write_job` of stored copy ``format_name``.

    Every job plans the same layout from the source's metadata, so jobs need no coordination
    and :func:`gather_dataset` finds each piece where the plan put it.
    """
    from trainset.io.base import guess_format

    copy = _parallel_copy(format_name)
    with guess_format(source).open(source) as (collection, stored):
        splits = _splits(splits_path, stored, len(collection))
        copy.adapter.write_job(collection, output, job, jobs, splits, **copy.writer_options(options))
    logger.info("job %d/%d: %s", job + 1, jobs, output)


def gather_dataset(source: str | os.PathLike, splits_path: str | os.PathLike | None, format_name: str,
                   job_folders: list[str | os.PathLike], output: str | os.PathLike, options: dict[str, Any]) -> None:
    """Assemble the jobs' shards or chunks into one dataset (hard links: no bytes copied).

    The result is byte-identical to one written by the format's ``write``, whatever the
    number of jobs.
    """
    from trainset.io.base import guess_format

    copy = _parallel_copy(format_name)
    with guess_format(source).open(source) as (collection, stored):
        splits = _splits(splits_path, stored, len(collection))
        copy.adapter.gather(_with_statistics(collection, splits, source), job_folders, output, splits,
                            **copy.writer_options(options))
    logger.info("gathered %d jobs into %s", len(job_folders), output)


def _splits(splits_path: str | os.PathLike | None, stored: dict | None, n: int) -> dict | None:
    """The splits a copy stores: ``splits_path``'s, else the source's, checked against its ``n`` samples."""
    from trainset.splits import check_splits, read_splits

    if splits_path:
        return read_splits(splits_path, n=n)
    return check_splits(stored, n, "stored splits of the source") if stored else stored


def _with_statistics(collection: Collection, splits: dict | None, source: str | os.PathLike) -> Collection:
    """The collection with the attributes its domain adds to written datasets (e.g. the
    per-world scale statistics of ``train`` for macro worlds), and the identity of the dataset
    it is a copy of (:func:`~trainset.open.dataset_identity` of ``source``, attribute
    ``source_sha256``), so scalers fitted on the NetCDF are known to belong to every copy.

    Only writers of metadata (``write``, ``gather``) need it: a job's shards or chunks hold no
    dataset attributes."""
    from trainset.domains.registry import domain_attrs
    from trainset.open import SOURCE_ATTR, dataset_identity

    collection.attrs.update(domain_attrs(collection, splits))
    collection.attrs[SOURCE_ATTR] = dataset_identity(source, collection.attrs)
    return collection
