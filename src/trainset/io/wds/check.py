"""Checking a ``-wds`` folder: index, side files and every shard member, all problems listed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainset.collection import SAMPLE
from trainset.errors import TrainsetError
from trainset.io.wds.index import MAX_LISTED, REWRITE, SPLITS_FILE, load_coord, read_index
from trainset.io.wds.members import ShardLayout, shard_file_problem, walk_shard
from trainset.splits import read_splits


def check_folder(path: Path) -> list[str]:
    """The body of :meth:`WebDatasetFormat.check` (may raise; the caller reports)."""
    meta = read_index(path)
    problems = check_side_files(path, meta)
    layout = ShardLayout(meta)
    for rec in meta["shards"]:
        file = path / rec["file"]
        if not file.is_file():
            problems.append(f"{file}: shard listed in index.json is missing. {REWRITE}")
            continue
        found = [shard_file_problem(file, rec)] + [p for p in walk_shard(file, rec, layout, None, check=True)
                                                   if isinstance(p, str)]
        found = [p for p in found if p]
        if len(found) > MAX_LISTED:
            found = found[:MAX_LISTED] + [f"... and {len(found) - MAX_LISTED} more problems"]
        problems += [f"{file}: {p}. {REWRITE}" for p in found]
    listed = {rec["file"] for rec in meta["shards"]}
    problems += [f"{f}: tar file not listed in index.json. Fix: delete it or rewrite the dataset"
                 for f in sorted(path.glob("*.tar")) if f.name not in listed]
    return problems


def check_side_files(path: Path, meta: dict[str, Any]) -> list[str]:
    """Problems of the coordinate files and splits.json."""
    problems = []
    for part in meta["parts"]:
        for coord in part["coords"]:
            try:
                values = load_coord(path, coord)
            except TrainsetError as error:
                problems.append(str(error))
                continue
            if SAMPLE in coord["dims"] and values.shape[coord["dims"].index(SAMPLE)] != part["size"]:
                problems.append(f"{path / coord['file']}: coordinate {coord['name']!r} has "
                                f"{values.shape} values, part {part['name']!r} has {part['size']} samples. {REWRITE}")
    if (path / SPLITS_FILE).exists():
        try:  # the one split checker; the message names the file, the split and the fix
            read_splits(path / SPLITS_FILE, n=int(meta["samples"]))
        except TrainsetError as error:
            problems.append(str(error))
    return problems
