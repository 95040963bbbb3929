"""Fitting scalers on the training split of a stored dataset, streamed in fixed-size chunks."""

from __future__ import annotations

import logging
import math
import os
import zlib
from typing import Any

import numpy as np

from trainset.errors import TrainsetError
from trainset.io.base import get_format, guess_format
from trainset.open import dataset_identity, dataset_splits
from trainset.provenance import file_sha256
from trainset.scalers.fitters import SklearnFitter, TransformFitter
from trainset.scalers.scaler_set import ScalerSet
from trainset.scalers.spec import SKLEARN_PARAMS, batched_axis, parse_spec
from trainset.tasks import TASKS

logger = logging.getLogger(__name__)

MAX_ROBUST_ROWS = 200_000
CHUNK_BYTES = 32 << 20  # memory per streamed chunk of training samples


def _chunk_rows(part: Any, names: list[str], chunk_rows: int | None) -> int:
    """Training samples per streamed chunk: ``chunk_rows`` or ~32 MB of the fitted variables."""
    if chunk_rows:
        return int(chunk_rows)
    nbytes = sum(math.prod(part.variables[v].shape) * part.variables[v].dtype.itemsize for v in names)
    return int(min(65_536, max(1, CHUNK_BYTES // max(nbytes, 1))))


def fit_scalers(path: str | os.PathLike, spec: dict[str, str | dict], split: str = "train", seed: int = 0, *,
                max_robust_rows: int = MAX_ROBUST_ROWS, chunk_rows: int | None = None,
                format: str | None = None, splits: dict[str, np.ndarray] | None = None) -> ScalerSet:
    """Fit per-feature scalers on one split (the training split) of a stored dataset.

    Parameters
    ----------
    path : path
        A dataset trainset wrote (``.nc``, ``.h5``, ``.zarr``, ``-wds``), with stored splits or a
        ``splits.json`` beside it (or ``splits`` given).
    spec : dict
        Variable -> kind, or -> ``{"kind", "feature_axis", "params"}`` (see the module docstring).
    split : str
        Only these samples are read; statistics never see the others.
    seed : int
        Seeds the row sample of ``robust`` scalers.
    max_robust_rows : int
        Upper bound on rows held in memory for a ``robust`` scaler.
    chunk_rows : int, optional
        Samples per streamed chunk (default: ~32 MB). Chunks are cut the same way for every
        format, so equal datasets give bit-identical statistics (and ``scaler_hash``).
    format : str, optional
        The stored format (default: guessed from ``path``).
    splits : dict, optional
        Split name -> global indices, for a file that stores none (seed 001's auto-split,
        :func:`trainset.train.autosplit.auto_splits`); default: the dataset's own splits.

    Returns
    -------
    ScalerSet

    Raises
    ------
    TrainsetError
        For an unknown split or variable, a non-float variable, or non-finite training values.
    """
    specs = parse_spec(spec)
    fmt = get_format(format) if format else guess_format(path)
    source = fmt.reader(path)
    parts = source.parts
    if splits is None:
        splits = dataset_splits(path, source.splits, len(source))
    if split not in splits:
        raise TrainsetError(f"{path}: no split {split!r}. Fix: use one of {sorted(splits)}")
    indices = np.asarray(splits[split], dtype=np.int64)
    wanted = [[v for v in specs if v in p.variables] for p in parts]
    for name in specs:
        infos = [(p.name, p.variables[name]) for p in parts if name in p.variables]
        if not infos:
            raise TrainsetError(f"{path}: no variable {name!r} to scale (has "
                                f"{sorted({v for p in parts for v in p.variables})}). Fix: name a stored variable")
        for part_name, info in infos:
            if info.dtype.kind != "f":
                raise TrainsetError(f"{path}: variable {name!r} (part {part_name!r}) is {info.dtype}, not float; "
                                    "only float variables can be scaled. Fix: remove it from the scaler spec "
                                    "(integer labels and ids are used as they are)")
            batched_axis(specs[name], 1 + len(info.shape), name)
    local = source.local_indices(indices)
    sizes = [_chunk_rows(p, w, chunk_rows) for p, w in zip(parts, wanted)]
    fitters: dict[tuple[str, int], Any] = {}
    for number, part in enumerate(parts):
        for name in wanted[number]:
            if not local[number].size:
                logger.warning("scalers: part %r has no %r samples; %r gets no statistics there",
                               part.name, split, name)
                continue
            s, shape = specs[name], (local[number].size, *part.variables[name].shape)
            axis = batched_axis(s, len(shape), name)
            keep = None
            per_sample = math.prod(shape[1:]) // shape[axis]
            if s.kind == "robust" and local[number].size * per_sample > max_robust_rows:
                rng = np.random.default_rng([seed, number, zlib.crc32(name.encode())])
                k = max(1, max_robust_rows // max(per_sample, 1))
                keep = np.sort(rng.choice(local[number], size=k, replace=False))
            fitter = SklearnFitter if s.kind in SKLEARN_PARAMS else TransformFitter
            fitters[name, number] = fitter(s, axis, keep)
    for number, idx, block in source.iter_blocks(indices, list(specs), rows=sizes):
        for name, values in block.items():
            if not np.isfinite(values).all():
                raise TrainsetError(f"{path}: variable {name!r} (part {parts[number].name!r}) has NaN/inf in "
                                    f"split {split!r}. Fix: clean the dataset before fitting scalers")
            fitters[name, number].update(values, idx)
    statistics: dict[str, dict[str, Any]] = {name: {} for name in specs}
    for (name, number), fitter in fitters.items():
        part = parts[number]
        stats = fitter.finish()
        stats.update(shape=list(part.variables[name].shape), n_samples=int(local[number].size),
                     n_rows=int(fitter.rows))
        statistics[name][part.name] = stats
    digest = file_sha256(path)
    dataset = {"path": str(path), "format": fmt.name, "sha256": digest, "split": split, "seed": seed,
               "identity": dataset_identity(path, source.attrs, digest),
               "sizes": {p.name: int(n.size) for p, n in zip(parts, local)}, "max_robust_rows": max_robust_rows}
    logger.info("fitted scalers %s on %d %r samples of %s", sorted(specs), indices.size, split, path)
    return ScalerSet(specs, statistics, dataset)


def fit_dataset_scalers(path: str | os.PathLike, output: str | os.PathLike, spec: dict | None = None,
                        split: str = "train", seed: int = 0) -> ScalerSet:
    """Fit the scalers of a stored dataset on its training split and write them as JSON.

    Without ``spec`` the default scalers of the task stored with the dataset are used
    (:attr:`trainset.tasks.TaskSpec.scalers`); token inputs (integer ``data``) are left unscaled.
    """
    source = guess_format(path).reader(path)
    task = source.attrs.get("task")
    if spec is None:
        if task not in TASKS:
            raise TrainsetError(f"{path}: no default scalers for task {task!r}. Fix: set scalers: {{variable: kind}}")
        floats = {var for part in source.parts for var, info in part.variables.items() if info.dtype.kind == "f"}
        spec = {var: kind for var, kind in TASKS[task].default_scalers().items() if var in floats}
    scalers = fit_scalers(path, spec, split=split, seed=seed)
    scalers.to_json(output)
    return scalers
