"""Learning-rate range test (Smith 2017, as fastai does it), and ``auto`` values in run configs.

Seed 002 swept learning rates in a notebook. Here the sweep is the standard exponential range
test: a fresh model, built exactly as :func:`~trainset.train.run.train_run` builds it (same
seed, data, scalers, objective, optimiser, clipping), takes ``steps`` optimisation steps while
the LR grows geometrically from ``min_lr`` to ``max_lr``. The training loss is smoothed with an
exponential moving average (bias-corrected, so the first points are not pulled towards zero),
and the test stops once the smoothed loss exceeds ``divergence`` x its best value. The
suggestion is the LR of the steepest descent of the smoothed loss against ``log10(lr)``, looked
for only up to the minimum of the smoothed loss (beyond it the loss rises); the LR at the
minimum divided by 10 is reported too (fastai's other rule of thumb). The model is thrown away
afterwards: nothing of it reaches the real run.

A run config may say ``lr: auto``: the train rule then reads the suggestion through
:func:`trainset.train.auto.resolve_auto`, which owns every ``auto`` setting.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from trainset.errors import TrainsetError
from trainset.provenance import atomic_path, write_json
from trainset.train.auto import read_json, resolve_auto, tuned, with_placeholders
from trainset.versions import stamp

logger = logging.getLogger(__name__)

__all__ = ["LR_FINDER_OPTIONS", "apply_lr", "find_lr", "lr_search_hash", "search_config", "suggest_lr",
           "write_lr_result"]

PLOT_NAME = "lr.png"
LR_FINDER_OPTIONS = ("min_lr", "max_lr", "steps", "smoothing", "divergence")
"""Arguments of :func:`find_lr` that the workflow's ``tuning.lr_finder`` may set (the schema's keys)."""


def find_lr(cfg: Any, dataset_path: str | os.PathLike, scalers_path: str | os.PathLike | None = None,
            min_lr: float = 1e-6, max_lr: float = 1.0, steps: int = 100, smoothing: float = 0.98,
            divergence: float = 4.0, threads: int = 1) -> dict[str, Any]:
    """Run an exponential LR range test on a fresh copy of the run's model.

    Parameters
    ----------
    cfg : TrainingConfig
        The run; its ``training.lr`` is ignored (the test sets the LR at every step).
    dataset_path, scalers_path : path
        As for :func:`~trainset.train.run.train_run`; batches come from the training split,
        shuffled per epoch, reusing epochs when ``steps`` exceeds one epoch.
    min_lr, max_lr : float
        The LR at step ``i`` is ``min_lr * (max_lr / min_lr) ** (i / (steps - 1))``.
    steps : int
        Steps of the full sweep (>= 3).
    smoothing : float
        EMA factor ``beta`` in [0, 1): ``avg = beta avg + (1 - beta) loss``, reported as
        ``avg / (1 - beta ** (i + 1))``.
    divergence : float
        Stop once the smoothed loss exceeds this multiple of its best value (> 1). Assumes a
        positive loss, as every registered loss is.
    threads : int
        Torch threads (results are reproducible for a fixed thread count).

    Returns
    -------
    dict
        ``suggested_lr``, ``min_loss_lr_div10``, ``lrs``, ``losses`` (raw), ``smoothed``,
        ``stopped_early`` (divergence or a non-finite loss), ``steps`` (steps recorded),
        ``config_hash`` (:func:`lr_search_hash`), ``settings`` (the arguments, seed and batch
        size) and ``run`` / ``dataset``.

    Raises
    ------
    TrainsetError
        Bad sweep settings, an empty training split, or a non-finite loss at the first step.
    """
    from trainset.train.run import configure_torch, prepare_run
    from trainset.train.trainer import epoch_seed

    _check_settings(min_lr, max_lr, steps, smoothing, divergence)
    training = cfg.training
    configure_torch(cfg, threads)
    run = prepare_run(cfg, dataset_path, scalers_path, splits={training.train_split: True})  # the run's weights
    model, objective, optimizer, prepare = run.model, run.objective, run.optimizer, run.prepare()
    stream = _endless(run.batches(training.train_split, True),
                      lambda epoch: torch.manual_seed(epoch_seed(training.seed, epoch)), dataset_path)

    try:
        lrs, losses, smoothed, stopped = _sweep(model, objective, optimizer, prepare, stream, training,
                                                min_lr, max_lr, steps, smoothing, divergence, dataset_path)
    finally:
        stream.close()  # shuts down the loader workers of an unfinished epoch
    suggested, min_loss_lr = suggest_lr(lrs, smoothed)
    logger.info("LR range test over %d steps: suggested lr %.3g (min-loss lr / 10: %.3g)", len(lrs), suggested,
                min_loss_lr / 10)
    return {
        "suggested_lr": suggested,
        "min_loss_lr_div10": min_loss_lr / 10.0,
        "lrs": lrs,
        "losses": losses,
        "smoothed": smoothed,
        "stopped_early": stopped,
        "steps": len(lrs),
        "config_hash": lr_search_hash(cfg),
        "settings": {"min_lr": float(min_lr), "max_lr": float(max_lr), "steps": int(steps),
                     "smoothing": float(smoothing), "divergence": float(divergence), "seed": training.seed,
                     "batch_size": training.batch_size, "optimizer": training.optimizer,
                     "grad_clip": training.grad_clip, "threads": max(1, int(threads)),
                     "device": str(run.device), "precision": training.precision},
        "run": cfg.name,
        "dataset": str(dataset_path),
    }


def _sweep(model: nn.Module, objective: Callable, optimizer: torch.optim.Optimizer, prepare: Callable,
           stream: Iterator[dict], training: Any, min_lr: float, max_lr: float, steps: int, smoothing: float,
           divergence: float, where: Any) -> tuple[list[float], list[float], list[float], bool]:
    """The sweep itself: (lrs, raw losses, smoothed losses, stopped early)."""
    from trainset.train.device import grad_scaler, model_device

    model.train()
    scaler = grad_scaler(training.precision, model_device(model))
    ratio = max_lr / min_lr
    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    avg, best = 0.0, math.inf
    for i in range(steps):
        lr = min_lr * ratio ** (i / (steps - 1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        value = _step(model, objective, optimizer, prepare(next(stream)), training, scaler)
        if not math.isfinite(value):
            if not lrs:
                raise TrainsetError(f"{where}: the loss is {value} at the first step (lr {lr:.3g}). "
                                    "Fix: lower min_lr, check the scaler and the data")
            logger.info("LR range test: loss %s at lr %.3g; stopping", value, lr)
            return lrs, losses, smoothed, True
        avg = smoothing * avg + (1.0 - smoothing) * value
        smooth = avg / (1.0 - smoothing ** (i + 1))
        lrs.append(lr)
        losses.append(value)
        smoothed.append(smooth)
        best = min(best, smooth)
        if smooth > divergence * best:
            logger.info("LR range test: smoothed loss %.4g > %g x best %.4g at lr %.3g; stopping",
                        smooth, divergence, best, lr)
            return lrs, losses, smoothed, True
    return lrs, losses, smoothed, False


def _check_settings(min_lr: float, max_lr: float, steps: int, smoothing: float, divergence: float) -> None:
    problems = []
    if not (isinstance(min_lr, (int, float)) and math.isfinite(min_lr) and min_lr > 0):
        problems.append(f"min_lr: must be a number > 0, got {min_lr!r}")
    elif not (isinstance(max_lr, (int, float)) and math.isfinite(max_lr) and max_lr > min_lr):
        problems.append(f"max_lr: must be a number > min_lr ({min_lr}), got {max_lr!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 3:
        problems.append(f"steps: must be an integer >= 3, got {steps!r}")
    if not (isinstance(smoothing, (int, float)) and 0 <= smoothing < 1):
        problems.append(f"smoothing: must lie in [0, 1), got {smoothing!r}")
    if not (isinstance(divergence, (int, float)) and divergence > 1):
        problems.append(f"divergence: must be a number > 1, got {divergence!r}")
    if problems:
        raise TrainsetError("LR range test: " + "; ".join(problems))


def _endless(factory: Callable[[int], Any], on_epoch: Callable[[int], Any], where: Any) -> Iterator[dict]:
    """Batches of epochs 1, 2, ... (shuffled and seeded as the trainer's epochs are)."""
    epoch = 1
    while True:
        on_epoch(epoch)
        empty = True
        for batch in factory(epoch):
            empty = False
            yield batch
        if empty:
            raise TrainsetError(f"{where}: the training split gave no batch. Fix: give the train split samples")
        epoch += 1


def _step(model: nn.Module, objective: Callable, optimizer: torch.optim.Optimizer, batch: dict,
          training: Any, scaler: torch.amp.GradScaler | None = None) -> float:
    """One optimisation step as the trainer takes it (the run's device and precision, fp16's
    scaler, clipping); the loss before it."""
    from trainset.train.device import autocast, model_device
    from trainset.train.trainer import optimizer_step

    optimizer.zero_grad(set_to_none=True)
    with autocast(training.precision, model_device(model)):
        out = model(batch)
        loss, _ = objective(out["pred"], out["target"], out.get("mask"), model)
    value = float(loss.detach())
    if not math.isfinite(value):
        return value
    optimizer_step(optimizer, loss, model, training.grad_clip, scaler)
    return value


def suggest_lr(lrs: list[float], smoothed: list[float]) -> tuple[float, float]:
    """(steepest-descent LR, LR of the lowest smoothed loss) of a range test.

    The steepest descent is the minimum of ``d smoothed / d log10(lr)`` over the points up to the
    lowest smoothed loss. With fewer than three such points (the loss rose from the start) there
    is no descent to measure, and the first LR is returned with a warning.
    """
    if not lrs:
        raise TrainsetError("LR range test: no step was recorded")
    s = np.asarray(smoothed, dtype=np.float64)
    lowest = int(np.argmin(s))
    if lowest < 2:
        logger.warning("LR range test: the loss rose from the first LRs on; suggesting min_lr %.3g. "
                       "Fix: lower min_lr", lrs[0])
        return float(lrs[0]), float(lrs[lowest])
    x = np.log10(np.asarray(lrs[:lowest + 1], dtype=np.float64))
    slope = np.gradient(s[:lowest + 1], x)
    return float(lrs[int(np.argmin(slope))]), float(lrs[lowest])


def lr_search_hash(cfg: Any) -> str:
    """SHA-256 of the run config with ``training.lr`` left out (the range test does not use it)."""
    from trainset.train.config import config_hash

    return config_hash(dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, lr=1.0)))


# ------------------------------------------------------------------------------------ output

def write_lr_result(result: dict[str, Any], path: str | os.PathLike) -> None:
    """Write the result JSON atomically and ``lr.png`` (loss against LR) beside it."""
    path = Path(path)
    write_json({**result, **stamp("lr_finder")}, path)
    _plot(result, path.with_name(PLOT_NAME))


def _plot(result: dict[str, Any], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    lrs, losses, smoothed = result["lrs"], result["losses"], result["smoothed"]
    fig = Figure(figsize=(6.4, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(lrs, losses, color="0.7", linewidth=0.8, label="loss")
    ax.plot(lrs, smoothed, color="tab:blue", linewidth=1.6, label="smoothed loss")
    ax.axvline(result["suggested_lr"], color="tab:red", linestyle="--",
               label=f"suggested {result['suggested_lr']:.3g} (steepest descent)")
    ax.axvline(result["min_loss_lr_div10"], color="tab:green", linestyle=":",
               label=f"min-loss lr / 10: {result['min_loss_lr_div10']:.3g}")
    ax.set_xscale("log")
    low, high = min(min(losses), min(smoothed)), max(smoothed)
    pad = 0.05 * (high - low) or 0.1 * abs(high) or 1.0
    ax.set_ylim(low - pad, high + pad)  # raw losses may explode at the end: the smoothed curve caps the view
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(f"LR range test: {result.get('run', '')} ({result['steps']} steps"
                 + (", stopped early)" if result["stopped_early"] else ")"))
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})  # no version chunk: stable bytes


# --------------------------------------------------------------------------- the tuned LR

def apply_lr(cfg: Any, path: str | os.PathLike) -> Any:
    """A copy of ``cfg`` whose ``training.lr`` is the suggestion stored in the result ``path``."""
    result = read_json(path, "LR finder result", "lr_finder")
    lr = tuned(result, "suggested_lr", path, "training.lr")
    if result.get("config_hash") not in (None, lr_search_hash(cfg)):
        logger.warning("%s: the LR was found for another version of run %r (config changed since); using it anyway",
                       path, cfg.name)
    return dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, lr=float(lr)))


def search_config(cfg_dict: Mapping[str, Any], io_json: str | os.PathLike | Mapping | None = None) -> Any:
    """The :class:`TrainingConfig` the LR finder runs with: ``lr: auto`` is allowed (it is unused)."""
    from trainset.train.config import TrainingConfig

    return TrainingConfig.from_dict(resolve_auto(with_placeholders(cfg_dict, keys=("lr",)), io_json=io_json))
