"""The trainer: one loop for every model, loss and dataset, with exact resume and determinism.

Fixes of the old trainers (anchors sections 2-4) that this loop is built around: the warm-up
starts above zero and reaches the configured LR; early stopping uses a relative ``min_delta`` (or an
absolute one, ``training.min_delta_mode``, as seed 003 did);
weight init, batch order and in-model noise are seeded; resume restores model, optimiser,
scheduler, early stopping, RNG state and (``precision: fp16``) the gradient scaler, and continues at the next epoch, so an interrupted run
ends with the same weights as one run straight through; checkpoints record the dataset hash,
the scaler hash and (for worlds) the world list, and are state dicts only (loadable with
``weights_only=True``).

Files in the run folder: ``best.pt`` (lowest validation loss), ``final.pt`` (last epoch),
``epoch_<N>.pt`` every ``save_every_n_epochs``, ``last.pt`` (the resume point, rewritten every
epoch), ``history.json`` and ``config.json``; ``metrics.csv`` and ``tensorboard/`` as
``training.loggers`` says (:mod:`trainset.train.progress`, which also draws the progress bar and
logs one line per epoch).
"""

from __future__ import annotations

import io
import json
import pickle  # only for its exception type: checkpoints are loaded with weights_only=True
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn

from trainset.errors import TrainsetError
from trainset.faults import maybe_fail
from trainset.provenance import atomic_path, jsonable, write_json
from trainset.train import distributed
from trainset.train.device import autocast, grad_scaler, model_device
from trainset.train.progress import RunProgress
from trainset.versions import KEY, OutdatedArtifact, check_version, current

logger = logging.getLogger(__name__)

LoaderFactory = Callable[[int], Iterable[dict]]
"""epoch -> an iterable of batches (the epoch fixes the shuffle)."""


class Trainer:
    """Train ``model`` with ``objective`` as ``cfg.training`` says, writing into ``folder``.

    Parameters
    ----------
    model : nn.Module
        ``forward(batch) -> {"pred", "target", "mask"?}``.
    objective : callable
        ``objective(pred, target, mask, model) -> (total, {term: value})``.
    cfg : TrainingConfig
    train_batches, val_batches : callable
        ``epoch -> iterable of batches``.
    folder : path
        The run folder.
    meta : dict
        Stored in every checkpoint (dataset hash, scaler hash, worlds, model info).
    prepare : callable, optional
        Applied to each batch before the model (scaling, sequence length policy).
    optimizer : torch.optim.Optimizer, optional
        The optimiser (:func:`~trainset.train.run.prepare_run` builds it); default: built here.
    """

    def __init__(self, model: nn.Module, objective: Callable, cfg: Any, train_batches: LoaderFactory,
                 val_batches: LoaderFactory, folder: str | os.PathLike, meta: dict | None = None,
                 prepare: Callable[[dict], dict] | None = None, optimizer: torch.optim.Optimizer | None = None):
        from trainset.train.schedule import EarlyStopping

        self.model, self.objective, self.cfg = model, objective, cfg
        self.train_batches, self.val_batches = train_batches, val_batches
        self.folder, self.meta = Path(folder), dict(meta or {})
        self.prepare = prepare or (lambda batch: batch)
        training = cfg.training
        self.optimizer = optimizer if optimizer is not None else build_optimizer(model, training)
        self.device = model_device(model)  # training.device, where prepare_run placed the model
        self.scaler = grad_scaler(training.precision, self.device)  # fp16 only; checkpointed
        self.steps_per_epoch = max(1, sum(1 for _ in train_batches(0)))
        self.scheduler = _scheduler(self.optimizer, training, self.steps_per_epoch)
        self.stopper = EarlyStopping(training.patience, training.min_delta, delta_mode=training.min_delta_mode)
        self.history: list[dict[str, Any]] = []
        self.epoch = 0
        self._best: bytes | None = None  # best.pt's bytes, carried in last.pt so a rerun can restore it
        self.progress = RunProgress(self.folder, training, self.steps_per_epoch, model, main=distributed.is_main())

    # ------------------------------------------------------------------ loop
    def fit(self, resume: bool = True, max_epochs: int | None = None) -> list[dict[str, Any]]:
        """Train until ``epochs`` or early stopping; resume from ``last.pt`` when present.

        ``max_epochs`` stops after that many epochs *in this call* (used to test resuming).
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        if distributed.is_main():
            write_json(self.cfg.to_dict(), self.folder / "config.json")
        if resume and (self.folder / "last.pt").exists():
            if self._resume():
                logger.info("resumed %s at epoch %d", self.folder, self.epoch + 1)
            else:
                self._clear()
        self.progress.start(self.epoch)  # metrics.csv keeps the rows of the epochs resumed from
        done_here = 0
        while self.epoch < self.cfg.training.epochs and not self.stopper.should_stop:
            if max_epochs is not None and done_here >= max_epochs:
                self.progress.close()
                return self.history
            self._run_epoch(self.epoch + 1)
            done_here += 1
        self.progress.close()
        self._save(self.folder / "final.pt")
        if distributed.is_main():
            write_json(self.history, self.folder / "history.json")
        return self.history

    def _run_epoch(self, epoch: int) -> None:
        training = self.cfg.training
        torch.manual_seed(epoch_seed(training.seed, epoch) + distributed.rank())
        train_loss, samples = self.train_epoch(epoch)
        val_loss = self.evaluate(self.val_batches(epoch))
        improved = self.stopper.step(val_loss)
        self.epoch = epoch
        record = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                  "lr": self.optimizer.param_groups[0]["lr"], "improved": bool(improved)}
        self.history.append(record)
        self.progress.epoch_done(record, samples)  # before last.pt: a resume keeps this epoch's rows
        if improved:
            self._best = self._save(self.folder / "best.pt")
        if training.save_every_n_epochs and epoch % training.save_every_n_epochs == 0:
            self._save(self.folder / f"epoch_{epoch}.pt")
        self._save(self.folder / "last.pt")
        if distributed.is_main():
            write_json(self.history, self.folder / "history.json")

    def train_epoch(self, epoch: int) -> tuple[float, int]:
        self.model.train()
        total, count = 0.0, 0
        clip = self.cfg.training.grad_clip
        window = self.progress.epoch(epoch)
        for batch in self.train_batches(epoch):
            batch = self.prepare(batch)
            self.optimizer.zero_grad(set_to_none=True)
            with autocast(self.cfg.training.precision, self.device):
                out = self.model(batch)
                loss, _ = self.objective(out["pred"], out["target"], out.get("mask"), self.model)
            if not torch.isfinite(loss):
                raise TrainsetError(f"{self.folder}: loss is {loss.item()} at epoch {epoch}. "
                                    "Fix: lower training.lr, check the scaler, or enable grad_clip")
            optimizer_step(self.optimizer, _ddp_weighted(loss, _batch_size(out["target"])), self.model, clip,
                           self.scaler)
            lr = self.optimizer.param_groups[0]["lr"]  # the rate this step used
            self.scheduler.step()
            n = _batch_size(out["target"])
            total, count = total + loss.item() * n, count + n
            window.step(loss.item(), n, lr)
        window.close()
        total, count = distributed.reduce_sums(total, count)
        return total / max(count, 1), int(count)

    @torch.no_grad()
    def evaluate(self, batches: Iterable[dict]) -> float:
        """Mean objective over ``batches`` (weighted by batch size), model in eval mode.

        In-model randomness (diffusion noise, dropout) is drawn from a generator reseeded here,
        so the validation loss of a checkpoint does not depend on when it is computed.
        """
        self.model.eval()
        state = torch.get_rng_state()
        torch.manual_seed(epoch_seed(self.cfg.training.seed, -1))
        total, count = 0.0, 0
        model = distributed.unwrap(self.model)  # no DDP syncs: ranks may see different batch counts
        for batch in batches:
            out = model(self.prepare(batch))
            loss, _ = self.objective(out["pred"], out["target"], out.get("mask"), model)
            n = _batch_size(out["target"])
            total, count = total + loss.item() * n, count + n
        total, count = distributed.reduce_sums(total, count)  # the whole split over all ranks
        torch.set_rng_state(state)
        if count == 0:
            raise TrainsetError(f"{self.folder}: the validation split is empty. Fix: give the val split samples")
        return total / count

    # ----------------------------------------------------------- checkpoints
    def _save(self, path: Path) -> bytes | None:
        """Write a checkpoint (rank 0 only) and return its bytes."""
        if not distributed.is_main():
            return None
        state = {
            KEY: current("checkpoint"),
            "model": distributed.unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "early_stopping": self.stopper.state_dict(),
            **({"grad_scaler": self.scaler.state_dict()} if self.scaler is not None else {}),  # fp16
            "rng": {"torch": torch.get_rng_state()},
            "epoch": self.epoch,
            "history": json.dumps(self.history),
            "config": json.dumps(self.cfg.to_dict(), sort_keys=True),
            "meta": json.dumps(jsonable(self.meta, f"{path} meta"), sort_keys=True),
        }
        if path.name == "last.pt" and self._best is not None:
            state["best_checkpoint"] = torch.frombuffer(bytearray(self._best), dtype=torch.uint8)
        if path.name == "last.pt":
            state.update(self.progress.carried(self.epoch))  # metrics.csv's rows, as best.pt's bytes
        buffer = io.BytesIO()  # a file name would become the archive's folder name: not reproducible
        torch.save(state, buffer)
        with atomic_path(path) as tmp:
            tmp.write_bytes(buffer.getvalue())
            if path.name == "last.pt":
                maybe_fail("checkpoint", self.epoch)  # test-only: the kill tests' crash point
        return buffer.getvalue()

    def _resume(self) -> bool:
        """Restore from ``last.pt``, or, when it cannot be read (a crash or a full disk while it
        was copied, a truncated file), from the newest ``epoch_N.pt`` that can, saying which;
        False to start afresh."""
        try:
            return self._restore(self.folder / "last.pt")
        except TrainsetError as error:
            logger.warning("%s; resuming from the newest readable epoch checkpoint instead", error)
        epochs = [p for p in self.folder.glob("epoch_*.pt") if _epoch_number(p) >= 0]
        for candidate in sorted(epochs, key=_epoch_number, reverse=True):
            try:
                if self._restore(candidate):
                    logger.warning("%s: resumed from %s (epoch %d)", self.folder, candidate.name, self.epoch)
                    self._save(self.folder / "last.pt")  # the same bytes last.pt had at that epoch
                    return True
            except TrainsetError as error:
                logger.warning("%s; trying an older epoch checkpoint", error)
        logger.warning("%s: no readable checkpoint of this run to resume from; starting afresh", self.folder)
        return False

    def _restore(self, path: Path) -> bool:
        """Continue from ``path`` if it was made by this config, data, scalers and code; else False.

        A workflow rerun after an edit (code, config, data or scalers) therefore trains afresh,
        while a rerun of an interrupted job continues where it stopped. Snakemake deletes a
        job's declared outputs before rerunning it, so ``best.pt`` is restored from the copy
        carried inside ``last.pt`` (or, from an ``epoch_N.pt``, see :func:`_best_bytes`). A
        TrainsetError means ``path`` cannot be read; nothing has changed then.
        """
        try:
            state = load_checkpoint(path)
        except OutdatedArtifact as error:  # another format version: not resumable, and not an error
            logger.warning("%s; starting afresh", error)
            return False
        meta = checkpoint_meta(state, path)
        same = (state.get("config") == json.dumps(self.cfg.to_dict(), sort_keys=True)
                and all(meta.get(key) == self.meta.get(key) for key in ("dataset_sha256", "scaler_sha256", "code_sha256")))
        if not same:
            logger.info("%s: config, data, scalers or code changed since the last checkpoint; starting afresh", path)
            return False
        history = _history(state, path)
        best = _best_bytes(path, state, history)  # everything read and checked before any state changes
        if best is not None:
            self._best = best
            if distributed.is_main() and not (self.folder / "best.pt").exists():
                with atomic_path(self.folder / "best.pt") as tmp:
                    tmp.write_bytes(self._best)
        self.progress.restore(state)  # a metrics.csv Snakemake deleted, from last.pt's copy
        distributed.unwrap(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.stopper.load_state_dict(state["early_stopping"])
        if self.scaler is not None:  # the same config: precision fp16 saved it
            if "grad_scaler" not in state:
                raise TrainsetError(f"{path}: an fp16 run's checkpoint without its gradient scaler state. "
                                    "Fix: delete the run folder's last.pt to start afresh")
            self.scaler.load_state_dict(state["grad_scaler"])
        if meta.get("device") != self.meta.get("device"):
            logger.warning("%s: trained on %s, continuing on %s: the run goes on, but its weights will not be "
                           "bit-identical to an uninterrupted run's", path, meta.get("device"), self.meta.get("device"))
        torch.set_rng_state(state["rng"]["torch"])
        self.epoch = int(state["epoch"])
        self.history = history
        return True

    def _clear(self) -> None:
        """Remove checkpoints of an earlier, different run in this folder."""
        for stale in [*self.folder.glob("epoch_*.pt"), self.folder / "best.pt", self.folder / "last.pt",
                      self.folder / "final.pt"]:
            stale.unlink(missing_ok=True)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``: tensors and plain containers only).

    Tensors land on ``map_location`` (default the CPU), whatever device saved them: a checkpoint
    trained on a GPU loads on a machine without one.
    """
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:
        raise TrainsetError(f"{path}: cannot load checkpoint ({error}). Fix: retrain, or point to a trainset checkpoint") from error
    if not isinstance(state, dict) or "model" not in state:
        raise TrainsetError(f"{path}: not a trainset checkpoint (no 'model' entry). Fix: point to a checkpoint "
                            "written by train_model")
    check_version("checkpoint", state.get(KEY), path)
    checkpoint_meta(state, path)
    return state


def checkpoint_meta(state: dict[str, Any], path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The dataset/scaler hashes and world list stored in a checkpoint (``path`` names it in errors)."""
    try:
        meta = json.loads(state.get("meta", "{}"))
    except (TypeError, ValueError) as error:
        meta = error
    if not isinstance(meta, dict):
        raise TrainsetError(f"{path or 'checkpoint'}: its 'meta' entry is not a JSON object ({meta!r:.120}). "
                            "Fix: retrain, or point to a checkpoint written by train_model")
    return meta


def _history(state: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    """The epoch records a checkpoint carries, or a TrainsetError naming it."""
    try:
        history = json.loads(state["history"])
    except (KeyError, TypeError, ValueError) as error:
        history = error
    if not isinstance(history, list) or not all(isinstance(h, dict) and "epoch" in h for h in history):
        raise TrainsetError(f"{path}: its 'history' entry is not a list of epoch records ({history!r:.120}). "
                            "Fix: retrain")
    return history


def _best_bytes(path: Path, state: dict[str, Any], history: list[dict[str, Any]]) -> bytes | None:
    """``best.pt``'s bytes as of ``state`` (None before any improvement).

    ``last.pt`` carries them; an ``epoch_N.pt`` does not, but ``best.pt`` and the epoch file of
    the last improving epoch were saved from the same state, so that file's bytes are best.pt's.
    """
    if "best_checkpoint" in state:
        return state["best_checkpoint"].numpy().tobytes()
    improved = [int(h["epoch"]) for h in history if h.get("improved")]
    if path.name == "last.pt" or not improved:
        return None
    source = path.parent / f"epoch_{improved[-1]}.pt"
    if not source.is_file():
        raise TrainsetError(f"{path}: the best checkpoint (epoch {improved[-1]}) was not kept as {source.name}, "
                            "so best.pt cannot be restored from it")
    load_checkpoint(source)
    return source.read_bytes()


def _epoch_number(path: Path) -> int:
    """N of ``epoch_N.pt`` (-1 for other names)."""
    number = path.stem.removeprefix("epoch_")
    return int(number) if number.isdigit() else -1


def _ddp_weighted(loss: torch.Tensor, n: int) -> torch.Tensor:
    """Under DDP, weight a rank's mean loss by its share of the global batch.

    DDP averages gradients over ranks; when a batch does not split evenly (the last one of an
    epoch), the plain average of per-rank means is not the global mean. Scaling each rank's
    loss by ``n_rank * world / n_global`` makes the averaged gradient that of the global mean,
    as in a single process.
    """
    world = distributed.world()
    if world == 1:
        return loss
    (total,) = distributed.reduce_sums(float(n))
    return loss * (n * world / total)


def epoch_seed(seed: int, epoch: int) -> int:
    """A seed for (run seed, epoch): in-model randomness is the same whether or not a run resumed."""
    return (int(seed) * 1_000_003 + epoch + 17) % (2**63 - 1)


def _batch_size(target: torch.Tensor) -> int:
    return int(target.shape[0]) if target.ndim else 1


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, model: nn.Module, clip: float | None,
                   scaler: torch.amp.GradScaler | None = None) -> None:
    """Backward, clipping and the optimiser step; with fp16's ``scaler`` the loss is scaled and
    the gradients unscaled before clipping (a step with inf/NaN gradients is skipped and the
    scale lowered, as :class:`torch.amp.GradScaler` does)."""
    if scaler is None:
        loss.backward()
        if clip:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        return
    scaler.scale(loss).backward()
    if clip:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), clip)
    scaler.step(optimizer)
    scaler.update()


def build_optimizer(model: nn.Module, training: Any) -> torch.optim.Optimizer:
    """The optimiser ``training.optimizer`` names, over the model's trainable weights."""
    params = [p for p in model.parameters() if p.requires_grad]
    name = training.optimizer
    if name == "adamw":
        return torch.optim.AdamW(params, lr=training.lr, weight_decay=training.weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=training.lr, weight_decay=training.weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=training.lr, weight_decay=training.weight_decay, momentum=0.9)
    raise TrainsetError(f"training.optimizer {name!r} unknown. Fix: use adamw, adam or sgd")


def _scheduler(optimizer: torch.optim.Optimizer, training: Any, steps_per_epoch: int):
    from trainset.train.schedule import make_scheduler

    return make_scheduler(optimizer, total_steps=training.epochs * steps_per_epoch,
                          warmup_steps=training.warmup_epochs * steps_per_epoch, kind=training.scheduler,
                          final_fraction=training.final_lr_fraction, gamma=training.gamma,
                          steps_per_epoch=steps_per_epoch)
