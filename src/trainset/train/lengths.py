"""``target_seq_len`` with an explicit policy, applied to inputs and labels alike.

The old code silently resampled by linear interpolation, and only sometimes the labels too.
Here the policy is named in the config and applied to every time-indexed variable of a batch:

``truncate``  keep the first ``length`` steps (shorter sequences are an error)
``pad``       zero-pad (or cut) to ``length`` steps and add ``time_mask`` (True = real step)
``resample``  linear interpolation to ``length`` steps (float variables only)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trainset.errors import TrainsetError

POLICIES = ("truncate", "pad", "resample")


def apply_length(batch: dict, length: int | None, policy: str, time_keys: tuple[str, ...]) -> dict:
    """Bring every variable in ``time_keys`` (time on axis 1) to ``length`` steps."""
    if length is None:
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
        mask = torch.zeros(values.shape[0], length, dtype=torch.bool)
        mask[:, :keep] = True
        return padded, mask
    if not values.is_floating_point():
        raise TrainsetError(f"{key}: integer values cannot be resampled. Fix: use policy truncate or pad")
    moved = values.reshape(values.shape[0], steps, -1).transpose(1, 2)
    resampled = F.interpolate(moved, size=length, mode="linear", align_corners=True)
    return resampled.transpose(1, 2).reshape(values.shape[0], length, *values.shape[2:]), None
