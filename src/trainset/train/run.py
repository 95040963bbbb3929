"""A training run from its config: dataset -> loaders -> scalers -> model -> Trainer -> checkpoints.

This is what the ``train_model`` rule and ``python -m trainset train --config FILE`` call.
:func:`prepare_run` is the one place a config becomes splits, scalers, model, objective,
optimiser and loaders; the LR finder, the I/O tuner and evaluation build theirs with it too, so
what they measure is what training sees.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from trainset.errors import TrainsetError
from trainset.provenance import file_sha256

logger = logging.getLogger(__name__)


def open_split(path: str | os.PathLike, split: str, cfg: Any, shuffle: bool) -> Any:
    """One split of a stored dataset as a torch dataset (a streamed one shuffles and batches itself).

    The file is opened once (an HDF5 reader walks the whole file when it opens).
    """
    from trainset.io.base import guess_format
    from trainset.open import dataset_of

    fmt = guess_format(path)
    reader = fmt.reader(path)
    variables = _read_variables(path, reader, cfg)
    data = getattr(cfg, "data", None)
    worlds = list(data.worlds) if data is not None and data.worlds else None
    if fmt.random_access:
        from trainset.train.autosplit import open_auto_split

        cut = open_auto_split(path, reader, cfg, split, variables)  # seed 001: no splits, cut by the seed
        if cut is not None and worlds is not None:
            raise TrainsetError(f"{path}: data.worlds: this file stores no worlds. Fix: remove data.worlds")
        return cut if cut is not None else dataset_of(fmt, reader, path, split, variables, worlds=worlds)
    one_part = len(reader.parts) == 1  # parts differ in shape: no stacked batches
    return dataset_of(fmt, reader, path, split, variables, worlds=worlds, shuffle=shuffle, seed=cfg.training.seed,
                      batch_size=cfg.training.batch_size if one_part else None)


def _read_variables(path: str | os.PathLike, reader: Any, cfg: Any) -> list[str] | None:
    """``data.variables``: the variables to read (None: all); a name the dataset lacks is an error."""
    data = getattr(cfg, "data", None)
    if data is None or not data.variables:
        return None
    stored = {v for part in reader.parts for v in part.variables}
    unknown = sorted(set(data.variables) - stored)
    if unknown:
        raise TrainsetError(f"{path}: data.variables names {unknown}, which the dataset does not hold. "
                            f"Fix: use some of {sorted(stored)}")
    return list(data.variables)


def _random_access(path: str | os.PathLike) -> bool:
    """Whether the stored dataset reads any rows (False: streamed in stored order, as WebDataset);
    its format says, without opening the file."""
    from trainset.io.base import guess_format

    return guess_format(path).random_access


def describe_parts(dataset: Any) -> list:
    """The stored parts behind a torch dataset (its reader's)."""
    return list(dataset.reader.parts)


def batches(dataset: Any, cfg: Any, shuffle: bool, pin_memory: bool = False) -> Callable[[int], Any]:
    """``epoch -> DataLoader`` for the Trainer (``pin_memory``: page-locked batches, for a GPU)."""
    from trainset.loaders.mapped import make_loader
    from trainset.loaders.worlds import collate_mixed_worlds

    multi_part = len(describe_parts(dataset)) > 1
    collate = collate_mixed_worlds if multi_part else None

    from trainset.train import distributed

    def factory(epoch: int) -> Any:
        if hasattr(dataset, "set_epoch"):  # augmentation draws are keyed by epoch (loaders/augmented.py)
            dataset.set_epoch(epoch)
        return make_loader(dataset, cfg.training.batch_size, shuffle=shuffle, seed=cfg.training.seed, epoch=epoch,
                           num_workers=cfg.training.num_workers, collate_fn=collate,
                           rank=distributed.rank(), world=distributed.world(), pin_memory=pin_memory)

    return factory


@dataclass
class PreparedRun:
    """What a config and a dataset become before the first step: see :func:`prepare_run`."""

    cfg: Any
    """The run config (a :class:`~trainset.train.config.TrainingConfig`)."""
    splits: dict[str, Any]
    """Split name -> torch dataset, opened as training opens it."""
    info: dict[str, Any]
    """The dataset description models are built from (:func:`~trainset.models.describe_dataset`)."""
    scalers: Any
    """The fitted :class:`~trainset.scalers.ScalerSet`, or None."""
    model: torch.nn.Module | None = None
    """The freshly initialised model (seeded with ``training.seed``); None when not asked for."""
    objective: Any = None
    """The weighted loss of ``training.losses``."""
    optimizer: torch.optim.Optimizer | None = None
    """The optimiser over the model's trainable weights, at ``training.lr``."""
    device: torch.device = torch.device("cpu")
    """Where the model lives and batches go (``training.device``, resolved)."""

    def batches(self, split: str, shuffle: bool) -> Callable[[int], Any]:
        """``epoch -> DataLoader`` of one opened split (see :func:`batches`; pinned for a GPU)."""
        from trainset.train.device import pin_memory

        return batches(self.splits[split], self.cfg, shuffle, pin_memory(self.device))

    def prepare(self) -> Callable[[dict], dict]:
        """The per-batch step before the model: onto the device, scaling, the sequence-length policy."""
        return prepare_batches(self.cfg, self.scalers, self.info, self.device)


def prepare_run(cfg: Any, dataset: str | os.PathLike, scalers: Any = None, *,
                splits: Mapping[str, bool] | None = None, model: bool = True,
                info: dict[str, Any] | None = None, device: torch.device | None = None) -> PreparedRun:
    """Open the splits of ``dataset``, load ``scalers`` and build model, objective and optimiser.

    Parameters
    ----------
    cfg : TrainingConfig
        The run (only ``training.seed``, ``batch_size`` and ``num_workers`` when ``model`` is false).
    dataset : path
        A stored dataset.
    scalers : path, ScalerSet or None
        A scaler file (loaded and checked), an already loaded set, or None for no scaling.
    splits : mapping, optional
        Split name -> shuffled; default: the training split shuffled, the validation split not.
    model : bool
        Also build the model (after ``torch.manual_seed(training.seed)``: the same initial
        weights wherever a run is prepared), its objective and its optimiser.
    info : dict, optional
        The dataset description, when it comes from elsewhere (a checkpoint); default: described
        from the first split.
    device : torch.device, optional
        Where the model is placed and batches go; default: ``training.device`` resolved here
        (:func:`~trainset.train.device.resolve_device`), the CPU for a config without one.

    Returns
    -------
    PreparedRun
    """
    from trainset.models import build_model, describe_dataset
    from trainset.train.losses import build_objective
    from trainset.train.trainer import build_optimizer

    if splits is None:
        splits = {cfg.training.train_split: True, cfg.training.val_split: False}
    opened = {name: open_split(dataset, name, cfg, shuffle=shuffle) for name, shuffle in splits.items()}
    if getattr(cfg, "augment", None) and cfg.training.train_split in opened:  # never val/test
        from trainset.loaders.augmented import augment_split

        train = cfg.training.train_split
        opened[train] = augment_split(opened[train], cfg.augment, cfg.training.seed, dataset)
    if info is None:
        info = describe_dataset(next(iter(opened.values())))
        from trainset.tasks import resolve_task  # seed 001: paradigm/mapping decide a file's task or are checked

        training = cfg.training
        info["task"] = resolve_task(info, getattr(training, "paradigm", None), getattr(training, "mapping", None))
        from trainset.train.data_config import apply_data_config  # num_classes, one_hot tokens, variables

        info = apply_data_config(info, cfg, dataset)
    if scalers is not None and not hasattr(scalers, "transform"):
        scalers = load_scalers(scalers)
    if model and cfg.data.scaler is not None:
        scalers = fit_run_scaler(cfg, dataset, scalers)
    prepared = PreparedRun(cfg, opened, info, scalers, device=device if device is not None else run_device(cfg))
    if model:
        torch.manual_seed(cfg.training.seed)
        prepared.model = build_model(cfg.model.name, dict(cfg.model.params), info).to(prepared.device)
        prepared.objective = build_objective(cfg.training.losses)
        prepared.optimizer = build_optimizer(prepared.model, cfg.training)
    return prepared


def configure_torch(cfg: Any, threads: int | None = None) -> None:
    """Torch threads (``threads``, default ``training.threads``) and deterministic algorithms
    (``training.deterministic``, switched on or off; on CUDA also cuDNN and cuBLAS:
    :func:`~trainset.train.device.configure_determinism`) as the run config says, before anything
    is built or any CUDA work starts."""
    from trainset.train.device import configure_determinism

    torch.set_num_threads(max(1, int(threads if threads is not None else cfg.training.threads)))
    configure_determinism(bool(cfg.training.deterministic))


def run_device(cfg: Any) -> torch.device:
    """``training.device`` on this machine, checked with ``training.precision`` (a missing device
    or a precision it cannot run is refused); the CPU for a config without a device (the I/O tuner's)."""
    from trainset.train.device import check_precision, resolve_device

    training = cfg.training
    if getattr(training, "device", None) is None:
        return torch.device("cpu")
    device = resolve_device(training.device)
    check_precision(getattr(training, "precision", "fp32"), device)
    return device


def train_run(cfg: Any, dataset_path: str | os.PathLike, folder: str | os.PathLike,
              scalers_path: str | os.PathLike | None = None, max_epochs: int | None = None,
              threads: int | None = None) -> list[dict[str, Any]]:
    """Train one run; write best/final/epoch_N/last checkpoints, history.json and config.json."""
    from trainset.train.trainer import Trainer

    from trainset.train import distributed
    from trainset.train.device import device_meta

    configure_torch(cfg, threads)  # before CUDA starts: cuBLAS reads its workspace setting then
    distributed.init()
    if distributed.world() > 1 and not _random_access(dataset_path):
        raise TrainsetError(f"{dataset_path}: DDP over WebDataset shards would give ranks unequal step counts. "
                            "Fix: train from the NetCDF, HDF5 or Zarr copy (format:) under torchrun")
    device = distributed.agree_device(cfg.training.device, cfg.training.precision)
    run = prepare_run(cfg, dataset_path, scalers_path, device=device)
    from trainset.train.autosplit import save_auto_splits

    save_auto_splits(dataset_path, cfg, folder)  # seed 001: the cut of a file without splits, beside the run
    scalers, model = run.scalers, run.model
    digest = file_sha256(dataset_path)
    if scalers is not None:
        check_scalers_belong(scalers, run, dataset_path, digest, scalers_path)
    if cfg.data.scaler is not None and distributed.is_main():  # fitted here: kept beside the checkpoints
        Path(folder).mkdir(parents=True, exist_ok=True)
        scalers.to_json(Path(folder) / "scalers.json")
    meta = {
        "dataset": str(dataset_path),
        "dataset_sha256": digest,
        "scaler_sha256": scalers.hash if scalers is not None else None,
        "worlds": list(getattr(model, "worlds", []) or []) or None,
        "code_sha256": _code_sha256(),
        "info": run.info,
        **device_meta(device),  # provenance only: a resume on another device is allowed (and logged)
    }
    trainer = Trainer(distributed.wrap(model), run.objective, cfg, run.batches(cfg.training.train_split, True),
                      run.batches(cfg.training.val_split, False), folder, meta, prepare=run.prepare(),
                      optimizer=run.optimizer)
    history = trainer.fit(resume=True, max_epochs=max_epochs)
    distributed.finish()
    logger.info("run %s: %d epochs, best val %.6g", cfg.name, len(history),
                min((h["val_loss"] for h in history), default=float("nan")))
    return history


def check_scalers_belong(scalers: Any, run: PreparedRun, dataset_path: str | os.PathLike, digest: str,
                         where: Any) -> None:
    """Refuse, before the first step, scalers fitted on another dataset (or on other variables
    or shapes) than the one this run trains on: the identity the scaler file records must be
    the dataset's (a stored copy carries the identity of the NetCDF it was converted from)."""
    from trainset.open import dataset_identity
    from trainset.scalers.checks import check_scalers_match

    reader = next(iter(run.splits.values())).reader
    reader = getattr(reader, "source", reader)  # data.worlds: scalers are fitted on the whole store
    identity = dataset_identity(dataset_path, reader.attrs, digest)
    check_scalers_match(scalers, identity, list(reader.parts), dataset_path, where or "scalers")


def load_scalers(path: str | os.PathLike | None) -> Any:
    """The fitted scalers of ``path`` (None without one); a missing file names the rule to run."""
    if not path:
        return None
    from trainset.scalers import ScalerSet

    if not Path(path).exists():
        raise TrainsetError(f"{path}: scaler file not found. Fix: run the fit_scalers rule first")
    return ScalerSet.from_json(path)


def fit_run_scaler(cfg: Any, dataset: str | os.PathLike, given: Any) -> Any:
    """``data.scaler``: that scaler kind fitted on ``data`` of the training split (seeded by
    ``training.seed``, so a rerun or an evaluation refits the same statistics). A scaler file
    given as well is an error: two sources of scaling would leave it unclear which one applies."""
    if given is not None:
        raise TrainsetError(f"{dataset}: data.scaler {cfg.data.scaler!r} and a scaler file are both given. "
                            "Fix: remove data.scaler (workflow runs use the dataset's scalers: config, fitted by "
                            "the fit_scalers rule), or train without --scalers")
    from trainset.io.base import guess_format
    from trainset.scalers import fit_scalers
    from trainset.train.autosplit import auto_splits

    cut = None
    fmt = guess_format(dataset)
    if fmt.random_access:  # seed 001's file without splits: fit on the auto-split's training indices
        reader = fmt.reader(dataset)
        try:
            cut = auto_splits(dataset, reader, cfg)
        finally:
            getattr(reader, "close", lambda: None)()
    logger.info("data.scaler: fitting %s on 'data' of split %s", cfg.data.scaler, cfg.training.train_split)
    return fit_scalers(dataset, {"data": cfg.data.scaler}, split=cfg.training.train_split, seed=cfg.training.seed,
                       splits=cut)


def prepare_batches(cfg: Any, scalers: Any, info: dict, device: torch.device | None = None) -> Callable[[dict], dict]:
    """The class-id check (``data.num_classes``), scaling, the batch onto ``device`` (none: where
    it is), then the target-length policy (checked here, before the first batch:
    :func:`~trainset.train.lengths.length_plan`)."""
    from trainset.train.device import to_device

    from trainset.train.data_config import check_classes
    from trainset.train.lengths import apply_length, length_plan

    length, policy = cfg.data.target_seq_len, cfg.data.target_seq_policy
    keys = length_plan(info, length, policy) if info else ()

    def prepare(batch: dict) -> dict:
        check_classes(batch, info, cfg.data.num_classes)
        if scalers is not None:  # on the CPU, where the batch is read: no device round trips
            batch = scalers.transform(batch)
        if device is not None:
            batch = to_device(batch, device)
        return apply_length(batch, length, policy, keys)

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
