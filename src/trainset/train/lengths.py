"""``target_seq_len``: the *target's* time length, checked, and changed only by a named policy.

The old code resampled inputs and labels to ``target_seq_len`` silently, so seed 001's
forecasting example (24 input steps, 8 label steps, ``target_seq_len: 8  # Must match
forecast_len!``) trained on the first 8 input steps only. Here (:func:`length_plan`):

- the *target* is the labels' time axis when labels are indexed by time (per-step labels of
  the inputs' length, or a forecast horizon of another length), the inputs for reconstruction,
  and the inputs' time axis for seq2static tasks (one target per sequence, read over all steps);
- ``target_seq_len`` must equal the target's length, else the run stops naming both lengths;
- only ``data.target_seq_policy`` changes lengths on purpose, applied to the target and the
  inputs aligned with it. A forecast horizon is never changed and forecast inputs are never cut
  (the model's head is built for the stored horizon).

Policies:

``truncate``  keep the first ``length`` steps (shorter sequences are an error)
``pad``       zero-pad (or cut) to ``length`` steps and add ``time_mask`` (True = real step)
``resample``  linear interpolation to ``length`` steps (float variables only)
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F

from trainset.errors import TrainsetError

logger = logging.getLogger(__name__)

POLICIES = ("truncate", "pad", "resample")


def length_plan(info: dict[str, Any], length: int | None, policy: str | None, where: Any = "data") -> tuple[str, ...]:
    """The batch variables ``policy`` brings to ``length`` steps (``()``: none), after checking that
    ``length`` is the target's length or that a policy may change it (see the module docstring)."""
    if length is None:
        return ()
    from trainset.tasks import TASKS

    variables = info.get("variables") or {}
    spec = TASKS.get(info.get("task"))
    if "data" not in variables or not variables["data"]["shape"] or (spec is not None and not spec.sequence):
        raise TrainsetError(f"{where}: data.target_seq_len is set, but the dataset's task {info.get('task')!r} has "
                            "no sequence target. Fix: remove data.target_seq_len")
    steps = int(variables["data"]["shape"][0])
    labels = (variables.get("labels") or {}).get("shape") or []
    target_is_data = spec is not None and spec.target == "data"
    per_step = not target_is_data and len(labels) >= 1 and (spec is None or spec.seq2seq)
    if per_step and int(labels[0]) != steps:  # a forecast horizon after the inputs
        if int(labels[0]) != int(length):
            raise TrainsetError(f"{where}: data.target_seq_len is {length}, but the labels (the forecast horizon) have "
                                f"{labels[0]} steps. Fix: set data.target_seq_len: {labels[0]}; a horizon is what "
                                f"the data holds, and the {steps} input steps are never cut")
        return ()
    keys = ("data", "labels") if per_step else ("data",)
    what = "the per-step labels and their inputs" if per_step else "the input sequences"
    if steps == int(length):
        return ()
    if policy is None:
        raise TrainsetError(f"{where}: data.target_seq_len is {length}, but {what} have {steps} steps. "
                            f"Fix: set data.target_seq_len: {steps}, or set data.target_seq_policy "
                            f"({'|'.join(POLICIES)}) to change the length on purpose")
    if steps > int(length):
        logger.warning("%s: data.target_seq_policy %s brings %s from %d to %d steps (%d input steps dropped)",
                       where, policy, what, steps, length, steps - int(length))
    return keys


def apply_length(batch: dict, length: int | None, policy: str, time_keys: tuple[str, ...]) -> dict:
    """Bring every variable in ``time_keys`` (time on axis 1) to ``length`` steps (see :func:`length_plan`)."""
    if length is None or not time_keys:
        return batch
    if policy not in POLICIES:
        raise TrainsetError(f"data.target_seq_policy {policy!r} unknown. Fix: use one of {list(POLICIES)}")
    out = dict(batch)
    for key in time_keys:
        if key not in batch or not isinstance(batch[key], torch.Tensor) or batch[key].ndim < 2:
            continue
        out[key], mask = _fit(batch[key], int(length), policy, key)
        if mask is not None:
            out["time_mask"] = mask
    return out


def _fit(values: torch.Tensor, length: int, policy: str, key: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    steps = values.shape[1]
    if policy == "truncate":
        if steps < length:
            raise TrainsetError(f"{key}: {steps} steps < target_seq_len {length} with policy truncate. "
                                "Fix: use policy pad or resample, or lower target_seq_len")
        return values[:, :length], None
    if policy == "pad":
        keep = min(steps, length)
        padded = values.new_zeros((values.shape[0], length, *values.shape[2:]))
        padded[:, :keep] = values[:, :keep]
        mask = torch.zeros(values.shape[0], length, dtype=torch.bool, device=values.device)
        mask[:, :keep] = True
        return padded, mask
    if not values.is_floating_point():
        raise TrainsetError(f"{key}: integer values cannot be resampled. Fix: use policy truncate or pad")
    moved = values.reshape(values.shape[0], steps, -1).transpose(1, 2)
    resampled = F.interpolate(moved, size=length, mode="linear", align_corners=True)
    return resampled.transpose(1, 2).reshape(values.shape[0], length, *values.shape[2:]), None
