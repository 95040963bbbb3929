"""The ``hdf5`` format: writer, reader factory and validator over the modules of this package."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import h5py

from trainset.collection import Collection
from trainset.errors import TrainsetError
from trainset.io.base import Format, Splits
from trainset.io.hdf5.check import checked_info, inspect_file
from trainset.io.hdf5.encoding import COMPRESSIONS, LAYOUTS, MAGIC, OPTIONS, reason
from trainset.io.hdf5.jobs import gather_hdf5, write_hdf5_job
from trainset.io.hdf5.read import HDF5Reader, load_part
from trainset.io.hdf5.refs import open_contained
from trainset.io.remote import RemoteFile
from trainset.io.hdf5.write import checked_layout, write_file
from trainset.provenance import atomic_path

logger = logging.getLogger(__name__)


class HDF5Format(Format):
    """``hdf5``: the seed-001 layouts, chunked per block of samples, byte-deterministic."""

    name = "hdf5"
    suffix = ".h5"
    variants = {"hdf5_presplit": ({"layout": "presplit"}, ".presplit.h5")}
    """The presplit layout as a copy of its own beside the single one (``TS_<name>.presplit.h5``)."""
    options = OPTIONS
    choices = {"layout": LAYOUTS, "compression": COMPRESSIONS}

    def write(self, collection: Collection, path: str | os.PathLike, splits: Splits | None = None,
              **options: Any) -> None:
        """Write ``collection`` (and ``splits``) atomically.

        Parameters
        ----------
        collection : Collection
            The parts to store.
        path : path-like
            Target ``.h5`` file.
        splits : dict of str to ndarray, optional
            Global indices per split: stored under ``/splits``, or as the groups of ``presplit``.
        **options
            ``layout`` ("single" or "presplit"), ``chunk`` (samples per chunk, default 256) and
            ``compression`` (None, "gzip" (level 4, with shuffle) or "lzf").
        """
        path = Path(path)
        layout, chunk, compression, splits = checked_layout(collection, splits, options, path)
        with atomic_path(path) as tmp, h5py.File(tmp, "w", track_times=False) as f:
            write_file(f, collection, splits, layout, chunk, compression)
        logger.info("wrote %s (%d samples, %d part(s), layout %s)", path, len(collection), len(collection.parts),
                    layout)

    def _write_job(self, collection: Collection, path: str | os.PathLike, job: int, jobs: int,
                   splits: Splits | None, **options: Any) -> None:
        """``path/part.h5``: the whole structure with job ``job``'s share of every variable's chunks."""
        write_hdf5_job(collection, path, job, jobs, splits, **options)

    def gather(self, collection: Collection, job_folders: list[str | os.PathLike], path: str | os.PathLike,
               splits: Splits | None = None, **options: Any) -> None:
        """One ``.h5`` file from the jobs' raw chunks, byte-identical for any number of jobs."""
        gather_hdf5(collection, job_folders, path, splits, **options)

    def reader(self, path: str | os.PathLike) -> HDF5Reader:
        """A :class:`HDF5Reader`; raises :class:`TrainsetError` listing every problem of a bad file."""
        return HDF5Reader(path, checked_info(path))

    def remote_reader(self, url: str, fs: Any, path: str) -> HDF5Reader:
        """h5py over fsspec file objects (ranged reads); every check of :meth:`reader` runs."""
        opener = RemoteFile(fs, path)
        return HDF5Reader(url, checked_info(url, opener), opener)

    def load(self, path: str | os.PathLike) -> tuple[Collection, Splits | None]:
        """The whole stored collection and its splits (None when there are none)."""
        info = checked_info(path)
        try:
            with open_contained(path) as f:
                parts = {p.name: load_part(f, p, info.order) for p in info.parts}
        except (OSError, ValueError, KeyError, RuntimeError) as error:
            raise TrainsetError(f"{path}: read failed ({reason(error)}). "
                                "Fix: the file is damaged; rewrite it") from None
        return Collection(parts, dict(info.attrs)), info.splits

    def guess_can_open(self, path: str | os.PathLike) -> bool:
        """By suffix (.h5, .hdf5, .hdf, .he5), else by the HDF5 signature (never for NetCDF names)."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix in (".h5", ".hdf5", ".hdf", ".he5"):
            return True
        if suffix in (".nc", ".nc4", ".cdf") or not path.is_file():
            return False
        with open(path, "rb") as handle:
            return handle.read(8) == MAGIC

    def check(self, path: str | os.PathLike) -> list[str]:
        """Every structural problem of the file (each naming the key and the fix); [] when sound."""
        return inspect_file(path)[1]

