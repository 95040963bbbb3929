"""Datasets named by fsspec URLs: local paths, ``file://`` and object stores (``s3://``).

A plain path or a ``file://`` URL opens as always. An object-store URL (``s3://bucket/key``,
``gs://``, ``az://``, ``memory://``) opens through fsspec with the caller's
``storage_options`` (for S3 the ``s3fs`` package: ``pip install -e '.[s3]'``), as each format
allows; a format that cannot keep its integrity checks remotely refuses with the reason:

- **HDF5**: read with h5py from an fsspec file object (ranged reads). The file's own checks run
  as locally: every link and dataset is inspected before any data is read, and references out
  of the file are refused (:mod:`trainset.io.hdf5.refs`).
- **Zarr**: read through ``zarr.storage.FsspecStore``. The manifest, its root-attribute copy and
  every chunk's presence are checked as locally; object stores have no symbolic links, so the
  local link check has nothing to find there.
- **WebDataset**: ``index.json`` and ``splits.json`` through fsspec; each shard streamed into
  a temporary local file and used only once its size and sha256 match ``index.json``
  (:mod:`trainset.io.wds.remote`), so no sample of a tampered shard is yielded.
- **NetCDF**: refused. Its metadata is read with xarray's netCDF4 engine, which opens local
  files only.

A refused format names the fix: read the HDF5, Zarr or WebDataset copy, or copy the dataset to
a local folder first (``fsspec.open_local("simplecache::s3://...")`` or ``aws s3 cp --recursive``).
Other protocols (``sftp``, ``http``...) are refused: links or redirects there would escape the
dataset.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from trainset.errors import TrainsetError
from trainset.io.base import FORMATS, Format, Reader, get_format, guess_format

OBJECT_STORES = ("s3", "s3a", "gs", "gcs", "az", "abfs", "memory")
"""Protocols whose filesystems have no links: a key names its object and nothing else."""


def is_url(path: str | os.PathLike) -> bool:
    return isinstance(path, str) and "://" in path


def open_reader(path: str | os.PathLike, format: str | None = None,
                storage_options: dict[str, Any] | None = None) -> tuple[Format, Reader, Any]:
    """``(format, reader, path)`` for a local path or an fsspec URL; ``path`` as messages name it
    (a ``file://`` URL becomes its local path)."""
    if not is_url(path):
        if storage_options:
            raise TrainsetError(f"{path}: storage_options are for fsspec URLs (s3://...), not local paths. "
                                "Fix: drop storage_options or pass a URL")
        fmt = get_format(format) if format else guess_format(path)
        return fmt, fmt.reader(path), path
    protocol = str(path).split("://", 1)[0].lower()
    if protocol == "file":
        if storage_options:
            raise TrainsetError(f"{path}: storage_options do not apply to file:// URLs. Fix: drop them")
        return open_reader(path.split("://", 1)[1], format)
    if protocol not in OBJECT_STORES:
        raise TrainsetError(f"{path}: protocol {protocol!r} is not read remotely (trainset reads object stores: "
                            f"{list(OBJECT_STORES)}, whose keys cannot link elsewhere). "
                            "Fix: copy the dataset to a local folder and open that")
    fs, inner = filesystem(str(path), storage_options)
    fmt = get_format(format) if format else _by_suffix(str(path))
    return fmt, fmt.remote_reader(str(path), fs, inner), str(path)


def filesystem(url: str, storage_options: dict[str, Any] | None) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it); a missing driver (s3fs) is named with its install."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url, **(storage_options or {}))
    except ImportError as error:
        raise TrainsetError(f"{url}: no fsspec driver for it ({error}). Fix: pip install -e '.[s3]' "
                            "(s3fs), or the fsspec package of your store") from None


def _by_suffix(url: str) -> Format:
    """The format whose suffix ``url`` ends with (a remote object has no magic bytes read here)."""
    name = url.rstrip("/").rsplit("/", 1)[-1]
    for fmt in FORMATS.values():
        if name.endswith(fmt.suffix):
            return fmt
    raise TrainsetError(f"{url}: format not recognised from its name (suffixes: "
                        f"{sorted(f.suffix for f in FORMATS.values())}). Fix: pass format=...")


class RemoteFile:
    """A picklable opener of one object: each process (DataLoader worker) opens its own handle."""

    def __init__(self, fs: Any, path: str) -> None:
        self.fs, self.path = fs, path

    def __call__(self) -> Any:
        return self.fs.open(self.path, "rb")

    def exists(self) -> bool:
        return bool(self.fs.isfile(self.path))


def local_or_remote(path: str | os.PathLike) -> Path | str:
    """A local path as :class:`Path`; a URL kept as text (``Path`` would fold its ``//``)."""
    return str(path) if is_url(path) else Path(path)
