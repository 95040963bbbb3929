"""Apply a trained run to a new stored dataset and write its predictions in data units.

``trainset predict`` calls :func:`predict_dataset`. Unlike evaluation, the dataset may be
another one than the model was trained on (a new season, a new batch of sequences), so its
hash is not compared; instead everything the model depends on must fit the checkpoint's record
of its training data (``info``): the task, every variable's per-sample shape and dtype, the
class count, vocabulary size, site count and worlds. Anything else is refused with the
difference, never padded or cut. The scalers must be those the run was trained with (their
hash is in the checkpoint); predictions of scaled regression targets are mapped back to data
units, classification outputs stay logits.

The output is a NetCDF file: ``pred`` (and ``target`` and ``mask`` where the dataset has
them) over ``(sample, dim_1, ...)``, with coordinates ``index`` (the sample's position in the
dataset) and ``split``, and attributes naming the run, checkpoint, dataset and their hashes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from trainset.errors import TrainsetError
from trainset.provenance import file_sha256

logger = logging.getLogger(__name__)

COMPARED = ("task", "num_classes", "vocab_size", "n_sites", "target_seq_len")
"""Keys of a dataset's ``info`` that must equal the checkpoint's (besides variables and worlds)."""


def predict_dataset(run_folder: str | os.PathLike, dataset: str | os.PathLike, output: str | os.PathLike,
                    scalers: str | os.PathLike | None = None, splits: list[str] | None = None,
                    checkpoint: str = "best.pt", device: str | None = None) -> dict[str, Any]:
    """Predict every sample of ``splits`` (default: all the dataset stores) of ``dataset`` with the
    run in ``run_folder`` (its ``config.json`` and ``checkpoint``) and write ``output`` (.nc).

    ``device`` (e.g. ``cpu``) replaces the run's ``training.device``: a run trained on a GPU
    predicts on a machine without one. Returns a summary: samples per split, the output path
    and the checkpoint used.
    """
    from trainset.evaluate.predict import predict
    from trainset.io.base import guess_format
    from trainset.provenance import atomic_path
    from trainset.tasks import TASKS
    from trainset.train.config import TrainingConfig

    folder = Path(run_folder)
    cfg = TrainingConfig.from_dict(_read_config(folder))
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, scaler=None))  # fitted scalers: loaded, not refitted
    if device is not None:
        cfg = dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, device=device))
    scalers = scalers or (folder / "scalers.json" if (folder / "scalers.json").exists() else None)
    model, meta, loaded = _load_model(cfg, folder / checkpoint, scalers)
    info = meta.get("info") or {}
    spec = TASKS.get(info.get("task"))
    if spec is not None and spec.generative:
        raise TrainsetError(f"{folder / checkpoint}: task {info['task']!r} is generative: it draws samples and "
                            "predicts nothing from inputs. Fix: sample with the evaluation report instead")
    stored = guess_format(dataset).reader(dataset).splits or {}
    wanted = list(splits) if splits else list(stored)
    missing = [s for s in wanted if s not in stored]
    if missing or not wanted:
        raise TrainsetError(f"{dataset}: no split(s) {missing or wanted} (it stores {sorted(stored) or 'none'}). "
                            "Fix: pass --split with one of those, or write splits.json for the dataset")
    check_fits(info, describe_new(cfg, dataset, wanted[0], loaded), dataset, folder / checkpoint)
    results = {name: predict(model, cfg, dataset, name, loaded, info) for name in wanted}
    attrs = {"run": cfg.name, "task": info.get("task") or "", "checkpoint": str(folder / checkpoint),
             "checkpoint_sha256": file_sha256(folder / checkpoint), "dataset": str(dataset),
             "dataset_sha256": file_sha256(dataset), "trained_on_sha256": meta.get("dataset_sha256") or "",
             "scaler_sha256": meta.get("scaler_sha256") or "",
             "units": "data units (scaled targets mapped back); classification outputs are logits"}
    table = _as_dataset(results, attrs)
    with atomic_path(output) as tmp:
        table.to_netcdf(tmp, engine="netcdf4")
    counts = {name: int(len(r.pred)) for name, r in results.items()}
    logger.info("%s: %s predictions written to %s", cfg.name, counts, output)
    return {"output": str(output), "samples": counts, "checkpoint": str(folder / checkpoint)}


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    if not path.exists():
        raise TrainsetError(f"{folder}: no config.json: not a run folder written by trainset train. "
                            "Fix: pass the folder holding best.pt, history.json and config.json")
    return json.loads(path.read_text())


def _load_model(cfg: Any, checkpoint: Path, scalers_path: Any) -> tuple[Any, dict, Any]:
    """The checkpoint's model (built from its own ``info``) and the scalers, checked to be the
    ones it was trained with."""
    from trainset.evaluate.predict import restore_model
    from trainset.train.run import load_scalers, run_device
    from trainset.train.trainer import checkpoint_meta, load_checkpoint

    if not checkpoint.exists():
        raise TrainsetError(f"{checkpoint}: no such checkpoint. Fix: train the run first, or pass --checkpoint")
    device = run_device(cfg)
    state = load_checkpoint(checkpoint, map_location=device)
    meta = checkpoint_meta(state, checkpoint)
    scalers = load_scalers(scalers_path)
    have = scalers.hash if scalers is not None else None
    if meta.get("scaler_sha256") != have:
        raise TrainsetError(f"{checkpoint}: trained with scalers {meta.get('scaler_sha256')}, but "
                            f"{scalers_path or 'no --scalers'} gives {have}. Fix: pass the scalers file the run "
                            "was trained with (--scalers results/scalers/<dataset>.json)")
    model, info = restore_model(cfg, state, meta, checkpoint, device)
    return model, {**meta, "info": info}, scalers


def describe_new(cfg: Any, dataset: str | os.PathLike, split: str, scalers: Any) -> dict[str, Any]:
    """The ``info`` the run would record for ``dataset`` (the way training describes its data)."""
    from trainset.train.run import prepare_run

    return prepare_run(cfg, dataset, scalers, splits={split: False}, model=False).info


def check_fits(trained: dict[str, Any], new: dict[str, Any], dataset: Any, checkpoint: Any) -> None:
    """Refuse a dataset whose task, variables (per-sample shape, dtype) or sizes differ from the
    checkpoint's training data, listing every difference."""
    problems = [f"{key}: trained on {trained.get(key)!r}, dataset has {new.get(key)!r}"
                for key in COMPARED if trained.get(key) != new.get(key)]
    old_vars, new_vars = trained.get("variables") or {}, new.get("variables") or {}
    for name, var in old_vars.items():
        got = new_vars.get(name)
        if got is None:
            problems.append(f"variable {name!r}: missing (dataset has {sorted(new_vars)})")
        elif list(got["shape"]) != list(var["shape"]) or str(got["dtype"]) != str(var["dtype"]):
            problems.append(f"variable {name!r}: trained on shape {list(var['shape'])} {var['dtype']} per sample, "
                            f"dataset has {list(got['shape'])} {got['dtype']}")
    if sorted(trained.get("worlds") or {}) != sorted(new.get("worlds") or {}):
        problems.append(f"worlds: trained on {sorted(trained.get('worlds') or {})}, "
                        f"dataset has {sorted(new.get('worlds') or {})}")
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise TrainsetError(f"{dataset}: does not fit the model of {checkpoint}:\n{lines}\n"
                            "Fix: build the dataset with the same variables, shapes (pad_to) and task as the "
                            "training data")


def _as_dataset(results: dict[str, Any], attrs: dict[str, Any]) -> Any:
    """Predictions of every split as one xarray Dataset along ``sample``."""
    import xarray as xr

    def stacked(field: str) -> np.ndarray | None:
        values = [getattr(r, field) for r in results.values()]
        if any(v is None for v in values):
            return None
        shapes = {np.asarray(v).shape[1:] for v in values}
        if len(shapes) > 1:
            raise TrainsetError(f"predictions of splits {list(results)} differ in shape {sorted(shapes)}. "
                                "Fix: predict one split at a time (--split)")
        return np.concatenate([np.asarray(v) for v in values])

    pred = stacked("pred")
    dims = ["sample", *(f"dim_{i}" for i in range(1, pred.ndim))]
    data = {"pred": (dims, pred)}
    for name in ("target", "mask"):
        values = stacked(name)
        if values is None:
            continue
        own = dims if values.shape == pred.shape else ["sample", *(f"{name}_dim_{i}" for i in range(1, values.ndim))]
        data[name] = (own, values.astype(np.int8) if values.dtype == bool else values)  # e.g. a [n, T] mask
    index = np.concatenate([np.asarray(r.extra["index"]) for r in results.values()])
    split = np.concatenate([[name] * len(r.pred) for name, r in results.items()]).astype(str)
    return xr.Dataset(data, coords={"index": ("sample", index), "split": ("sample", split)}, attrs=attrs)
