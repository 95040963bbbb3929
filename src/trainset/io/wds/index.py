"""The ``-wds`` folder's names and ``index.json``: constants, parsing and validation, side files."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from trainset.errors import TrainsetError
from trainset.versions import KEY, check_version, current

FORMAT_ID = "trainset-webdataset"
VERSION = current("webdataset")  # index.json's format_version
INDEX, SPLITS_FILE, COORDS = "index.json", "splits.json", "coords"
PICKLE_SUFFIXES = frozenset({"pth", "pt", "pkl", "pickle", "pyd"})
RESERVED = frozenset({"index", "part"})
VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
OPTIONS = {"samples_per_shard": 10_000, "samples_per_member": 1, "shard_size_mb": None}
"""Writer options and defaults: samples per tar shard (or a shard size in MB, library use only:
not both), samples packed per tar member."""
SHARD_FILE = re.compile(r"shard-\d{6,}\.tar\Z")
COORD_FILE = re.compile(r"coords/p\d{3,}_c\d{3,}\.npy\Z")
MAX_LISTED = 20  # problems listed per shard by check()
REWRITE = "Fix: rewrite the dataset with trainset, or restore the shard from a good copy"


def read_index(path: Path, text: str | bytes | None = None) -> dict[str, Any]:
    """Parse and validate ``index.json``; a TrainsetError names what is wrong. ``text``: its content,
    already fetched (a folder in an fsspec store, ``path`` its URL)."""
    file = Path(path) / INDEX if text is None else f"{path}/{INDEX}"
    try:
        meta = json.loads(file.read_text() if text is None else text)
    except (OSError, ValueError) as error:
        raise TrainsetError(f"{file}: missing or not JSON ({error}). Fix: point at a -wds folder "
                            "written by trainset, or rewrite it") from error
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_ID:
        raise TrainsetError(f"{file}: not a trainset webdataset index (no 'format': '{FORMAT_ID}'). "
                            "Fix: rewrite the dataset")
    check_version("webdataset", meta.get(KEY), file)
    try:
        _validate_index(meta)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise TrainsetError(f"{file}: {error!r}. Fix: rewrite the dataset with trainset") from error
    return meta


def _validate_index(meta: dict[str, Any]) -> None:
    """Field types, safe file names (no path can leave the folder) and contiguous sample numbering."""
    total, per_member, width = int(meta["samples"]), int(meta["samples_per_member"]), int(meta["key_width"])
    if per_member < 1 or width < 1 or not isinstance(meta["attrs"], dict):
        raise ValueError("samples_per_member, key_width or attrs malformed")
    expected = 0
    for part in meta["parts"]:
        if int(part["first"]) != expected or int(part["size"]) < 0:
            raise ValueError(f"part {part['name']!r} does not start at sample {expected}")
        expected += int(part["size"])
        for var, spec in part["variables"].items():
            if not VAR_NAME.match(var) or var in RESERVED or np.dtype(spec["dtype"]).hasobject:
                raise ValueError(f"variable {var!r} has a bad name or an object dtype")
            [int(n) for n in spec["shape"]], list(spec["dims"]), dict(spec["attrs"])
        if any(not COORD_FILE.match(c["file"]) for c in part["coords"]):
            raise ValueError(f"part {part['name']!r}: coordinate file names must match {COORD_FILE.pattern}")
    if expected != total:
        raise ValueError(f"part sizes add up to {expected}, 'samples' says {total}")
    expected = 0
    for rec in meta["shards"]:
        if not SHARD_FILE.match(rec["file"]):
            raise ValueError(f"shard file name {rec['file']!r} must match {SHARD_FILE.pattern}")
        if rec["first"] != expected or rec["last"] - rec["first"] + 1 != rec["samples"]:
            raise ValueError(f"shard {rec['file']}: first/last/samples do not continue "
                             f"contiguously at sample {expected}")
        expected, _ = rec["last"] + 1, (str(rec["sha256"]), int(rec["bytes"]), int(rec["members"]))
    if expected != total:
        raise ValueError(f"shards hold samples 0..{expected - 1}, 'samples' says {total}")


def load_coord(path: Path, coord: dict[str, Any]) -> np.ndarray:
    """One coordinate side file, without pickle."""
    file = path / coord["file"]
    try:
        values = np.load(file, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise TrainsetError(f"{file}: coordinate {coord['name']!r} missing or unreadable ({error}). "
                            f"{REWRITE}") from error
    return values.astype(object) if coord["dtype"] == "object" else values
