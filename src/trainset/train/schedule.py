"""Learning-rate schedules (warm-up then cosine / exponential / constant) and early stopping.

Two bugs of the old macro trainer (seed 003) shaped this module. Its warm-up started the LR at
zero and, because of how the schedule was composed, training ran at about 1% of the configured
rate; here the warm-up starts at ``peak / warmup_steps`` and reaches the peak exactly on the
last warm-up step, and a test checks the schedule at every step against the closed form. Its
early stopping used an absolute ``min_delta``, so once the loss was below 1e-4 nothing counted
as an improvement; here ``min_delta`` is relative.

The schedule is a pure function :func:`lr_at` of the optimisation step; :func:`make_scheduler`
wraps it in a :class:`torch.optim.lr_scheduler.LambdaLR` stepped once per optimisation step,
whose ``state_dict`` (settings included) restores a resumed run exactly.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR

from trainset.errors import TrainsetError

logger = logging.getLogger(__name__)

__all__ = ["SCHEDULES", "EarlyStopping", "WarmupLR", "lr_at", "make_scheduler", "scheduler_from_config"]

SCHEDULES = ("cosine", "exponential", "none")


def _check(total_steps: int, warmup_steps: int, peak_lr: float, final_fraction: float, kind: str,
           gamma: float, steps_per_epoch: int) -> None:
    if kind not in SCHEDULES:
        raise TrainsetError(f"unknown scheduler {kind!r}. Fix: use one of {list(SCHEDULES)}")
    if int(total_steps) < 1:
        raise TrainsetError(f"schedule needs total_steps >= 1, got {total_steps}")
    if not 0 <= int(warmup_steps) <= int(total_steps):
        raise TrainsetError(f"warmup_steps must lie in 0..total_steps ({total_steps}), got {warmup_steps}. "
                            "Fix: lower warmup_epochs or raise epochs")
    if not peak_lr > 0:
        raise TrainsetError(f"peak learning rate must be > 0, got {peak_lr}")
    if not 0 <= final_fraction <= 1:
        raise TrainsetError(f"final_fraction must lie in [0, 1], got {final_fraction}")
    if not 0 < gamma <= 1:
        raise TrainsetError(f"gamma must lie in (0, 1], got {gamma}")
    if int(steps_per_epoch) < 1:
        raise TrainsetError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")


def lr_at(step: int, total_steps: int, warmup_steps: int, peak_lr: float, final_fraction: float = 0.01,
          kind: str = "cosine", gamma: float = 0.95, steps_per_epoch: int = 1) -> float:
    """The learning rate of optimisation step ``step`` (0-based).

    - Warm-up, steps ``0..warmup_steps-1``: ``peak * (step + 1) / warmup_steps``, linear from
      ``peak / warmup_steps`` (never zero) to ``peak`` on the last warm-up step.
    - ``cosine``: from ``peak`` at the last warm-up step (step 0 without warm-up) down to
      ``final_fraction * peak`` on the last step, ``total_steps - 1``; later steps stay there.
    - ``exponential``: ``peak * gamma ** e`` with ``e`` the number of whole epochs
      (``steps_per_epoch`` steps) since warm-up ended; a staircase, as the old per-epoch
      ``ExponentialLR`` of seed 002 (which had no warm-up: ``e`` is then the epoch index).
    - ``none``: ``peak`` after warm-up (set ``warmup_steps=0`` for a truly constant rate).
    """
    _check(total_steps, warmup_steps, peak_lr, final_fraction, kind, gamma, steps_per_epoch)
    if step < 0:
        raise TrainsetError(f"step must be >= 0, got {step}")
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    if kind == "none":
        return peak_lr
    if kind == "exponential":
        return peak_lr * gamma ** ((step - warmup_steps) // steps_per_epoch)
    anchor = max(warmup_steps - 1, 0)
    span = total_steps - 1 - anchor
    progress = 0.0 if step <= anchor else (1.0 if span <= 0 else min((step - anchor) / span, 1.0))
    floor = final_fraction * peak_lr
    return floor + (peak_lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


class _Factor:
    """Picklable LR multiplier (``lr_at`` with peak 1); LambdaLR saves its ``__dict__``."""

    def __init__(self, total_steps, warmup_steps, final_fraction, kind, gamma, steps_per_epoch):
        _check(total_steps, warmup_steps, 1.0, final_fraction, kind, gamma, steps_per_epoch)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.final_fraction = float(final_fraction)
        self.kind = str(kind)
        self.gamma = float(gamma)
        self.steps_per_epoch = int(steps_per_epoch)

    def __call__(self, step: int) -> float:
        return lr_at(step, self.total_steps, self.warmup_steps, 1.0, self.final_fraction, self.kind,
                     self.gamma, self.steps_per_epoch)


class WarmupLR(LambdaLR):
    """A :class:`LambdaLR` over :func:`lr_at`; loading a state also sets the optimiser's LR.

    (Plain ``LambdaLR.load_state_dict`` restores its counters but leaves the optimiser's current
    LR to the optimiser's own state, so loading only the scheduler would run one step at the
    wrong rate.)
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        for group, lr in zip(self.optimizer.param_groups, self.get_last_lr()):
            group["lr"] = lr


def make_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 0, *,
                   final_fraction: float = 0.01, kind: str = "cosine", gamma: float = 0.95,
                   steps_per_epoch: int = 1) -> WarmupLR:
    """A per-step scheduler whose LR at step ``s`` is ``lr_at(s, ..., peak_lr=group lr)``.

    Each parameter group's LR when the scheduler is made is its peak. Call
    ``scheduler.step()`` after every ``optimizer.step()``; to resume, make the optimiser and
    scheduler as for a fresh run and load both state dicts.
    """
    factor = _Factor(total_steps, warmup_steps, final_fraction, kind, gamma, steps_per_epoch)
    return WarmupLR(optimizer, factor)


def scheduler_from_config(optimizer: torch.optim.Optimizer, training: Any, steps_per_epoch: int) -> WarmupLR:
    """:func:`make_scheduler` from a :class:`~trainset.train.config.TrainingSection`.

    ``total_steps = epochs * steps_per_epoch`` and ``warmup_steps = warmup_epochs *
    steps_per_epoch``.
    """
    return make_scheduler(optimizer, training.epochs * steps_per_epoch, training.warmup_epochs * steps_per_epoch,
                          final_fraction=training.final_lr_fraction, kind=training.scheduler,
                          gamma=training.gamma, steps_per_epoch=steps_per_epoch)


class EarlyStopping:
    """Stop when the monitored value has not improved for ``patience`` epochs.

    An epoch improves when ``value < best - |best| * min_delta`` (mode ``"min"``; for positive
    losses ``value < best * (1 - min_delta)``), or ``value > best + |best| * min_delta`` in mode
    ``"max"``. The delta is *relative*, so it means the same at a loss of 1 and of 1e-6; the
    first finite value always improves, NaN or inf never does. ``patience=None`` never stops
    (the best value and epoch are still tracked). ``delta_mode="absolute"`` compares with
    ``best - min_delta`` instead (seed 003's rule; any ``min_delta >= 0``).
    """

    def __init__(self, patience: int | None = 5, min_delta: float = 1e-3, mode: str = "min",
                 delta_mode: str = "relative") -> None:
        if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 1):
            raise TrainsetError(f"patience must be an integer >= 1 (or None), got {patience!r}")
        if delta_mode not in ("relative", "absolute"):
            raise TrainsetError(f"min_delta_mode must be 'relative' or 'absolute', got {delta_mode!r}")
        if not 0 <= min_delta < (1 if delta_mode == "relative" else math.inf):
            raise TrainsetError(f"min_delta ({delta_mode}) must lie in [0, {1 if delta_mode == 'relative' else 'inf'}), "
                                f"got {min_delta}")
        if mode not in ("min", "max"):
            raise TrainsetError(f"mode must be 'min' or 'max', got {mode!r}")
        self.patience = patience
        self.min_delta = float(min_delta)
        self.delta_mode = delta_mode
        self.mode = mode
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.epoch = -1
        self.bad_epochs = 0

    def is_improvement(self, value: float) -> bool:
        """Whether ``value`` would count as an improvement on the best so far."""
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        slack = self.min_delta if self.delta_mode == "absolute" else abs(self.best) * self.min_delta
        return value < self.best - slack if self.mode == "min" else value > self.best + slack

    def step(self, value: float, epoch: int | None = None) -> bool:
        """Record one epoch's value; returns whether it improved.

        ``epoch`` defaults to one more than the previous call (0 for the first).
        """
        value = float(value)
        self.epoch = self.epoch + 1 if epoch is None else int(epoch)
        if not math.isfinite(value):
            logger.warning("early stopping: epoch %d value is %s, counted as no improvement", self.epoch, value)
        if self.is_improvement(value):
            self.best, self.best_epoch, self.bad_epochs = value, self.epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        """True once ``patience`` epochs in a row did not improve."""
        return self.patience is not None and self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        """Plain values (JSON-able) to store in a checkpoint."""
        return {"patience": self.patience, "min_delta": self.min_delta, "mode": self.mode, "delta_mode": self.delta_mode,
                "best": self.best, "best_epoch": self.best_epoch, "epoch": self.epoch,
                "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (settings and counters)."""
        self.__init__(state["patience"], state["min_delta"], state["mode"], state.get("delta_mode", "relative"))
        self.best = None if state["best"] is None else float(state["best"])
        self.best_epoch = state["best_epoch"]
        self.epoch = int(state["epoch"])
        self.bad_epochs = int(state["bad_epochs"])

    def __repr__(self) -> str:
        return (f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta}, mode={self.mode!r}, "
                f"best={self.best}, best_epoch={self.best_epoch}, bad_epochs={self.bad_epochs})")
