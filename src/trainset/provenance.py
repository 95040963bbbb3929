"""Provenance and safe writing: hashes, code version, dates and atomic outputs.

Every artifact trainset writes carries a record of what made it (config slice, seed, input
hashes, code version), and is written to a temporary path that is renamed into place only once
complete, so a failed step never leaves a partial file that a rerun would mistake for output.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

import trainset

_BLOCK = 1 << 20


def file_sha256(path: str | os.PathLike) -> str:
    """Return the hex SHA-256 of a file (or of every file below a folder, in sorted order)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            while block := handle.read(_BLOCK):
                digest.update(block)
    return digest.hexdigest()


def json_sha256(obj: Any) -> str:
    """Hash a JSON-able object independently of key order (for config hashes)."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


def canonical_json(obj: Any) -> str:
    """Serialise with sorted keys and no whitespace, so equal configs give equal strings."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def jsonable(obj: Any, where: str) -> Any:
    """``obj`` as plain JSON types (numpy scalars/arrays converted), or a TrainsetError naming
    ``where``: attributes stored in files must survive a JSON round trip unchanged."""
    from trainset.errors import TrainsetError

    def convert(value: Any) -> Any:
        if isinstance(value, (np.generic, np.ndarray)):
            return value.tolist()
        raise TypeError(f"{type(value).__name__} is not JSON-able")

    try:
        return json.loads(json.dumps(obj, default=convert))
    except (TypeError, ValueError) as error:
        raise TrainsetError(f"{where}: {error}. Fix: keep attrs to numbers, strings, lists and dicts") from error


def code_version() -> str:
    """The installed trainset version; stored beside every artifact."""
    return trainset.__version__


def creation_date() -> str:
    """Today's date as YYYY-MM-DD, or the date of ``SOURCE_DATE_EPOCH`` when set.

    Only the day is recorded, never the time, so two runs on the same day give byte-identical
    files; ``SOURCE_DATE_EPOCH`` (the reproducible-builds convention) pins it across days.
    """
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        when = _dt.datetime.fromtimestamp(int(epoch), tz=_dt.timezone.utc)
    else:
        when = _dt.datetime.now(tz=_dt.timezone.utc)
    return when.strftime("%Y-%m-%d")


def provenance(config: Any = None, seed: int | None = None, inputs: dict | None = None) -> dict:
    """The record stored beside an artifact: config slice, seed, input hashes, code version."""
    return {
        "trainset_version": code_version(),
        "creation_date": creation_date(),
        "seed": seed,
        "config": config,
        "inputs": inputs or {},
    }


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only on success.

    The temporary lives in the same folder so the final ``os.replace`` is atomic. On any
    exception the temporary (file or folder) is removed and ``target`` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        yield tmp
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def write_json(obj: Any, target: str | os.PathLike) -> None:
    """Write pretty, key-sorted JSON atomically (stable bytes for equal content)."""
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def copy_file(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Copy a file atomically."""
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def link_file(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Hard-link ``source`` as ``target`` (no bytes copied), copying where links cannot be made.

    Gather steps use it to assemble a dataset from the files its parallel jobs wrote: the jobs'
    outputs stay in place for Snakemake, and the dataset costs no extra disk on one filesystem.
    """
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError:  # another filesystem, or one without hard links
        shutil.copyfile(source, target)
