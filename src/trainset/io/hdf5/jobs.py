"""Writing an HDF5 dataset in parallel jobs (disjoint sample chunks) and gathering their raw chunks."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import h5py

from trainset.collection import Collection
from trainset.errors import TrainsetError
from trainset.io.base import Splits
from trainset.io.hdf5.write import checked_layout, write_file
from trainset.provenance import atomic_path

logger = logging.getLogger(__name__)

JOB_FILE = "part.h5"
"""The file a parallel job writes in its folder."""


def write_hdf5_job(collection: Collection, path: str | os.PathLike, job: int, jobs: int,
                   splits: Splits | None = None, **options: Any) -> None:
    """Job ``job`` of ``jobs`` (checked by :meth:`Format.write_job`): ``path/part.h5`` with the whole
    structure and its share of data chunks.

    Each chunked data variable gets a contiguous, balanced range of its sample chunks (the
    expensive part: reading the source, and compressing). :func:`gather_hdf5` copies the raw
    chunks into one file.
    """
    path = Path(path)
    layout, chunk, compression, splits = checked_layout(collection, splits, options, path)
    with atomic_path(path) as tmp:
        tmp.mkdir(parents=True)
        with h5py.File(tmp / JOB_FILE, "w", track_times=False) as f:
            write_file(f, collection, splits, layout, chunk, compression,
                       lambda name, n: range(job * n // jobs, (job + 1) * n // jobs))


def gather_hdf5(collection: Collection, job_folders: list[str | os.PathLike], path: str | os.PathLike,
                splits: Splits | None = None, **options: Any) -> None:
    """One ``.h5`` file: metadata, coordinates and splits written here, data chunks copied raw.

    Chunks are copied with HDF5's direct chunk read/write (no decompression or re-encoding),
    dataset by dataset in chunk order, so the file is byte-identical for any number of jobs.
    """
    path = Path(path)
    layout, chunk, compression, splits = checked_layout(collection, splits, options, path)
    sources = [h5py.File(Path(folder) / JOB_FILE, "r") for folder in job_folders]
    try:
        with atomic_path(path) as tmp, h5py.File(tmp, "w", track_times=False) as f:
            write_file(f, collection, splits, layout, chunk, compression, lambda name, n: range(0))
            _copy_chunks(f, sources, path)
    finally:
        for source in sources:
            source.close()
    logger.info("gathered %d jobs into %s", len(job_folders), path)


def _copy_chunks(target: h5py.File, sources: list[h5py.File], path: Path) -> None:
    """Copy every chunk of every chunked dataset of ``target`` from the job file that holds it."""
    names: list[str] = []
    target.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) and obj.chunks else None)
    for name in names:
        dataset = target[name]
        holder: dict[tuple[int, ...], h5py.Dataset] = {}
        for source in sources:
            chunks = source[name].id
            for i in range(chunks.get_num_chunks()):
                offset = chunks.get_chunk_info(i).chunk_offset
                if offset in holder:
                    raise TrainsetError(f"{path}: chunk {offset} of /{name} written by two jobs. "
                                        "Fix: rerun every hdf5 job with the same options")
                holder[offset] = source[name]
        expected = -(-dataset.shape[0] // dataset.chunks[0])
        if len(holder) != expected:
            raise TrainsetError(f"{path}: {len(holder)} of {expected} chunks of /{name} came from the jobs. "
                                "Fix: rerun every hdf5 job with the same options")
        for offset in sorted(holder):
            mask, data = holder[offset].id.read_direct_chunk(offset)
            dataset.id.write_direct_chunk(offset, data, mask)
