"""Legacy Glideator shards (seed 002) -> a trainset WebDataset, without running a byte of their pickles.

The old pipeline wrote one sample per (site, day) as three ``torch.save`` members of a tar
shard, ``<key>.features.pth``, ``<key>.targets.pth`` and ``<key>.date.pth``, and read them with
webdataset's default decoder, which calls ``torch.load(weights_only=False)``: opening a shard
ran whatever code its pickles carried (anchors section 3). Here each member is decoded with
``torch.load(io.BytesIO(raw), weights_only=True)`` only: tensors, numbers, strings and (nested)
dicts of them load; a member that needs any other Python object (a class, ``open``,
``os.system``) is refused with its shard and member name before anything is constructed.

Source layouts (``SRC``)
    * the guide's ``training/`` folder: ``train_data/``, ``val_data/`` (and ``test_data/``)
      holding ``*.tar`` shards -> splits ``train``, ``val`` (and ``test``), stored in that order;
    * a folder of shards, or one shard -> one unsplit dataset (give it a ``splits.json`` or use
      the layout above before training).

Shards are read in name order and samples in tar order (a sample's members are grouped by the
key, the member name up to the first dot of its base name, as webdataset groups them).

Mapping of a sample (``features`` is what the old model's ``forward`` took)
    ``features.pth``
        a dict ``{"weather": {"9": [W], "12": [W], "15": [W]} or [W], "site": [S],
        "site_id": int, "date": [D]}`` -> ``features`` [N, F] float32, weather hour-major (hours
        in numeric order, as ``frame_flights`` orders them), then site, then date values, with
        ``feature_names`` ``weather_000_h09``..., ``site_0``..., ``date_0``... (the old tensors
        are unnamed, so no names are guessed); ``site_id`` -> the ``site`` variable (index of
        the sorted site ids, for an embedding), the per-sample ``site_id`` coordinate and the
        ``site_ids`` attribute, exactly as :func:`~trainset.domains.flights.frame_flights`
        stores them. Any other key is refused.
        A plain tensor [F] -> ``features`` as is; without ``site_column`` there is no ``site``
        (train it with a model that needs no embedding, e.g. ``mlp``); ``site_column=K`` moves
        column K (integral values) out of the features into the site id.
    ``targets.pth``
        a tensor [K] of 0/1 -> ``targets`` [N, K] float32; thresholds are the guide's
        0, 10, ..., 100 km when K = 11, else they must be given.
    ``date.pth``
        an ISO date string, an integer (days since 1970-01-01) or [year, month, day] ->
        ``date`` (days since 1970-01-01, int64) and the ``day`` coordinate (ISO).

Members other than the three are refused (``skip_unknown=True`` skips them, logging each
shard's skipped member names); a missing member, a sample whose structure differs from the
first sample's, non-binary targets or an unreadable date are refused with the shard, the member
and the fix. The output is written by :class:`~trainset.io.wds.format.WebDatasetFormat`
(atomically: nothing at ``DST`` unless every shard converted).
"""

from __future__ import annotations

import io
import logging
import os
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import xarray as xr

from trainset.collection import Collection
from trainset.errors import TrainsetError

logger = logging.getLogger(__name__)

MEMBERS = ("features.pth", "targets.pth", "date.pth")
SPLIT_FOLDERS = {"train_data": "train", "val_data": "val", "test_data": "test"}
GUIDE_THRESHOLDS = tuple(range(0, 101, 10))
FEATURE_KEYS = ("weather", "site", "site_id", "date")
SHARD_SUFFIXES = (".tar", ".tar.gz", ".tgz")
MAX_MEMBER_BYTES = 256 * 2**20
_EPOCH = np.datetime64("1970-01-01", "D")
_LAST_DAY = int((np.datetime64("2200-01-01", "D") - _EPOCH).astype(np.int64))


# ----------------------------------------------------------------------------- finding shards
def find_shards(src: str | os.PathLike) -> dict[str | None, list[Path]]:
    """Split name (None: unsplit) -> shard files in name order, from the layouts of the module docstring."""
    src = Path(src)
    if src.is_file():
        return {None: [src]}
    if not src.is_dir():
        raise TrainsetError(f"{src}: no such shard or folder. Fix: give a legacy shard, a folder of shards or "
                            "the guide's training/ folder (train_data/, val_data/)")
    shards = _shards_in(src)
    folders = {p.name: p for p in sorted(src.iterdir()) if p.is_dir() and _shards_in(p)}
    unknown = sorted(set(folders) - set(SPLIT_FOLDERS))
    if unknown:
        raise TrainsetError(f"{src}: shard folder(s) {unknown} are not a split of the guide's layout. Fix: name "
                            f"them {sorted(SPLIT_FOLDERS)} (-> splits {sorted(SPLIT_FOLDERS.values())}) or convert "
                            "each folder on its own")
    if folders and shards:
        raise TrainsetError(f"{src}: holds shards both directly ({shards[0].name}, ...) and in {sorted(folders)}. "
                            "Fix: move the loose shards into a split folder, or convert one of the two")
    if folders:
        return {split: _shards_in(folders[folder]) for folder, split in SPLIT_FOLDERS.items() if folder in folders}
    if not shards:
        raise TrainsetError(f"{src}: no legacy shards ({', '.join(SHARD_SUFFIXES)}) found. Fix: point SRC at the "
                            "folder holding them, or at the guide's training/ folder")
    return {None: shards}


def _shards_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(SHARD_SUFFIXES))


# ----------------------------------------------------------------------------- reading members safely
def load_member(raw: bytes, where: str) -> Any:
    """One ``torch.save`` member, decoded with ``weights_only=True`` and nothing else.

    The weights-only unpickler refuses every global outside torch's tensor allow-list *before*
    calling it, so a member built to run ``open`` or ``os.system`` raises here and runs nothing.
    """
    import torch

    try:
        return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any failure is a refusal naming the member
        reason = _short_reason(error)
        raise TrainsetError(f"{where}: refused, it cannot be loaded as plain tensors with torch.load("
                            f"weights_only=True) ({reason}); nothing in it was executed. Fix: re-save it from the "
                            "old environment as tensors or dicts of tensors (torch.save(tensor)), never objects"
                            ) from None


def _short_reason(error: Exception) -> str:
    """The telling line of torch's (long) weights-only message, e.g. ``Unsupported global: GLOBAL builtins.open``."""
    text = str(error)
    found = re.search(r"Unsupported (?:global|operand)[^\n.]*", text)
    line = found.group(0) if found else (text.strip().splitlines() or [type(error).__name__])[0]
    return f"{type(error).__name__}: {line[:200]}"


def iter_samples(shard: Path, skip_unknown: bool = False) -> Iterator[tuple[str, dict[str, bytes]]]:
    """``(key, {member suffix: raw bytes})`` per sample of one shard, in tar order.

    Members are judged from their tar header first: links and devices are refused, directory
    entries hold no data and are passed over, names other than ``<key>.features.pth`` /
    ``.targets.pth`` / ``.date.pth`` are refused (or skipped and logged with ``skip_unknown``).
    """
    skipped: list[str] = []
    try:
        with tarfile.open(shard, mode="r:*") as tar:
            key, group = None, {}
            for info in tar:
                raw = _member_bytes(tar, info, shard, skip_unknown, skipped)
                if raw is None:
                    continue
                member_key, suffix = raw[0], raw[1]
                if member_key != key:
                    if key is not None:
                        yield key, group
                    key, group = member_key, {}
                if suffix in group:
                    raise TrainsetError(f"{shard}: member {info.name!r}: sample {key!r} has {suffix} twice. "
                                        "Fix: keep one member per suffix and sample")
                group[suffix] = raw[2]
                tar.members.clear()  # headers of a 30k-sample shard otherwise pile up
            if key is not None:
                yield key, group
    except (tarfile.TarError, OSError, EOFError) as error:
        raise TrainsetError(f"{shard}: not a readable tar shard ({error}). Fix: re-copy the shard") from None
    if skipped:
        logger.warning("%s: skipped %d member(s) that are not %s (e.g. %s)", shard, len(skipped), list(MEMBERS),
                       skipped[:5])


def _member_bytes(tar: tarfile.TarFile, info: tarfile.TarInfo, shard: Path, skip_unknown: bool,
                  skipped: list[str]) -> tuple[str, str, bytes] | None:
    """(key, suffix, bytes) of one member, None for a directory or a skipped member; refusals raise."""
    where = f"{shard}: member {info.name!r}"
    if info.isdir():
        return None
    if not info.isfile():
        raise TrainsetError(f"{where}: not a regular file (links and devices are refused). Fix: re-create the "
                            "shard with regular files only")
    folder, _, base = info.name.rpartition("/")
    stem, dot, suffix = base.partition(".")
    if not dot or suffix not in MEMBERS or not stem:
        if skip_unknown:
            skipped.append(info.name)
            return None
        raise TrainsetError(f"{where}: not one of the legacy members {list(MEMBERS)} (<key>.<member>); refused "
                            "rather than dropped. Fix: remove it from the shard, or pass --skip-unknown to skip "
                            "such members (each is logged)")
    if info.size > MAX_MEMBER_BYTES:
        raise TrainsetError(f"{where}: {info.size} bytes, more than a legacy sample member can hold "
                            f"({MAX_MEMBER_BYTES}). Fix: check the shard is a Glideator shard")
    handle = tar.extractfile(info)
    data = handle.read() if handle is not None else b""
    if len(data) != info.size:
        raise TrainsetError(f"{where}: truncated ({len(data)} of {info.size} bytes). Fix: re-copy the shard")
    return (f"{folder}/{stem}" if folder else stem), suffix, data


# ----------------------------------------------------------------------------- decoding one sample
def _array(value: Any, where: str, what: str) -> np.ndarray:
    """A tensor, number or list of numbers as a numpy array (refusing anything else)."""
    import torch

    if isinstance(value, torch.Tensor):
        if value.layout != torch.strided or value.is_complex():
            raise TrainsetError(f"{where}: {what} is a {value.layout} / {value.dtype} tensor. Fix: save a dense "
                                "real tensor")
        return value.detach().cpu().numpy()
    if isinstance(value, (bool, int, float, np.generic)) or (isinstance(value, (list, tuple))
                                                   and all(isinstance(v, (bool, int, float)) for v in value)):
        return np.asarray(value)
    raise TrainsetError(f"{where}: {what} is a {type(value).__name__}, not a tensor or number. Fix: save "
                        "tensors (torch.save(tensor) or a dict of tensors)")


def _vector(value: Any, where: str, what: str) -> np.ndarray:
    array = _array(value, where, what)
    if array.ndim > 1 and array.shape[0] == 1:
        array = array[0]  # a sample saved with a batch dimension of one
    if array.ndim != 1 or array.dtype.kind not in "biuf":
        raise TrainsetError(f"{where}: {what} has shape {array.shape} and dtype {array.dtype}; expected a numeric "
                            "vector. Fix: save one [F] tensor per sample")
    return array


def _integer(value: Any, where: str, what: str) -> int:
    array = _array(value, where, what).ravel()
    if array.size != 1 or array.dtype.kind not in "iuf" or not np.isfinite(array).all() or array[0] != int(array[0]):
        raise TrainsetError(f"{where}: {what} is {array.tolist()[:5]}, not one integer. Fix: save the site id as "
                            "an integer tensor")
    return int(array[0])


def flatten_features(value: Any, where: str,
                     site_column: int | None = None) -> tuple[np.ndarray, list[str], int | None]:
    """(feature values, their names, site id or None) of one ``features.pth`` (see the module docstring)."""
    if isinstance(value, dict):
        if site_column is not None:
            raise TrainsetError(f"{where}: site_column applies to plain feature tensors; this one is a dict with "
                                "its own 'site_id'. Fix: drop --site-column")
        return _flatten_dict(value, where)
    values = _vector(value, where, "features")
    names = [f"feature_{j:03d}" for j in range(values.size)]
    if site_column is None:
        return values, names, None
    if not -values.size <= site_column < values.size:
        raise TrainsetError(f"{where}: site column {site_column} is outside the {values.size} features. Fix: give "
                            f"--site-column in 0..{values.size - 1}")
    column = site_column % values.size
    site = _integer(values[column], where, f"site id (feature column {column})")
    keep = np.arange(values.size) != column
    return values[keep], [n for n, k in zip(names, keep) if k], site


def _flatten_dict(value: dict, where: str) -> tuple[np.ndarray, list[str], int | None]:
    unknown = [k for k in value if k not in FEATURE_KEYS]
    if unknown:
        raise TrainsetError(f"{where}: features key(s) {unknown} cannot be mapped (known: {list(FEATURE_KEYS)}); "
                            "refused rather than dropped. Fix: re-save the features without them")
    pieces: list[np.ndarray] = []
    names: list[str] = []
    weather = value.get("weather")
    if isinstance(weather, dict):
        hours = sorted(weather, key=lambda h: (not str(h).isdigit(), int(h) if str(h).isdigit() else 0, str(h)))
        for hour in hours:
            piece = _vector(weather[hour], where, f"features['weather'][{hour!r}]")
            tag = f"h{int(hour):02d}" if str(hour).isdigit() else re.sub(r"\W", "_", str(hour))
            pieces.append(piece)
            names += [f"weather_{j:03d}_{tag}" for j in range(piece.size)]
    elif weather is not None:
        piece = _vector(weather, where, "features['weather']")
        pieces.append(piece)
        names += [f"weather_{j:03d}" for j in range(piece.size)]
    for key in ("site", "date"):
        if key in value:
            piece = _vector(value[key], where, f"features[{key!r}]")
            pieces.append(piece)
            names += [f"{key}_{j}" for j in range(piece.size)]
    if not pieces:
        raise TrainsetError(f"{where}: features dict holds no 'weather', 'site' or 'date' values. Fix: save them")
    site = _integer(value["site_id"], where, "features['site_id']") if "site_id" in value else None
    return np.concatenate([p.astype(np.float64) for p in pieces]), names, site


def parse_targets(value: Any, where: str) -> np.ndarray:
    """A [K] vector of 0/1 threshold exceedances."""
    targets = _vector(value, where, "targets")
    if not np.isin(targets, (0, 1)).all():
        raise TrainsetError(f"{where}: targets {targets.tolist()[:11]} are not all 0 or 1. Fix: store "
                            "'score > t' as 0/1 per threshold")
    return targets


def parse_date(value: Any, where: str) -> int:
    """Days since 1970-01-01 from an ISO string, a day number or ``[year, month, day]``."""
    if isinstance(value, str):
        try:
            day = np.datetime64(value.strip()[:10], "D")
        except ValueError:
            raise TrainsetError(f"{where}: date {value!r} is not an ISO date. Fix: save 'YYYY-MM-DD'") from None
        return int((day - _EPOCH).astype(np.int64))
    array = _array(value, where, "date").ravel()
    if array.dtype.kind not in "iu" and not (array.dtype.kind == "f" and np.all(array == np.round(array))):
        raise TrainsetError(f"{where}: date {array.tolist()[:4]} is not integral. Fix: save an ISO string, days "
                            "since 1970-01-01 or [year, month, day]")
    if array.size == 3:
        try:
            day = np.datetime64(f"{int(array[0]):04d}-{int(array[1]):02d}-{int(array[2]):02d}", "D")
        except ValueError:
            raise TrainsetError(f"{where}: date {array.tolist()} is not a [year, month, day]") from None
        return int((day - _EPOCH).astype(np.int64))
    if array.size == 1 and 0 <= int(array[0]) < _LAST_DAY:
        return int(array[0])
    raise TrainsetError(f"{where}: date {array.tolist()[:4]} is neither days since 1970-01-01 (up to 2200) nor "
                        "[year, month, day]. Fix: save an ISO date string")


# ----------------------------------------------------------------------------- the whole source
@dataclass
class _Columns:
    """What the samples read so far add up to, checked against the first sample's structure."""

    names: list[str] | None = None
    has_site: bool | None = None
    n_targets: int | None = None
    features: list[np.ndarray] = field(default_factory=list)
    targets: list[np.ndarray] = field(default_factory=list)
    sites: list[int] = field(default_factory=list)
    days: list[int] = field(default_factory=list)

    def add(self, features: np.ndarray, names: list[str], site: int | None, targets: np.ndarray, day: int,
            where: str) -> None:
        if self.names is None:
            self.names, self.has_site, self.n_targets = names, site is not None, targets.size
        if names != self.names or (site is not None) != self.has_site or targets.size != self.n_targets:
            raise TrainsetError(f"{where}: {len(names)} features{' + site id' if site is not None else ''} and "
                                f"{targets.size} targets, but the first sample has {len(self.names)}"
                                f"{' + site id' if self.has_site else ''} and {self.n_targets}. Fix: convert "
                                "shards of one layout together")
        self.features.append(features)
        self.targets.append(targets)
        self.days.append(day)
        if site is not None:
            self.sites.append(site)


def read_legacy(src: str | os.PathLike, site_column: int | None = None, skip_unknown: bool = False,
                thresholds: list[float] | None = None,
                name: str = "flights") -> tuple[Collection, dict[str, np.ndarray] | None]:
    """Every legacy shard under ``src`` as a flights :class:`Collection` and its splits (None if unsplit).

    Raises :class:`TrainsetError` naming the shard and member for anything it cannot map.
    """
    layout = find_shards(src)
    columns, sizes = _Columns(), {}
    for split, shards in layout.items():
        before = len(columns.days)
        for shard in shards:
            for key, members in iter_samples(shard, skip_unknown):
                _add_sample(columns, shard, key, members, site_column)
        sizes[split] = len(columns.days) - before
        if not sizes[split]:
            raise TrainsetError(f"{src}: split {split or '(all)'} has no samples. Fix: check its shards")
    collection = _collection(columns, _thresholds(thresholds, columns.n_targets, src), name, layout)
    if None in layout:
        return collection, None
    starts = np.cumsum([0, *sizes.values()])
    splits = {split: np.arange(starts[i], starts[i + 1], dtype=np.int64) for i, split in enumerate(sizes)}
    return collection, splits


def _add_sample(columns: _Columns, shard: Path, key: str, members: dict[str, bytes], site_column: int | None) -> None:
    where = f"{shard}: sample {key!r}"
    missing = [m for m in MEMBERS if m not in members]
    if missing:
        raise TrainsetError(f"{where}: member(s) {missing} missing (every sample needs {list(MEMBERS)}). "
                            "Fix: re-create the shard, or remove the incomplete sample")
    decoded = {m: load_member(members[m], f"{shard}: member '{key}.{m}'") for m in MEMBERS}
    features, names, site = flatten_features(decoded["features.pth"], f"{shard}: member '{key}.features.pth'",
                                             site_column)
    targets = parse_targets(decoded["targets.pth"], f"{shard}: member '{key}.targets.pth'")
    day = parse_date(decoded["date.pth"], f"{shard}: member '{key}.date.pth'")
    columns.add(features, names, site, targets, day, where)


def _thresholds(given: list[float] | None, n_targets: int | None, src: Any) -> list[float]:
    if given is None:
        if n_targets != len(GUIDE_THRESHOLDS):
            raise TrainsetError(f"{src}: targets have {n_targets} columns, not the guide's {len(GUIDE_THRESHOLDS)} "
                                "(0, 10, ..., 100 km). Fix: give the thresholds (--thresholds t1,t2,...)")
        return list(GUIDE_THRESHOLDS)
    if len(given) != n_targets or np.any(np.diff(given) <= 0):
        raise TrainsetError(f"{src}: thresholds {given} must be {n_targets} strictly increasing values (one per "
                            "target column). Fix: correct --thresholds")
    return [int(t) if float(t).is_integer() else float(t) for t in given]


def _collection(columns: _Columns, thresholds: list[float], name: str,
                layout: dict[str | None, list[Path]]) -> Collection:
    """The flights collection, laid out as :func:`~trainset.domains.flights.frame_flights` lays it out."""
    features = np.stack(columns.features).astype(np.float32)
    days = np.asarray(columns.days, dtype=np.int64)
    data = {"features": (("sample", "feature"), features),
            "targets": (("sample", "threshold"), np.stack(columns.targets).astype(np.float32)),
            "date": (("sample",), days)}
    coords: dict[str, Any] = {"feature": np.array(columns.names), "threshold": np.asarray(thresholds),
                              "day": ("sample", np.datetime_as_string(days + _EPOCH, unit="D").astype("U10"))}
    attrs: dict[str, Any] = {"task": "thresholds", "thresholds": thresholds, "feature_names": columns.names,
                             "converted_from": "glideator legacy shards",
                             "legacy_shards": {split or "all": [p.name for p in shards]
                                               for split, shards in layout.items()}}
    hours = sorted({n.rsplit("_", 1)[1] for n in columns.names if re.fullmatch(r"weather_\d+_h\d+", n)})
    if hours:
        attrs["hours"] = hours
    if columns.has_site:
        site_ids, site = np.unique(np.asarray(columns.sites, dtype=np.int64), return_inverse=True)
        data["site"] = (("sample",), site.astype(np.int64))
        coords["site_id"] = ("sample", site_ids[site])
        attrs["site_ids"] = site_ids.tolist()
    return Collection.single(xr.Dataset(data, coords=coords), name=name, attrs=attrs)


def convert_legacy_wds(src: str | os.PathLike, dst: str | os.PathLike, site_column: int | None = None,
                       skip_unknown: bool = False, thresholds: list[float] | None = None,
                       overwrite: bool = False, **options: Any) -> dict[str, Any]:
    """Convert the legacy shards under ``src`` into the trainset WebDataset folder ``dst``.

    Parameters
    ----------
    src, dst
        The legacy layout (module docstring) and the ``-wds`` folder to write (atomically).
    site_column, skip_unknown, thresholds
        See the module docstring.
    overwrite
        Replace an existing ``dst`` (refused otherwise, so a typo cannot wipe a dataset).
    **options
        WebDataset writer options (``samples_per_shard``, ``samples_per_member``).

    Returns
    -------
    dict
        ``samples``, ``splits`` (name -> size), ``features``, ``sites`` (None without site ids).
    """
    from trainset.io.wds.format import WebDatasetFormat

    dst = Path(dst)
    if dst.exists() and not overwrite:
        raise TrainsetError(f"{dst}: already exists. Fix: choose a new DST or pass --overwrite")
    base = dst.name.removeprefix("TS_").removesuffix("-wds") or "flights"
    collection, splits = read_legacy(src, site_column, skip_unknown, thresholds, name=base)
    WebDatasetFormat().write(collection, dst, splits=splits, **options)
    part = next(iter(collection.parts.values()))
    summary = {"samples": len(collection), "splits": {k: int(v.size) for k, v in (splits or {}).items()},
               "features": int(part.sizes["feature"]),
               "sites": len(collection.attrs["site_ids"]) if "site_ids" in collection.attrs else None}
    logger.info("converted %s -> %s: %s", src, dst, summary)
    return summary


__all__ = ["convert_legacy_wds", "find_shards", "flatten_features", "iter_samples", "load_member", "parse_date",
           "parse_targets", "read_legacy"]
