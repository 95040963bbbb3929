"""Collate samples of several simulator worlds into one padded batch (seed 003).

Worlds differ in parameter count (``theta`` is ``[n_params]``) and shock count (``irfs`` is
``[n_shocks, H+1, n_vars]``), so their samples cannot be stacked as they are.
:func:`collate_mixed_worlds` zero-pads them to the widest world in the batch and returns masks
that say which entries are real, keeping *every* shock (the old code trained shock 0 only).
:func:`collate_single_world` is the fast path for batches of one world: a plain stack.

Padding rule for any further numeric key (present in every sample of the batch): when all
samples have the same shape the values are stacked as they are and no mask is added; when
shapes differ (same number of dimensions required) each value is zero-padded at the end of
every axis to the batch maximum and ``<key>_mask`` (bool, the padded shape) is True exactly on
the real entries. Keys missing from some samples are dropped (logged at debug level); keys
holding strings are returned as lists.

Samples are dicts as :meth:`trainset.collection.Collection.sample` makes them: numpy arrays or
torch tensors, ``index`` (the global sample number) and ``part`` (the world name; samples of a
one-part collection carry none, and their part is reported as ``""``). Batches keep that word:
each holds ``part``, the list of its rows' part names, as every stored format calls them.
"""

from __future__ import annotations

import functools
import logging
import numbers
from typing import Any, Sequence

import numpy as np
import torch

from trainset.errors import TrainsetError

logger = logging.getLogger(__name__)

__all__ = ["collate_mixed_worlds", "collate_single_world", "pad_stack"]

_SPECIAL = ("theta", "irfs", "index", "part")


def _tensor(value: Any, key: str) -> torch.Tensor:
    """A tensor view of a numpy array, tensor or number (no copy when possible)."""
    if isinstance(value, torch.Tensor):
        return value
    array = np.asarray(value)
    if not array.flags.writeable:  # torch warns on read-only buffers; a copy is cheap here
        array = array.copy()
    try:
        return torch.as_tensor(array)
    except (TypeError, ValueError, RuntimeError) as error:
        raise TrainsetError(f"collate: key {key!r} holds {type(value).__name__}, not numbers ({error})") from error


def _is_numeric(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (numbers.Number, np.generic, np.ndarray)):
        return np.asarray(value).dtype.kind in "biufc"
    return False


def pad_stack(values: Sequence[Any], key: str = "value") -> tuple[torch.Tensor, torch.Tensor | None]:
    """Stack, zero-padding every axis to the batch maximum when shapes differ.

    Returns
    -------
    (batch, mask)
        ``batch`` is ``[B, *max_shape]``; ``mask`` (same shape, bool, True on real entries) is
        None when every value already had the same shape.

    Raises
    ------
    TrainsetError
        If the values differ in number of dimensions.
    """
    tensors = [_tensor(v, key) for v in values]
    ndims = {t.ndim for t in tensors}
    if len(ndims) != 1:
        raise TrainsetError(f"collate: key {key!r} has {sorted(ndims)} dimensions across samples. "
                            "Fix: store it with the same number of axes in every world")
    dtype = functools.reduce(torch.promote_types, (t.dtype for t in tensors))
    shapes = [tuple(t.shape) for t in tensors]
    if len(set(shapes)) == 1:
        return torch.stack([t.to(dtype) for t in tensors]), None
    full = tuple(max(sizes) for sizes in zip(*shapes))
    batch = torch.zeros((len(tensors), *full), dtype=dtype)
    mask = torch.zeros((len(tensors), *full), dtype=torch.bool)
    for row, tensor in enumerate(tensors):
        region = (row, *(slice(0, s) for s in tensor.shape))
        batch[region] = tensor
        mask[region] = True
    return batch, mask


def _index_and_part(samples: Sequence[dict[str, Any]]) -> tuple[torch.Tensor, list[str]]:
    try:
        index = torch.as_tensor([int(s["index"]) for s in samples], dtype=torch.int64)
    except KeyError as error:
        raise TrainsetError("collate: a sample has no 'index'. Fix: build samples with Collection.sample "
                            "or a trainset reader") from error
    return index, [str(s.get("part", "")) for s in samples]


def _common_keys(samples: Sequence[dict[str, Any]]) -> list[str]:
    """Keys (in first-sample order) present in every sample, other than the special ones."""
    keys = [k for k in samples[0] if k not in _SPECIAL]
    common = [k for k in keys if all(k in s for s in samples)]
    dropped = sorted(set().union(*samples) - set(common) - set(_SPECIAL))
    if dropped:
        logger.debug("collate: keys %s are missing from some samples and are dropped", dropped)
    return common


def _require(samples: Sequence[dict[str, Any]], key: str, ndim: int, what: str) -> list[torch.Tensor]:
    tensors = []
    for position, sample in enumerate(samples):
        if key not in sample:
            raise TrainsetError(f"collate_mixed_worlds: sample {position} has no {key!r}")
        tensor = _tensor(sample[key], key)
        if tensor.ndim != ndim:
            raise TrainsetError(f"collate_mixed_worlds: sample {position} {key!r} has shape {tuple(tensor.shape)}, "
                                f"expected {what}")
        tensors.append(tensor)
    return tensors


def collate_mixed_worlds(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch samples of possibly different worlds, zero-padding parameters and shocks.

    Parameters
    ----------
    samples : list of dict
        Each with ``theta`` ``[n_params]``, ``irfs`` ``[n_shocks, H+1, n_vars]``, ``index`` and
        ``part``; ``H+1`` and ``n_vars`` must agree across the batch.

    Returns
    -------
    dict
        ``theta`` ``[B, max_params]``, ``theta_mask`` (bool), ``irfs``
        ``[B, max_shocks, H+1, n_vars]``, ``shock_mask`` ``[B, max_shocks]`` (bool), ``index``
        ``[B]`` int64, ``part`` (list of world names), plus any further keys under the module's rule.
    """
    if not samples:
        raise TrainsetError("collate_mixed_worlds: empty batch")
    thetas = _require(samples, "theta", 1, "[n_params]")
    irfs = _require(samples, "irfs", 3, "[n_shocks, H+1, n_vars]")
    trailing = {tuple(t.shape[1:]) for t in irfs}
    if len(trailing) != 1:
        raise TrainsetError(f"collate_mixed_worlds: 'irfs' horizons x variables differ across worlds "
                            f"{sorted(trailing)}. "
                            "Fix: simulate every world with the same H and the same variables")
    n_params = torch.as_tensor([t.shape[0] for t in thetas])
    n_shocks = torch.as_tensor([t.shape[0] for t in irfs])
    theta, _ = pad_stack(thetas, "theta")
    irf, _ = pad_stack(irfs, "irfs")
    out: dict[str, Any] = {
        "theta": theta,
        "theta_mask": torch.arange(theta.shape[1])[None, :] < n_params[:, None],
        "irfs": irf,
        "shock_mask": torch.arange(irf.shape[1])[None, :] < n_shocks[:, None],
    }
    out["index"], out["part"] = _index_and_part(samples)
    for key in _common_keys(samples):
        if all(_is_numeric(s[key]) for s in samples):
            out[key], mask = pad_stack([s[key] for s in samples], key)
            if mask is not None:
                out[f"{key}_mask"] = mask
        else:
            out[key] = [s[key] for s in samples]
    return out


def collate_single_world(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples of one world without padding (the fast path for per-world batches).

    Raises
    ------
    TrainsetError
        If the batch mixes worlds or a key's shapes differ (use :func:`collate_mixed_worlds`).
    """
    if not samples:
        raise TrainsetError("collate_single_world: empty batch")
    index, part = _index_and_part(samples)
    if len(set(part)) > 1:
        raise TrainsetError(f"collate_single_world: batch mixes worlds {sorted(set(part))}. "
                            "Fix: use collate_mixed_worlds, or a sampler that batches one world at a time")
    out: dict[str, Any] = {}
    for key in [k for k in ("theta", "irfs") if k in samples[0]] + _common_keys(samples):
        values = [s[key] for s in samples]
        if not all(_is_numeric(v) for v in values):
            out[key] = values
            continue
        tensors = [_tensor(v, key) for v in values]
        shapes = sorted({tuple(t.shape) for t in tensors})
        if len(shapes) > 1:
            raise TrainsetError(f"collate_single_world: {key!r} has shapes {shapes} in one batch. "
                                "Fix: use collate_mixed_worlds, which pads and masks")
        out[key] = torch.stack(tensors)
    out["index"], out["part"] = index, part
    return out
