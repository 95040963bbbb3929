"""Provenance and safe writing: hashes, code version, dates and atomic outputs.

Every artifact trainset writes carries a record of what made it (config slice, seed, input
hashes, code version), and is written to a temporary path that is renamed into place only once
complete, so a failed step never leaves a partial file that a rerun would mistake for output.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

import trainset

logger = logging.getLogger(__name__)

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
    return json.dumps(jsonable(obj, "canonical JSON"), sort_keys=True, separators=(",", ":"))


def jsonable(obj: Any, where: str, *, nan_as_null: bool = False) -> Any:
    """``obj`` as plain JSON types, or a TrainsetError naming ``where``.

    The one numpy-to-JSON encoder: numpy scalars and arrays become numbers and lists, tuples
    lists, keys text (as ``json`` writes them), so attributes stored in files survive a JSON
    round trip unchanged. NaN and infinities stay floats, unless ``nan_as_null`` makes them
    (and pandas' NA) None, for strict JSON such as ``metrics.json``. Any other type is refused
    rather than silently turned into text.
    """
    from trainset.errors import TrainsetError

    try:
        return _plain(obj, nan_as_null)
    except TypeError as error:
        raise TrainsetError(f"{where}: {error}. Fix: keep attrs to numbers, strings, lists and dicts") from error


def _plain(obj: Any, nan_as_null: bool) -> Any:
    if isinstance(obj, dict):
        return {_key(key): _plain(value, nan_as_null) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(value, nan_as_null) for value in obj]
    if isinstance(obj, (np.generic, np.ndarray)):
        return _plain(obj.tolist(), nan_as_null)
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, float):
        return None if nan_as_null and not math.isfinite(obj) else float(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, str):
        return str(obj)
    if nan_as_null and _is_pandas_na(obj):
        return None
    raise TypeError(f"{type(obj).__name__} is not JSON-able")


def _key(key: Any) -> str:
    """A mapping key as ``json.dumps`` writes it (numpy scalars taken as their Python value)."""
    if isinstance(key, str):
        return str(key)
    key = key.item() if isinstance(key, np.generic) else key
    if key is None or isinstance(key, (bool, float)):
        return json.dumps(key)  # null, true, NaN, 0.5 ...
    if isinstance(key, int):
        return str(int(key))
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def _is_pandas_na(value: Any) -> bool:
    pandas = sys.modules.get("pandas")  # only a loaded pandas can have made one
    return pandas is not None and value is pandas.NA


NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
"""A name that becomes one path segment (a mix, dataset, table, run or search under ``results/``):
letters, digits, ``_``, ``.`` and ``-``, starting with a letter or digit, and never ``..``.
The schema's ``propertyNames`` patterns are this one (tests/hostile/test_names_and_tables.py)."""


def safe_name(name: Any, key: str) -> str:
    """``name`` when it can be one path segment; else a TrainsetError naming ``key`` and the fix.

    Checked again where names are joined into paths, so a name that slipped past the schema
    (``../../escaped``, ``sub/evil``) can neither leave ``results/`` nor nest folders.
    """
    if isinstance(name, str) and re.fullmatch(NAME_PATTERN, name) and ".." not in name:
        return name
    from trainset.errors import TrainsetError

    raise TrainsetError(f"{key}: the name {name!r} becomes a file or folder name under results/, so it may hold "
                        "only letters, digits, '_', '.' and '-', start with a letter or digit, and never contain "
                        "'..' (no '/', no spaces). Fix: rename it, e.g. to "
                        f"{_suggested(name)!r}")


def _suggested(name: Any) -> str:
    """A safe spelling of ``name`` for the message: other characters become ``_``."""
    text = re.sub(r"[^A-Za-z0-9_.-]", "_", str(name)).replace("..", "_").lstrip("._-")
    return text or "my_name"


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
    exception the temporary (file or folder) is removed and ``target`` is left untouched; a
    full disk is reported as such, naming ``target``. Temporaries of ``target`` left by a killed
    process (which runs no cleanup) are removed first: Snakemake runs one job per output, so no
    live writer owns them.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_temporaries(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=_TMP_SUFFIX, dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        yield tmp
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException as error:
        full = _disk_full(error, target.parent)  # measured before the temporary frees its space
        _remove(tmp)
        if full:
            from trainset.errors import TrainsetError

            raise TrainsetError(f"{target}: no space left on device while writing it ({error}). Fix: free space "
                                f"on the disk holding {target.parent} and rerun") from error
        raise


_TMP_SUFFIX = ".tmp"
_TMP_RANDOM = r"[a-z0-9_]+"  # tempfile's random part (8 of these); no dot, so never another output's
_FULL_BYTES = 1 << 20
"""Free space below which a write error is taken for a full disk: netCDF-C and HDF5 report
ENOSPC as a generic error ("NetCDF: HDF error"), without the errno."""


def sweep_temporaries(target: str | os.PathLike) -> list[Path]:
    """Remove the temporaries :func:`atomic_path` made for ``target`` (exactly: never another
    output's, whose name merely starts the same); returns what was removed."""
    target = Path(target)
    pattern = re.compile(re.escape(f".{target.name}.") + _TMP_RANDOM + re.escape(_TMP_SUFFIX))
    stale = sorted(p for p in target.parent.iterdir() if pattern.fullmatch(p.name))
    for path in stale:
        _remove(path)
        logger.info("removed %s, a temporary of %s left by an interrupted write", path.name, target)
    return stale


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _disk_full(error: BaseException, folder: Path) -> bool:
    """Whether ``error`` came from a full disk (or quota): by its errno, else by the free space."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if not isinstance(error, (OSError, RuntimeError)):
        return False
    try:
        return shutil.disk_usage(folder).free < _FULL_BYTES
    except OSError:
        return False


def write_json(obj: Any, target: str | os.PathLike) -> None:
    """Write pretty, key-sorted JSON atomically (stable bytes for equal content)."""
    text = json.dumps(jsonable(obj, str(target)), indent=2, sort_keys=True) + "\n"
    with atomic_path(target) as tmp:
        tmp.write_text(text)


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
