"""Refusing HDF5 (and NetCDF-4) files whose data live outside themselves.

HDF5 can point outside a file in four ways: a dataset's raw data kept in other files
(``external`` storage), an external link to an object of another file, a soft link (a path
resolved when read, which trainset never writes), and a virtual dataset (VDS) mapping datasets
of other files. Read through such a file, a dataset serves bytes its sha256 does not cover (the
evaluation's dataset hash is the file's), and the "other file" may be anything readable, such as
``/etc/passwd``. trainset's writers, h5py's and netCDF-C's, create none of them (NetCDF's
dimension scales are object references inside the file, not links), so all four are refused,
soft links inside the file included: only the data stored in the file are ever read.

The check walks the link structure without following any link (HDF5's ``H5Lvisit`` only goes
down hard links) and looks at each dataset's creation properties: metadata only, so it runs on
every open of a file, in every process.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import h5py

from trainset.errors import TrainsetError

_LINKS = {h5py.h5l.TYPE_SOFT: "soft link", h5py.h5l.TYPE_EXTERNAL: "external link"}
FIX = ("Fix: copy the data into the file (rewrite the dataset with trainset from its source); "
       "trainset reads only data stored in the file itself")


def outside_references(f: h5py.File, path: str | os.PathLike) -> list[str]:
    """One message per link or dataset of ``f`` that points outside plain stored data; [] when none."""
    problems: list[str] = []

    def link(name: bytes, info: h5py.h5l.LinkInfo) -> None:
        key = "/" + name.decode("utf-8", "replace")
        if info.type != h5py.h5l.TYPE_HARD:
            kind = _LINKS.get(info.type, f"user-defined link (type {info.type})")
            problems.append(f"{path}: {key}: {kind}{_target(f, name, info.type)}. {FIX}")

    f.id.links.visit(link, info=True)
    f.visititems(lambda name, obj: _storage(obj, f"/{name}", path, problems))
    return problems


def _target(f: h5py.File, name: bytes, kind: int) -> str:
    """`` to <where>`` for a soft or external link (its value, never followed)."""
    try:
        value = f.id.links.get_val(name)
    except Exception:  # noqa: BLE001 - an unreadable link value is still refused, just unnamed
        return ""
    if kind == h5py.h5l.TYPE_EXTERNAL:
        file, obj = (v.decode("utf-8", "replace") for v in value)
        return f" to {obj} in {file}"
    return f" to {value.decode('utf-8', 'replace')}" if kind == h5py.h5l.TYPE_SOFT else ""


def _storage(obj: h5py.HLObject, key: str, path: str | os.PathLike, problems: list[str]) -> None:
    """External raw storage or a virtual mapping of one dataset, named with the files it reads."""
    if not isinstance(obj, h5py.Dataset):
        return
    if obj.external:
        files = sorted({str(entry[0]) for entry in obj.external})
        problems.append(f"{path}: {key}: external raw storage (HDF5 'external', data read from {files}). {FIX}")
    if obj.is_virtual:
        files = sorted({source.file_name for source in obj.virtual_sources()})
        problems.append(f"{path}: {key}: virtual dataset (VDS) mapping data of {files}. {FIX}")


def refuse_outside(f: h5py.File, path: str | os.PathLike) -> None:
    """Raise :class:`TrainsetError` listing :func:`outside_references` of ``f``, if any."""
    _refuse(outside_references(f, path), path)


def _refuse(problems: list[str], path: str | os.PathLike) -> None:
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise TrainsetError(f"{path}: refused, it points outside itself ({len(problems)} reference(s)):\n{listed}")


def outside_references_of(path: str | os.PathLike) -> list[str]:
    """:func:`outside_references` of the file at ``path`` when it is HDF5 (NetCDF-4 is; classic
    NetCDF has no links: []); raises OSError when an HDF5 file cannot be opened."""
    if not h5py.is_hdf5(Path(path)):
        return []
    with h5py.File(Path(path), "r") as f:
        return outside_references(f, path)


def refuse_outside_file(path: str | os.PathLike) -> None:
    """Raise :class:`TrainsetError` when the file at ``path`` points outside itself; called before
    another library (netCDF-C) opens it, which would follow the references."""
    _refuse(outside_references_of(path), path)


def open_contained(path: str | os.PathLike, opener: Callable[[], Any] | None = None) -> h5py.File:
    """``h5py.File(path, "r")`` after :func:`refuse_outside`; the file is closed when refused.
    ``opener``: returns a file object to read instead (an object in an fsspec store)."""
    f = h5py.File(opener() if opener else Path(path), "r")
    try:
        refuse_outside(f, path)
    except BaseException:
        f.close()
        raise
    return f
