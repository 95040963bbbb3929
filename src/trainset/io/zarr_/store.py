"""The ``.zarr`` folder's constants, codecs, names and files (see :mod:`trainset.io.zarr_`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from zarr.codecs import BloscCodec, ZstdCodec
from zarr.storage import LocalStore

from trainset.errors import TrainsetError
from trainset.versions import current

FORMAT_VERSION = current("zarr")  # the manifest's format_version
DEFAULT_CHUNK = 256
MANIFEST, SPLITS_FILE, COORDS, PRIVATE = "manifest.json", "splits.json", "coords", "_trainset"
MANIFEST_ATTR = "trainset"
"""The root group attribute holding the manifest (from format version 2), so zarr and xarray users
see it; ``manifest.json`` keeps a copy for seed-003 tools and the reader refuses a store whose
two copies differ."""
ZSTD_LEVEL = 3
COMPRESSIONS = ("none", "lz4", "zstd")
OPTIONS = {"chunk": DEFAULT_CHUNK, "compression": "none"}
"""Writer options and defaults: samples per chunk, chunk codec (none reads fastest)."""


def compressors(compression: str) -> Any:
    """Codec of a compression name: none reads fastest, lz4 is cheap, zstd smallest (+ checksum)."""
    if compression == "zstd":
        return ZstdCodec(level=ZSTD_LEVEL, checksum=True)
    if compression == "lz4":
        return BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")
    return None


REWRITE = "Fix: rewrite the dataset with trainset (FORMATS['zarr'].write) from its source"
LINK_FIX = ("Fix: copy the data into the store (rewrite the dataset with trainset from its source); "
            "trainset reads only files stored inside the store")


def check_name(name: str, where: str, reserved: tuple[str, ...] = ()) -> None:
    """Refuse names that are not one zarr node below a group."""
    if (not name or "/" in name or "\\" in name or name.startswith("__") or name in (".", "..")
            or name.endswith(".json") or name in reserved):
        raise TrainsetError(f"{where} name {name!r} cannot be a zarr node (no '/', no leading '__', "
                            f"not {['.json files', *reserved]}). Fix: rename it")


def symlinks(path: Path, limit: int = 10) -> list[str]:
    """One message per symbolic link inside the store (files and folders, any depth; none followed).

    A link makes zarr read a chunk or metadata file from wherever it points, outside the bytes the
    store's owner wrote; trainset never writes links (its gather assembles stores from hard links,
    which are files of the store and kept). With no link inside and node names checked, no chunk
    path can resolve outside the store.
    """
    problems: list[str] = []
    folders = [Path(path)] if Path(path).is_dir() else []  # a missing store is reported by its reader
    while folders and len(problems) < limit:
        with os.scandir(folders.pop()) as entries:  # the file type comes with the listing: no stat per file
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.is_symlink():
                    problems.append(f"{path}: {Path(entry.path).relative_to(path).as_posix()}: symbolic link "
                                    f"inside the store (to {os.readlink(entry.path)}). {LINK_FIX}")
                elif entry.is_dir(follow_symlinks=False):
                    folders.append(Path(entry.path))
    if len(problems) >= limit:
        problems.append(f"{path}: stopped after {limit} symbolic links. {LINK_FIX}")
    return problems


def check_manifest_names(manifest: dict[str, Any], file: Path) -> None:
    """Refuse world, variable and coordinate names that would lead a path out of their folder."""
    try:
        for world in manifest["worlds"]:
            check_name(world["name"], f"{file}: world")
            for entry in [*world["variables"], *world["coords"]]:
                check_name(entry["name"], f"{file}: world {world['name']!r} array")
    except (KeyError, TypeError) as error:
        raise TrainsetError(f"{file}: malformed world entry ({error!r}). {REWRITE}") from error


def open_store(path: Path, read_only: bool = True) -> LocalStore:
    """A local-folder zarr store (read-only unless writing)."""
    return LocalStore(path, read_only=read_only)


def chunk_file(base: Path, index: tuple[int, ...]) -> Path:
    """Where zarr's default v3 key encoding puts chunk ``index`` of the array at ``base``."""
    return base.joinpath("c", *map(str, index))


def read_json(file: Path, what: str) -> Any:
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError) as error:
        raise TrainsetError(f"{file}: missing or unreadable {what} ({error}). {REWRITE}") from error
