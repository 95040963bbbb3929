"""A training run from its config: dataset -> loaders -> scalers -> model -> Trainer -> checkpoints.

This is what the ``train_model`` rule and ``python -m trainset train --config FILE`` call.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

from trainset.errors import TrainsetError
from trainset.provenance import file_sha256

logger = logging.getLogger(__name__)

SEQ2SEQ_TASKS = ("seq2seq_classification", "seq2seq_regression", "reconstruction")


def open_split(path: str | os.PathLike, split: str, cfg: Any, shuffle: bool) -> Any:
    """One split of a stored dataset as a torch dataset (WebDataset batches itself)."""
    import trainset

    if Path(path).name.endswith("-wds"):
        from trainset.io.wds import WdsSource

        one_part = len(WdsSource(path).parts) == 1  # parts differ in shape: no stacked batches
        return trainset.open_dataset(path, split=split, shuffle=shuffle, seed=cfg.training.seed,
                                     batch_size=cfg.training.batch_size if one_part else None)
    return trainset.open_dataset(path, split=split)


def describe_parts(dataset: Any) -> list:
    """The stored parts behind a torch dataset (map-style reader or WebDataset source)."""
    source = getattr(dataset, "reader", None) or getattr(dataset, "source")
    return list(source.parts)


def batches(dataset: Any, cfg: Any, shuffle: bool):
    """``epoch -> DataLoader`` for the Trainer."""
    from trainset.loaders.mapped import make_loader
    from trainset.loaders.worlds import collate_mixed_worlds

    multi_part = len(describe_parts(dataset)) > 1
    collate = collate_mixed_worlds if multi_part else None

    from trainset.train import distributed

    def factory(epoch: int):
        return make_loader(dataset, cfg.training.batch_size, shuffle=shuffle, seed=cfg.training.seed, epoch=epoch,
                           num_workers=cfg.training.num_workers, collate_fn=collate,
                           rank=distributed.rank(), world=distributed.world())

    return factory


def train_run(cfg: Any, dataset_path: str | os.PathLike, folder: str | os.PathLike,
              scalers_path: str | os.PathLike | None = None, max_epochs: int | None = None,
              threads: int = 1) -> list[dict[str, Any]]:
    """Train one run; write best/final/epoch_N/last checkpoints, history.json and config.json."""
    from trainset.models import build_model, describe_dataset
    from trainset.train.losses import build_objective
    from trainset.train.trainer import Trainer

    from trainset.train import distributed

    distributed.init()
    if distributed.world() > 1 and Path(dataset_path).name.endswith("-wds"):
        raise TrainsetError(f"{dataset_path}: DDP over WebDataset shards would give ranks unequal step counts. "
                            "Fix: train from the NetCDF, HDF5 or Zarr copy (format:) under torchrun")
    torch.set_num_threads(max(1, int(threads)))
    if cfg.training.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    train = open_split(dataset_path, cfg.training.train_split, cfg, shuffle=True)
    val = open_split(dataset_path, cfg.training.val_split, cfg, shuffle=False)
    info = describe_dataset(train)
    scalers = _load_scalers(scalers_path)
    torch.manual_seed(cfg.training.seed)
    model = build_model(cfg.model.name, dict(cfg.model.params), info)
    meta = {
        "dataset": str(dataset_path),
        "dataset_sha256": file_sha256(dataset_path),
        "scaler_sha256": scalers.hash if scalers is not None else None,
        "worlds": list(getattr(model, "worlds", []) or []) or None,
        "code_sha256": _code_sha256(),
        "info": info,
    }
    trainer = Trainer(distributed.wrap(model), build_objective(cfg.training.losses), cfg, batches(train, cfg, True),
                      batches(val, cfg, False), folder, meta, prepare=_prepare(cfg, scalers, info))
    history = trainer.fit(resume=True, max_epochs=max_epochs)
    distributed.finish()
    logger.info("run %s: %d epochs, best val %.6g", cfg.name, len(history),
                min((h["val_loss"] for h in history), default=float("nan")))
    return history


def _load_scalers(path):
    if not path:
        return None
    from trainset.scalers import ScalerSet

    if not Path(path).exists():
        raise TrainsetError(f"{path}: scaler file not found. Fix: run the fit_scalers rule first")
    return ScalerSet.from_json(path)


def _prepare(cfg: Any, scalers: Any, info: dict):
    """Scaling, then the sequence-length policy (inputs, and labels when indexed by time)."""
    from trainset.train.lengths import apply_length

    per_step = info.get("task") in SEQ2SEQ_TASKS

    def prepare(batch: dict) -> dict:
        if scalers is not None:
            batch = scalers.transform(batch)
        keys = ("data",)
        labels, data = batch.get("labels"), batch.get("data")
        if per_step and isinstance(labels, torch.Tensor) and data is not None and labels.ndim >= 2 \
                and labels.shape[1] == data.shape[1]:
            keys = ("data", "labels")  # labels indexed by the same steps (not a forecast horizon)
        return apply_length(batch, cfg.data.target_seq_len, cfg.data.target_seq_policy, keys)

    return prepare


def _code_sha256() -> str:
    """Hash of trainset's own source: a resumed run must continue the same code."""
    import hashlib

    import trainset

    digest = hashlib.sha256()
    root = Path(trainset.__file__).parent
    for file in sorted(root.rglob("*.py")):
        digest.update(str(file.relative_to(root)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()
