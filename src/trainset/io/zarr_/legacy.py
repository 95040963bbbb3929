"""Import a seed-003 Zarr store (the macro emulator's ``generate_dataset.py`` layout) as a trainset store.

The seed layout, as its guide and ``IRFDataset`` read it::

    <root>/manifest.json          optional: version, creation time, code version, config hash,
                                  seeds and, per world, parameter names/bounds and shock names
    <root>/splits.json            optional: {world: {split: [rows]}}
    <root>/<world>/               a zarr group (v2 or v3) per world
        theta                     [n, n_params]
        irfs                      [n, n_shocks, H+1, 3]  (variables output, inflation, rate)
        trajectories              optional [n, T, k]: simulated paths
        shocks                    optional [n, T, n_shocks]: the shock series behind them
        splits.json               optional: {split: [rows of this world]} (or {"splits": {...}})

It has no trainset manifest, so :func:`trainset.open_dataset` does not open it. The import
writes a normal trainset Zarr store with :class:`~trainset.io.zarr_.format.ZarrFormat` (so
validation, scaler fitting and training read it like any macro dataset).

What is translated. Per-world row indices become global sample numbers (worlds in manifest
order, else sorted by name); ``theta``/``irfs`` are stored float32 (the ``irf`` task's dtype;
a value that does not fit is refused); names come from the manifest (``param_names``,
``param_bounds`` as ``[[low, high], ...]`` or ``{name: [low, high]}``, ``shock_names``,
``trajectory_names``), else ``p0..``, ``shock0..``, ``series0..`` and bounds from the observed
range, each default logged as a warning. The whole manifest and each world group's attributes
are kept unchanged in the dataset (``legacy_manifest``) and part (``legacy_attributes``)
attributes; the upstream sample number of each row is the coordinate ``draw``.

What is refused, with the reason: a trainset store (open it directly), missing ``theta`` or
``irfs``, ``irfs`` not 4-D with last axis 3, row counts that differ between arrays of a world,
series arrays that are not ``[n, T, k]`` (or ``shocks`` not over the world's shocks), non-finite
values, splits with rows out of range, repeated or in two splits, splits for some worlds only,
series stored for some worlds only, any array, group or file the layout does not define, and
symbolic links.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

from trainset.collection import SAMPLE, Collection
from trainset.errors import TrainsetError
from trainset.io.base import Splits
from trainset.io.zarr_.store import MANIFEST, OPTIONS, SPLITS_FILE, open_store, symlinks
from trainset.provenance import file_sha256
from trainset.splits import check_splits

logger = logging.getLogger(__name__)

__all__ = ["import_macro_zarr", "read_macro_zarr"]

VARIABLES = ["output", "inflation", "rate"]
"""The seed's IRF variables, in its order (index 0, 1, 2)."""
ARRAYS = ("theta", "irfs", "trajectories", "shocks")
_NODE_FILES = {"zarr.json", ".zgroup", ".zattrs", ".zmetadata"}
"""Files zarr itself keeps in a group's folder (v3 and v2)."""


def import_macro_zarr(src: str | os.PathLike, dst: str | os.PathLike, *, overwrite: bool = False,
                      chunk: int = OPTIONS["chunk"], compression: str = OPTIONS["compression"]) -> dict[str, Any]:
    """Write the seed-003 store ``src`` as the trainset Zarr store ``dst`` (atomically).

    Returns
    -------
    dict
        ``worlds`` (name -> samples), ``splits`` (name -> samples) and ``dst``.

    Raises
    ------
    TrainsetError
        Anything the layout does not define or that cannot be mapped (module docstring); ``dst``
        is then left as it was.
    """
    from trainset.domains.registry import domain_attrs
    from trainset.io.zarr_.format import ZarrFormat

    dst = Path(dst)
    if dst.exists() and not overwrite:
        raise TrainsetError(f"{dst}: already exists. Fix: choose another DST or pass --overwrite")
    collection, splits = read_macro_zarr(src, name=_dataset_name(dst))
    collection.attrs.update(domain_attrs(collection, splits))
    ZarrFormat().write(collection, dst, splits, chunk=chunk, compression=compression)
    return {"dst": str(dst), "worlds": collection.sizes,
            "splits": None if splits is None else {k: int(v.size) for k, v in splits.items()}}


def _dataset_name(dst: Path) -> str:
    name = dst.name.removesuffix(".zarr")
    return name.removeprefix("TS_") or name


def read_macro_zarr(src: str | os.PathLike, name: str = "imported") -> tuple[Collection, Splits | None]:
    """The seed-003 store ``src`` as a macro :class:`Collection` and its global splits (or None)."""
    root = Path(src)
    if not root.is_dir():
        raise TrainsetError(f"{root}: not a folder. Fix: pass the seed-003 dataset root (holding one folder "
                            "per world)")
    links = symlinks(root)
    if links:
        raise TrainsetError(f"{root}: refused, symbolic links inside the store: {links[0]}")
    manifest = _read_json(root / MANIFEST) if (root / MANIFEST).is_file() else None
    if isinstance(manifest, dict) and manifest.get("format") == "trainset-zarr":
        raise TrainsetError(f"{root}: already a trainset Zarr store. Fix: open it with trainset.open_dataset")
    if manifest is not None and not isinstance(manifest, dict):
        raise TrainsetError(f"{root / MANIFEST}: a JSON object is expected, got {type(manifest).__name__}")
    worlds = _world_names(root, manifest)
    meta = _manifest_worlds(manifest, root)
    unknown = sorted(set(meta) - set(worlds))
    if unknown:
        raise TrainsetError(f"{root / MANIFEST}: describes worlds {unknown} that have no folder in {root} "
                            f"(found {worlds}). Fix: restore their folders or remove them from the manifest")
    parts, local = {}, {}
    for world in worlds:
        parts[world], local[world] = _read_world(root, world, meta.get(world, {}), manifest or {})
    for key in ("trajectories", "shocks"):  # a variable of some worlds only would drop out of mixed batches
        having = [w for w, part in parts.items() if key in part]
        if having and len(having) != len(parts):
            raise TrainsetError(f"{root}: {key} stored for worlds {having} only (of {list(parts)}). Fix: store it "
                                "for every world, or remove it from all")
    collection = Collection(parts, _dataset_attrs(root, name, manifest, parts))
    return collection, _global_splits(root, collection, local)


def _read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError) as error:
        raise TrainsetError(f"{file}: not readable JSON ({error}). Fix: restore the file from the "
                            "original dataset") from error


def _world_names(root: Path, manifest: dict[str, Any] | None) -> list[str]:
    """World folders in manifest order (else sorted); any other entry of the root is refused."""
    worlds, extra = [], []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.is_dir() and ((entry / "zarr.json").is_file() or (entry / ".zgroup").is_file()):
            worlds.append(entry.name)
        elif entry.name not in _NODE_FILES | {MANIFEST, SPLITS_FILE}:
            extra.append(entry.name)
    if extra:
        raise TrainsetError(f"{root}: {extra} are not part of the seed-003 layout (a zarr group per world, "
                            f"{MANIFEST}, {SPLITS_FILE}). Fix: move them out of the dataset folder")
    if not worlds:
        raise TrainsetError(f"{root}: no world groups (folders holding zarr.json or .zgroup). Fix: pass the root "
                            "that generate_dataset.py wrote")
    order = list(_manifest_worlds(manifest, root)) if manifest else []
    return [w for w in order if w in worlds] + [w for w in worlds if w not in order]


def _manifest_worlds(manifest: dict[str, Any] | None, root: Path) -> dict[str, dict[str, Any]]:
    """World -> its manifest entry; ``worlds`` may be a dict by name or a list of entries with a name."""
    raw = (manifest or {}).get("worlds")
    if raw is None:
        return {}
    if isinstance(raw, dict) and all(isinstance(v, dict) for v in raw.values()):
        return {str(k): v for k, v in raw.items()}
    if isinstance(raw, list) and all(isinstance(v, dict) and ("name" in v or "world_id" in v) for v in raw):
        return {str(v.get("name", v.get("world_id"))): v for v in raw}
    raise TrainsetError(f"{root / MANIFEST}: 'worlds' is neither {{world: {{...}}}} nor a list of entries with "
                        "'name'. Fix: restore the manifest generate_dataset.py wrote")


def _read_world(root: Path, world: str, meta: dict[str, Any],
                manifest: dict[str, Any]) -> tuple[xr.Dataset, dict[str, Any] | None]:
    """One world's part (theta, irfs, optional series, coords, attrs) and its local splits (raw)."""
    where = root / world
    try:
        group = zarr.open_group(open_store(where), mode="r")
    except Exception as error:  # zarr raises several types for unreadable metadata
        raise TrainsetError(f"{where}: not a readable zarr group ({error}). Fix: restore the world folder") from error
    arrays = _members(group, where)
    for required in ("theta", "irfs"):
        if required not in arrays:
            raise TrainsetError(f"{where}: no {required!r} array; a seed-003 world holds theta [n, n_params] and "
                                "irfs [n, n_shocks, H+1, 3]. Fix: restore it or leave the world out")
    values = {key: _values(array, where / key) for key, array in arrays.items()}
    theta, irfs = values["theta"], values["irfs"]
    if theta.ndim != 2:
        raise TrainsetError(f"{where / 'theta'}: shape {list(theta.shape)}, expected [n, n_params]")
    if irfs.ndim != 4 or irfs.shape[-1] != len(VARIABLES):
        raise TrainsetError(f"{where / 'irfs'}: shape {list(irfs.shape)}, expected [n, n_shocks, H+1, 3] (variables "
                            f"{VARIABLES}). Fix: store one response per shock, horizon and variable")
    n = theta.shape[0]
    counts = {key: int(v.shape[0]) for key, v in values.items() if v.ndim}
    if len(set(counts.values())) != 1:
        raise TrainsetError(f"{where}: arrays hold different numbers of samples {counts}. Fix: every array of a "
                            "world needs one row per sample")
    params = _names(meta, "param_names", theta.shape[1], "p", where)
    shocks = _names(meta, "shock_names", irfs.shape[1], "shock", where)
    data = {"theta": ((SAMPLE, "param"), theta), "irfs": ((SAMPLE, "shock", "horizon", "variable"), irfs)}
    coords: dict[str, Any] = {"param": params, "shock": shocks, "horizon": np.arange(irfs.shape[2]),
                              "variable": VARIABLES, "draw": (SAMPLE, np.arange(n, dtype=np.int64))}
    data.update(_series(values, meta, shocks, where, coords))
    data = {key: (dims, _float32(array, where / key)) for key, (dims, array) in data.items()}
    attrs = {"world": world, "param_names": params, "param_bounds": _bounds(meta, params, theta, where),
             "param_priors": meta.get("param_priors", {}), "shock_names": shocks, "variable_names": VARIABLES,
             "seeds": {"seed": _seed(manifest), "rule": "seed 003: sample i was drawn with seed global_seed + i "
                                                         "(coord 'draw' holds i)"},
             "description": str(meta.get("description", "")),
             "legacy_attributes": dict(group.attrs.asdict())}
    return xr.Dataset(data, coords=coords, attrs=attrs), _world_splits(where)


def _members(group: zarr.Group, where: Path) -> dict[str, zarr.Array]:
    """The group's arrays; a subgroup, an unknown array or a stray file is refused."""
    arrays, unknown = {}, []
    with warnings.catch_warnings():  # zarr warns about splits.json; stray files are refused below
        warnings.simplefilter("ignore", UserWarning)
        members = sorted(group.members(), key=lambda kv: kv[0])
    for key, member in members:
        if isinstance(member, zarr.Array) and key in ARRAYS:
            arrays[key] = member
        else:
            unknown.append(key)
    known = set(arrays) | set(unknown) | _NODE_FILES | {SPLITS_FILE}
    stray = sorted(p.name for p in where.iterdir() if p.name not in known)
    if unknown or stray:
        raise TrainsetError(f"{where}: {unknown + stray} are not arrays of the seed-003 layout ({list(ARRAYS)}), "
                            "so trainset cannot say what they mean. Fix: move them out of the world folder "
                            "(or rename a series to trajectories/shocks if that is what it holds)")
    return arrays


def _values(array: zarr.Array, where: Path) -> np.ndarray:
    try:
        values = np.asarray(array[...])
    except Exception as error:  # codec and store errors have no common base class
        raise TrainsetError(f"{where}: unreadable ({error}). Fix: restore the array") from error
    if values.dtype.kind not in "biuf":
        raise TrainsetError(f"{where}: dtype {values.dtype} is not numeric. Fix: store numbers")
    return values


def _float32(values: np.ndarray, where: Path) -> np.ndarray:
    """Stored float32 (the irf task's dtype); NaN, infinities and overflow are refused, not stored."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = values.astype(np.float32)
    bad = ~np.isfinite(out)
    if bad.any():
        first = [int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape)]
        raise TrainsetError(f"{where}: {int(bad.sum())} value(s) are NaN, infinite or beyond float32, first at "
                            f"{first}. Fix: drop or re-simulate those samples")
    return out


def _series(values: dict[str, np.ndarray], meta: dict[str, Any], shocks: list[str], where: Path,
            coords: dict[str, Any]) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    """The optional ``trajectories [n, T, k]`` and ``shocks [n, T, n_shocks]`` over one ``time`` axis."""
    out, times = {}, set()
    for key in ("trajectories", "shocks"):
        if key not in values:
            continue
        array = values[key]
        if array.ndim != 3:
            raise TrainsetError(f"{where / key}: shape {list(array.shape)}, expected [n, T, k] (sample, period, "
                                "series). Fix: store one row per sample and period")
        times.add(array.shape[1])
        if key == "shocks" and array.shape[2] != len(shocks):
            raise TrainsetError(f"{where / key}: {array.shape[2]} series, but irfs has {len(shocks)} shocks. Fix: "
                                "store one series per structural shock, in the irfs' order")
        if key == "trajectories":
            coords["trajectory_variable"] = _names(meta, "trajectory_names", array.shape[2], "series", where)
        out[key] = ((SAMPLE, "time", "trajectory_variable" if key == "trajectories" else "shock"), array)
    if len(times) > 1:
        raise TrainsetError(f"{where}: trajectories and shocks cover different numbers of periods {sorted(times)}. "
                            "Fix: store both over the same periods")
    if times:
        coords["time"] = np.arange(times.pop())
    return out


def _names(meta: dict[str, Any], key: str, size: int, prefix: str, where: Path) -> list[str]:
    names = meta.get(key)
    if names is None:
        logger.warning("%s: the manifest gives no %s; using %s0..%s%d", where, key, prefix, prefix, size - 1)
        return [f"{prefix}{i}" for i in range(size)]
    if not isinstance(names, list) or len(names) != size or len(set(map(str, names))) != size:
        raise TrainsetError(f"{where}: manifest {key} {names!r} is not {size} distinct names (the array has {size}). "
                            f"Fix: correct the manifest's {key} for this world")
    return [str(n) for n in names]


def _bounds(meta: dict[str, Any], params: list[str], theta: np.ndarray, where: Path) -> list[list[float]]:
    bounds = meta.get("param_bounds")
    if isinstance(bounds, dict):
        missing = [p for p in params if p not in bounds]
        if missing:
            raise TrainsetError(f"{where}: manifest param_bounds lacks {missing}. Fix: give [low, high] for each")
        bounds = [bounds[p] for p in params]
    if bounds is None:
        logger.warning("%s: the manifest gives no param_bounds; using the observed range", where)
        bounds = np.column_stack([theta.min(axis=0), theta.max(axis=0)]).tolist()
    if np.shape(bounds) != (len(params), 2):
        raise TrainsetError(f"{where}: manifest param_bounds has shape {np.shape(bounds)}, expected "
                            f"({len(params)}, 2). Fix: one [low, high] per parameter")
    return [[float(low), float(high)] for low, high in bounds]


def _seed(manifest: dict[str, Any]) -> Any:
    """The global seed: ``global_seed``, else ``seed``, else ``seeds.global_seed`` (None if absent)."""
    seeds = manifest.get("seeds")
    for value in (manifest.get("global_seed"), manifest.get("seed"),
                  seeds.get("global_seed") if isinstance(seeds, dict) else seeds):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _dataset_attrs(root: Path, name: str, manifest: dict[str, Any] | None,
                   parts: dict[str, xr.Dataset]) -> dict[str, Any]:
    horizons = {int(p.sizes["horizon"]) - 1 for p in parts.values()}
    attrs = {"name": name, "domain": "macro", "task": "irf", "seed": _seed(manifest or {}),
             "horizon": horizons.pop() if len(horizons) == 1 else None, "worlds": list(parts),
             "imported_from": {"layout": "seed-003 zarr", "sha256": file_sha256(root)},
             "legacy_manifest": manifest}
    if manifest and manifest.get("config_hash") is not None:
        attrs["config_hash"] = str(manifest["config_hash"])
    return attrs


def _world_splits(where: Path) -> dict[str, Any] | None:
    """The raw per-world ``splits.json``: ``{split: [rows]}`` or trainset's ``{"splits": {...}}``."""
    file = where / SPLITS_FILE
    if not file.is_file():
        return None
    raw = _read_json(file)
    if isinstance(raw, dict) and set(raw) >= {"splits"} and isinstance(raw["splits"], dict):
        raw = raw["splits"]
    if not isinstance(raw, dict):
        raise TrainsetError(f"{file}: expected {{split: [row indices]}}, got {type(raw).__name__}")
    return raw


def _global_splits(root: Path, collection: Collection, local: dict[str, Any]) -> Splits | None:
    """Per-world row indices (world files, or the root file {world: {split: rows}}) -> global splits."""
    at_root = (root / SPLITS_FILE).is_file()
    if at_root:
        if any(v is not None for v in local.values()):
            raise TrainsetError(f"{root / SPLITS_FILE}: splits at the root and in world folders; which to use is "
                                "unclear. Fix: keep one of them")
        raw = _read_json(root / SPLITS_FILE)
        if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
            raise TrainsetError(f"{root / SPLITS_FILE}: expected {{world: {{split: [rows of that world]}}}}; a flat "
                                "{split: [rows]} does not say which world's rows they are. Fix: nest it by world "
                                "or put one splits.json in each world folder")
        stray = sorted(set(raw) - set(collection.parts))
        if stray:
            raise TrainsetError(f"{root / SPLITS_FILE}: worlds {stray} are not in the store "
                                f"({list(collection.parts)}). Fix: remove them")
        local = {world: raw.get(world) for world in collection.parts}
    given = [w for w, v in local.items() if v is not None]
    if not given:
        return None
    if len(given) != len(local):
        missing = sorted(set(local) - set(given))
        raise TrainsetError(f"{root}: worlds {missing} have no splits while {given} have. Fix: give every world "
                            "its splits.json, or none")
    names = list(dict.fromkeys(name for w in given for name in local[w]))
    pieces: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for world, offset in collection.offsets.items():
        where = f"{root / SPLITS_FILE}: world {world!r}" if at_root else str(root / world / SPLITS_FILE)
        checked = check_splits(local[world], collection.sizes[world], where)
        for name in names:
            pieces[name].append(offset + checked.get(name, np.zeros(0, np.int64)))
    return check_splits({name: np.sort(np.concatenate(ix)) for name, ix in pieces.items()}, len(collection),
                        f"{root}: splits")
