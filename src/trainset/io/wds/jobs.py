"""Writing a WebDataset in parallel jobs (contiguous ranges of shards) and gathering them by hard links."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from trainset.collection import Collection
from trainset.io.base import Splits
from trainset.io.wds.write import plan_shards, write_index, write_shards
from trainset.provenance import atomic_path, link_file

JOB_SHARDS = "shards.json"
"""The records of the shards one job wrote (entries of index.json's ``shards``)."""


def write_webdataset_job(collection: Collection, path: str | os.PathLike, job: int, jobs: int,
                         splits: Splits | None = None, **options: Any) -> None:
    """Job ``job`` of ``jobs``: its contiguous range of shards in folder ``path``, plus ``shards.json``.

    Every job plans the same layout, so jobs need no coordination; :func:`gather_webdataset`
    then links their shards into one indexed folder and writes the ``splits`` (ignored here).
    """
    plan = plan_shards(collection, options)
    with atomic_path(path) as tmp:
        tmp.mkdir(parents=True)
        records = write_shards(collection, plan, tmp, plan.job_shards(job, jobs))
        (tmp / JOB_SHARDS).write_text(json.dumps(records, indent=1) + "\n")


def gather_webdataset(collection: Collection, job_folders: list[str | os.PathLike], path: str | os.PathLike,
                      splits: Splits | None = None, **options: Any) -> None:
    """One ``-wds`` folder from the jobs' shards (hard links), with its index, coordinates and splits.

    The folder is byte-identical to one written by :meth:`WebDatasetFormat.write`.
    """
    plan = plan_shards(collection, options)
    records = [rec for folder in job_folders for rec in json.loads((Path(folder) / JOB_SHARDS).read_text())]
    with atomic_path(path) as tmp:
        tmp.mkdir(parents=True)
        for folder in job_folders:
            for shard in sorted(Path(folder).glob("shard-*.tar")):
                link_file(shard, tmp / shard.name)
        write_index(collection, plan, tmp, records, splits)
