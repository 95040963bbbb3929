"""Writing a Zarr store in parallel jobs (disjoint sample chunks) and gathering their chunk files."""

from __future__ import annotations

import itertools
import logging
import math
import os
from pathlib import Path
from typing import Any

from trainset.collection import SAMPLE, Collection
from trainset.errors import TrainsetError
from trainset.faults import maybe_fail
from trainset.io.base import ChunkShare, Splits
from trainset.io.zarr_.store import OPTIONS
from trainset.io.zarr_.write import check_options, write_store
from trainset.provenance import atomic_path, link_file

logger = logging.getLogger(__name__)


def job_share(collection: Collection, chunk: int, job: int, jobs: int) -> ChunkShare:
    """Job ``job`` of ``jobs`` (checked by :meth:`Format.write_job`): a contiguous, balanced range of
    all parts' sample chunks in order."""
    counts = {name: math.ceil(size / chunk) for name, size in collection.sizes.items()}
    firsts = dict(zip(counts, itertools.accumulate([0, *counts.values()])))
    total = sum(counts.values())
    lo, hi = job * total // jobs, (job + 1) * total // jobs

    def share(part: str, n: int) -> range:
        return range(min(max(lo - firsts[part], 0), n), min(max(hi - firsts[part], 0), n))

    return share


def write_zarr_job(collection: Collection, path: str | os.PathLike, job: int, jobs: int,
                   splits: Splits | None = None, *, chunk: int = OPTIONS["chunk"],
                   compression: str = OPTIONS["compression"], **options: Any) -> None:
    """Job ``job`` of ``jobs``: a store with complete metadata holding only its share of data chunks.

    Jobs read and write disjoint sample ranges, so a cluster runs them at once;
    :func:`gather_zarr` then links their chunk files into one store and writes the ``splits``
    (ignored here).
    """
    check_options(options, compression, chunk)
    share = job_share(collection, int(chunk), job, jobs)
    with atomic_path(path) as tmp:
        write_store(collection, tmp, Path(path), None, int(chunk), compression, share)


def gather_zarr(collection: Collection, job_folders: list[str | os.PathLike], path: str | os.PathLike,
                splits: Splits | None = None, *, chunk: int = OPTIONS["chunk"],
                compression: str = OPTIONS["compression"], **options: Any) -> None:
    """One store from the jobs' data chunks (hard links) plus metadata, coordinates and splits.

    The store is byte-identical, file by file, to one written by :meth:`ZarrFormat.write`.
    """
    check_options(options, compression, chunk)
    path = Path(path)
    with atomic_path(path) as tmp:
        write_store(collection, tmp, path, splits, int(chunk), compression, lambda part, n: range(0))
        for name, part in collection.parts.items():
            expected = math.ceil(int(part.sizes[SAMPLE]) / int(chunk))
            for var in part.data_vars:
                found = _link_chunks([Path(f) / name / str(var) for f in job_folders], tmp / name / str(var))
                if found != expected:
                    raise TrainsetError(f"{path}: {found} of {expected} chunks of {name}/{var} came from the jobs. "
                                        "Fix: rerun every zarr job with the same options")
    logger.info("gathered %d jobs into %s", len(job_folders), path)


def _link_chunks(sources: list[Path], target: Path) -> int:
    """Hard-link (or copy) the chunk files below each ``source/c`` into ``target/c``; count sample chunks."""
    seen, linked = set(), 0
    for source in sources:
        for file in sorted((source / "c").rglob("*")):
            if not file.is_file():
                continue
            relative = file.relative_to(source)
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            try:
                link_file(file, target / relative)
            except FileExistsError:
                raise TrainsetError(f"{file}: chunk written by two jobs. Fix: rerun every zarr job") from None
            seen.add(relative.parts[1])
            linked += 1
            maybe_fail("zarr_gather", linked)
    return len(seen)
