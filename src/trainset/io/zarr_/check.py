"""Checking a ``.zarr`` store: manifest, worlds, arrays, every chunk file and the splits, all problems listed."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from trainset.collection import SAMPLE
from trainset.errors import TrainsetError
from trainset.io.zarr_.read import ZarrReader
from trainset.io.zarr_.store import COORDS, MANIFEST, PRIVATE, REWRITE, SPLITS_FILE, chunk_file, symlinks
from trainset.splits import read_splits

def check_store(path: Path) -> list[str]:
    if not path.is_dir():
        return [f"{path}: not a folder. Fix: pass the TS_<name>.zarr folder that trainset wrote"]
    links = symlinks(path)  # refused before any file of the store is read
    if links:
        return links
    if not (path / MANIFEST).is_file():
        return [f"{path / MANIFEST}: missing, so parts and their order are unknown. {REWRITE}"]
    reader = ZarrReader(path)
    try:
        manifest = reader.manifest
        worlds, chunk = list(manifest["worlds"]), int(manifest["chunk"])
    except (TrainsetError, KeyError, TypeError, ValueError) as error:
        return [f"{path / MANIFEST}: unusable ({error}). {REWRITE}"]
    problems = []
    if not (path / "zarr.json").is_file():
        problems.append(f"{path / 'zarr.json'}: root group metadata missing. {REWRITE}")
    for world in worlds:
        try:
            problems += _check_world(reader, world, chunk, manifest.get("split_names") is not None)
        except Exception as error:  # a malformed world entry must not hide the others
            problems.append(f"{path / str(world.get('name'))}: could not be checked ({error}). {REWRITE}")
    return problems


def _check_world(reader: ZarrReader, world: dict[str, Any], chunk: int, has_splits: bool) -> list[str]:
    name, n = world["name"], int(world["n_samples"])
    base = reader.path / name
    if not (base / "zarr.json").is_file():
        return [f"{base}: group of world {name!r} missing (no zarr.json). {REWRITE}"]
    problems, counts = [], {}
    for entry, coord in [(e, False) for e in world["variables"]] + [(e, True) for e in world["coords"]]:
        count, found = _check_array(reader, name, entry, coord, chunk)
        problems += found
        if count is not None:
            counts[f"{COORDS}/{entry['name']}" if coord else entry["name"]] = count
    if any(count != n for count in counts.values()):
        problems.append(f"{base}: inconsistent sample counts between variables {counts} (manifest: {n}). "
                        f"Fix: give every variable of world {name!r} the same number of samples and rewrite")
    if has_splits:
        problems += _check_split_file(base / SPLITS_FILE, n)
    return problems


def _check_array(reader: ZarrReader, world: str, entry: dict[str, Any], coord: bool,
                 chunk: int) -> tuple[int | None, list[str]]:
    """(sample count or None, problems) of one stored array: metadata, dtype, shape, chunks."""
    where = reader.path / world / (COORDS if coord else "") / entry["name"]
    try:
        array = reader.array(world, entry["name"], coord)
    except TrainsetError:
        return None, [f"{where}: {'coordinate' if coord else 'variable'} {entry['name']!r} missing or its "
                      f"zarr.json unreadable. {REWRITE}"]
    problems = []
    expected = np.dtype(entry["dtype"])
    stored = np.dtype(array.attrs.get(PRIVATE, {}).get("dtype", str(array.dtype)))
    strings = expected.kind in "UO" and array.dtype.kind == "T"
    if stored != expected or not (strings or array.dtype == expected):
        problems.append(f"{where}: dtype {array.dtype} (recorded {stored}) but manifest says {expected}. {REWRITE}")
    sampled = bool(entry["dims"]) and entry["dims"][0] == SAMPLE
    shape = list(array.shape[1:] if sampled and not coord else array.shape)
    if shape != list(entry["shape"]) or list(array.metadata.dimension_names or []) != list(entry["dims"]):
        problems.append(f"{where}: shape {shape} dims {array.metadata.dimension_names} differ from the manifest "
                        f"{entry['shape']} {entry['dims']}. {REWRITE}")
    if sampled and array.chunks[0] != min(chunk, max(1, array.shape[0])):
        problems.append(f"{where}: chunks {array.chunks} do not follow the manifest chunk {chunk}. {REWRITE}")
    problems += _check_chunks(array, where)
    return (int(array.shape[0]) if sampled else None), problems


def _check_chunks(array: zarr.Array, where: Path, limit: int = 10) -> list[str]:
    """Every chunk file present and decodable (zstd checksums catch corrupted bytes)."""
    problems: list[str] = []
    grid = [range(math.ceil(s / c)) for s, c in zip(array.shape, array.chunks)]
    for index in itertools.product(*grid):
        file = chunk_file(where, index)
        try:
            if not file.is_file():
                raise FileNotFoundError("chunk file missing")
            array.get_block_selection(index) if index else array[...]
        except Exception as error:  # codec errors have no common base class
            problems.append(f"{file}: chunk {index} of {where.name!r} unreadable ({error}). {REWRITE}")
            if len(problems) >= limit:
                problems.append(f"{where}: stopped after {limit} bad chunks. {REWRITE}")
                break
    return problems


def _check_split_file(file: Path, n: int) -> list[str]:
    if not file.is_file():
        return [f"{file}: missing although the manifest lists splits. {REWRITE} with its splits"]
    try:  # the one split checker: duplicates, overlaps, non-integers, rows outside the world
        read_splits(file, versioned=False, n=n)
    except TrainsetError as error:
        return [str(error)]
    return []
