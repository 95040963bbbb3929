"""The ``webdataset`` format: writer, jobs, reader factory and validator over the modules of this package."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:  # annotations only: xarray is imported by _dataset, the one function that builds it
    import xarray as xr

from trainset.collection import Collection
from trainset.errors import TrainsetError
from trainset.io.base import Format, Splits
from trainset.io.wds.check import check_folder
from trainset.io.wds.index import FORMAT_ID, INDEX, OPTIONS, load_coord
from trainset.io.wds.jobs import gather_webdataset, write_webdataset_job
from trainset.io.wds.read import WdsSource
from trainset.io.wds.write import plan_shards, write_index, write_shards
from trainset.provenance import atomic_path
from trainset.splits import check_splits

logger = logging.getLogger(__name__)


class WebDatasetFormat(Format):
    """Tar shards of ``.npy`` members plus ``index.json`` (see the module docstring)."""

    name = "webdataset"
    suffix = "-wds"
    folder = True
    options = OPTIONS
    random_access = WdsSource.random_access
    packing_option = "samples_per_member"

    def write(self, collection: Collection, path: str | os.PathLike, splits: Splits | None = None,
              **options: Any) -> None:
        """Write ``collection`` as shards, atomically and byte-deterministically.

        Parameters
        ----------
        samples_per_shard : int, default 10000
            Samples per tar shard (or give ``shard_size_mb`` instead).
        shard_size_mb : float, optional
            Target shard size; converted to samples from the largest per-sample size.
        samples_per_member : int, default 1
            Samples packed into one member per variable (e.g. 256 for fast reading).
        """
        plan = plan_shards(collection, options)
        if splits is not None:
            splits = check_splits(splits, len(collection))
        with atomic_path(path) as tmp:
            tmp.mkdir(parents=True)
            shards = write_shards(collection, plan, tmp, range(len(plan.layout)))
            write_index(collection, plan, tmp, shards, splits)
        logger.info("wrote %s: %d samples in %d shards", path, len(collection), len(plan.layout))

    def _write_job(self, collection: Collection, path: str | os.PathLike, job: int, jobs: int,
                   splits: Splits | None, **options: Any) -> None:
        """Job ``job``'s contiguous range of shards in folder ``path``, plus ``shards.json``."""
        write_webdataset_job(collection, path, job, jobs, splits, **options)

    def gather(self, collection: Collection, job_folders: list[str | os.PathLike], path: str | os.PathLike,
               splits: Splits | None = None, **options: Any) -> None:
        """One ``-wds`` folder from the jobs' shards (hard links), with its index, coordinates and splits."""
        gather_webdataset(collection, job_folders, path, splits, **options)

    def reader(self, path: str | os.PathLike) -> WdsSource:
        """A streaming :class:`WdsSource` (opened lazily)."""
        return WdsSource(path)

    def remote_reader(self, url: str, fs: Any, path: str) -> WdsSource:
        """Shards streamed through fsspec, each verified against index.json before it is read
        (:mod:`trainset.io.wds.remote`)."""
        from trainset.io.wds.remote import RemoteWdsSource

        return RemoteWdsSource(url, fs, path)

    def streamed_dataset(self, reader: WdsSource, split: str | None, variables: Sequence[str] | None,
                         **options: Any) -> Any:
        """A :class:`~trainset.loaders.wds.WdsDataset`: ``shuffle``, ``seed``, ``shuffle_buffer``,
        ``batch_size``."""
        from trainset.loaders.wds import WdsDataset

        return WdsDataset(reader, split=split, variables=variables, **options)

    def kept_options(self, reader: WdsSource) -> dict[str, Any]:
        """The stored shard size (``samples_per_shard``)."""
        return {"samples_per_shard": int(reader.meta["samples_per_shard"])}

    def guess_can_open(self, path: str | os.PathLike) -> bool:
        """A ``-wds`` folder name, or a folder whose index.json carries this format's marker."""
        path = Path(path)
        if path.name.endswith(self.suffix):
            return True
        try:
            with open(path / INDEX, "rb") as handle:
                return FORMAT_ID.encode() in handle.read(4096)
        except OSError:
            return False

    def load(self, path: str | os.PathLike) -> tuple[Collection, Splits | None]:
        """Read every shard into the canonical in-memory form (blockwise, no per-sample copies)."""
        source = WdsSource(path)
        meta = source.meta
        arrays = [{v: np.empty((p["size"], *s["shape"]), dtype=np.dtype(s["dtype"]))
                   for v, s in p["variables"].items()} for p in meta["parts"]]
        for shard in range(len(meta["shards"])):
            for start, part, n, block in source.iter_shard(shard):
                local = start - meta["parts"][part]["first"]
                for var, values in block.items():
                    arrays[part][var][local:local + n] = values
        parts = {p["name"]: _dataset(Path(path), p, arrays[i]) for i, p in enumerate(meta["parts"])}
        return Collection(parts, dict(meta["attrs"])), source.splits

    def check(self, path: str | os.PathLike) -> list[str]:
        """Every structural problem of a ``-wds`` folder, each with its fix; never raises or unpickles."""
        path = Path(path)
        try:
            return check_folder(path)
        except TrainsetError as error:
            return [str(error)]
        except Exception as error:  # noqa: BLE001 - check() reports, never raises
            return [f"{path}: unreadable ({error!r}). Fix: rewrite the dataset with trainset"]


def _dataset(path: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> xr.Dataset:
    """One part back as an xarray Dataset (variables, coordinates, attrs)."""
    import xarray as xr  # here, not at module level: jobs that only read samples skip its import

    data_vars = {v: xr.Variable(s["dims"], arrays[v], s["attrs"]) for v, s in meta["variables"].items()}
    coords = {c["name"]: xr.Variable(c["dims"], load_coord(path, c), c["attrs"]) for c in meta["coords"]}
    return xr.Dataset(data_vars, coords=coords, attrs=meta["attrs"])
