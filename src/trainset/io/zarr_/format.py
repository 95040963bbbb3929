"""The ``zarr`` format: writer, jobs, reader factory and validator over the modules of this package."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from trainset.collection import Collection
from trainset.io.base import Format, Splits
from trainset.io.zarr_.check import check_store
from trainset.io.zarr_.jobs import gather_zarr, write_zarr_job
from trainset.io.zarr_.read import ZarrReader
from trainset.io.zarr_.store import COMPRESSIONS, MANIFEST, OPTIONS, REWRITE, read_json
from trainset.io.zarr_.write import check_options, write_store
from trainset.provenance import atomic_path

logger = logging.getLogger(__name__)


class ZarrFormat(Format):
    """Chunked Zarr v3 store for datasets of several worlds (parts) of different shapes."""

    name = "zarr"
    suffix = ".zarr"
    folder = True
    options = OPTIONS
    choices = {"compression": COMPRESSIONS}

    def write(self, collection: Collection, path: str | os.PathLike, splits: Splits | None = None,
              *, chunk: int = OPTIONS["chunk"], compression: str = OPTIONS["compression"], **options: Any) -> None:
        """Write ``collection`` (and ``splits``, global indices) atomically to a ``.zarr`` folder.

        Parameters
        ----------
        chunk : int
            Samples per chunk (about one batch); readers use it as their block size.
        compression : {"none", "lz4", "zstd"}
            Chunk codec. ``none`` (default) reads fastest: float training data barely compresses
            and decoding dominated loader time; ``zstd`` adds a checksum that catches corrupted
            bytes.
        """
        check_options(options, compression, chunk)
        with atomic_path(path) as tmp:
            write_store(collection, tmp, Path(path), splits, int(chunk), compression, lambda part, n: range(n))
        logger.info("wrote %s: %d samples in %d worlds", path, len(collection), len(collection.parts))

    def _write_job(self, collection: Collection, path: str | os.PathLike, job: int, jobs: int,
                   splits: Splits | None, **options: Any) -> None:
        """A store with complete metadata holding only job ``job``'s share of the data chunks."""
        write_zarr_job(collection, path, job, jobs, splits, **options)

    def gather(self, collection: Collection, job_folders: list[str | os.PathLike], path: str | os.PathLike,
               splits: Splits | None = None, **options: Any) -> None:
        """One store from the jobs' chunk files (hard links), byte-identical to :meth:`write`'s."""
        gather_zarr(collection, job_folders, path, splits, **options)

    def reader(self, path: str | os.PathLike) -> ZarrReader:
        """A lazy :class:`ZarrReader` (nothing is opened until first use)."""
        return ZarrReader(path)

    def remote_reader(self, url: str, fs: Any, path: str) -> ZarrReader:
        """Through ``zarr.storage.FsspecStore``; the manifest, its copy and chunk presence are checked."""
        return ZarrReader(url, fs, path)

    def guess_can_open(self, path: str | os.PathLike) -> bool:
        """A ``.zarr`` name, or a folder holding both ``zarr.json`` and ``manifest.json``."""
        path = Path(path)
        return path.name.endswith(self.suffix) or (path.is_dir() and (path / MANIFEST).is_file()
                                                    and (path / "zarr.json").is_file())

    def load(self, path: str | os.PathLike) -> tuple[Collection, Splits | None]:
        """The whole dataset back as a :class:`Collection`, plus its splits (or None)."""
        import xarray as xr  # here, not at module level: jobs that only read arrays skip its import

        reader = ZarrReader(path)
        parts = {}
        for world in reader.manifest["worlds"]:
            name = world["name"]
            group_attrs = read_json(reader.path / name / "zarr.json", f"group metadata of world {name!r}")
            parts[name] = xr.Dataset({v["name"]: reader.whole(name, v) for v in world["variables"]},
                                     {c["name"]: reader.whole(name, c, True) for c in world["coords"]},
                                     attrs=group_attrs.get("attributes", {}))
        return Collection(parts, reader.attrs), reader.splits

    def check(self, path: str | os.PathLike) -> list[str]:
        """Every structural problem, one message each with its fix; never raises."""
        path = Path(path)
        try:
            return check_store(path)
        except Exception as error:  # check() reports, it never raises
            return [f"{path}: could not be checked ({type(error).__name__}: {error}). {REWRITE}"]
