"""PyTorch dataset over a flu-frames NetCDF file (dims sample, feature, season_week, place).

The file is small (3000 x 1 x 53 x 51 float32 is ~32 MB), so it is read once into memory:
per-sample reads through xarray would cost ~0.2-1 ms each, an in-memory slice microseconds.
Each fetch copies the requested samples, augments them in data units (see
:mod:`trainset.augment`), then encodes them with the fitted transform (see
:mod:`trainset.transforms`); without augmentation the encoding is computed once up front, so
a fetch is a single slice. :meth:`FluDataset.inverse` maps model outputs back.

Augmentation is deterministic per ``(seed, epoch, index)``: call :meth:`FluDataset.set_epoch`
before each epoch. The epoch lives in shared memory, so it reaches DataLoader workers even when
they are persistent, and a sample's draws never depend on worker count or fetch order.

``DataLoader(ds, batch_size=B)`` works as usual (~250k samples/s without augmentation);
``DataLoader(ds, sampler=BatchSampler(...), batch_size=None)`` skips collation (~1.8M/s).
Poisson resampling costs ~0.15 ms a sample, so with it on, ``num_workers=2`` pays off.
"""

from __future__ import annotations

import copy
import logging
import operator
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from trainset.augment import Augment, augment_batch, sample_rng
from trainset.errors import TrainsetError
from trainset.io.netcdf import open_netcdf_array
from trainset.transforms import Identity, Transform, make_transform

logger = logging.getLogger(__name__)

__all__ = ["DIMS", "FluDataset"]

DIMS = ("sample", "feature", "season_week", "place")


class FluDataset(Dataset):
    """In-memory flu frames as float32 tensors shaped ``(feature, season_week, place)``.

    Parameters
    ----------
    data : numpy.ndarray
        Frames in data units, shaped ``(sample, feature, season_week, place)``.
    transform : str, Transform or None
        Registry name or instance; fitted on ``data[fit_indices]`` (all samples by default)
        unless already fitted. ``None`` means no transform. An unfitted instance is copied
        before fitting, so the caller's object is left untouched.
    augment : Augment or None
        Data-space augmentations; ``None`` means none.
    seed : int
        Non-negative base seed of the augmentation streams.
    fit_indices : sequence of int or None
        Samples to fit the transform on. For real training pass the train split here (or a
        transform already fitted on it), so validation statistics never leak into training.
    coords : dict or None
        Per-sample coordinate arrays (``origin``, ``datasetH1``, ...), kept for reference.
    attrs : dict or None
        File attributes, kept for reference.
    """

    def __init__(
        self,
        data: np.ndarray,
        transform: str | Transform | None = None,
        augment: Augment | None = None,
        seed: int = 0,
        *,
        fit_indices: Sequence[int] | None = None,
        coords: dict[str, np.ndarray] | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> None:
        data = np.asarray(data)
        if data.ndim != 4:
            raise TrainsetError(f"FluDataset: data must be {DIMS}, got shape {data.shape}.")
        if int(seed) < 0:
            raise TrainsetError(f"FluDataset: seed must be >= 0, got {seed}.")
        self._data = np.ascontiguousarray(data, dtype=np.float32).view()  # caller's array
        self._data.flags.writeable = False  # stays writable; only this view is locked
        self._augment = augment or Augment()
        self.seed = int(seed)
        self.coords = dict(coords or {})
        self.attrs = dict(attrs or {})
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        sel = self._data if fit_indices is None else self._data[np.asarray(fit_indices)]
        self._transform = _fitted(transform, sel)
        # Without augmentation the encoding is fixed, so do it once: fetches are then slices.
        self._encoded = None if self._augment.enabled else _encode_all(self._transform, self._data)

    @classmethod
    def from_netcdf(
        cls,
        path: str | os.PathLike,
        transform: str | Transform | None = None,
        augment: Augment | None = None,
        seed: int = 0,
        variable: str = "frames",
        *,
        fit_indices: Sequence[int] | None = None,
    ) -> FluDataset:
        """Load ``variable`` of a NetCDF file written by the datasets stage, all at once.

        Raises
        ------
        TrainsetError
            If the file is missing or unreadable, lacks ``variable``, has other dims than
            ``(sample, feature, season_week, place)``, or holds NaN/inf values.
        """
        data, coords, attrs = _read_netcdf(Path(path), variable)
        logger.info("loaded %s %r: shape %s", path, variable, data.shape)
        return cls(data, transform, augment, seed, fit_indices=fit_indices, coords=coords,
                   attrs=attrs)

    # -- torch Dataset protocol -------------------------------------------------------------
    def __len__(self) -> int:
        """Number of samples."""
        return len(self._data)

    def __getitem__(self, index: int | Sequence[int]) -> torch.Tensor:
        """One encoded sample, float32 ``(feature, season_week, place)``.

        A sequence of indices returns :meth:`get_batch` instead, so
        ``DataLoader(ds, sampler=BatchSampler(...), batch_size=None)`` yields whole batch
        tensors with no collate step at all.
        """
        try:
            single = operator.index(index)  # int, numpy or 0-d torch integer
        except TypeError:
            return self.get_batch(index)
        return self.get_batch([single])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[torch.Tensor]:
        """A batch computed in one vectorised step, returned as per-sample views.

        torch 2.13's fetcher calls ``collate_fn(dataset.__getitems__(indices))`` and the
        default collate expects a *list of samples* (it fails on a batch tensor), so this
        returns ``list(get_batch(indices))``: views into one batch, which ``default_collate``
        stacks with a single copy. Thus plain ``DataLoader(ds, batch_size=B)`` works.
        """
        return list(self.get_batch(indices).unbind(0))

    def get_batch(self, indices: Sequence[int]) -> torch.Tensor:
        """Stacked float32 batch ``(batch, feature, season_week, place)``, vectorised.

        Equal to stacking :meth:`__getitem__` over ``indices`` (negative indices wrap).
        Augmentation is applied in data units first, then the transform encodes.
        """
        idx = self._normalise(indices)
        if self._encoded is not None:
            return torch.from_numpy(self._encoded[idx])
        epoch = int(self._epoch)
        rngs = [sample_rng(self.seed, epoch, i) for i in idx.tolist()]
        batch = augment_batch(self._data[idx], self._augment, rngs)
        encoded = self._transform.encode(batch)
        return torch.from_numpy(np.ascontiguousarray(encoded, dtype=np.float32))

    # -- public helpers ---------------------------------------------------------------------
    @property
    def transform(self) -> Transform:
        """The fitted transform (read-only: build a new dataset to change it)."""
        return self._transform

    @property
    def augment(self) -> Augment:
        """The augmentation config (read-only: build a new dataset to change it)."""
        return self._augment

    @property
    def epoch(self) -> int:
        """The epoch keying the augmentation streams."""
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch``; call before iterating each epoch."""
        if int(epoch) < 0:
            raise TrainsetError(f"FluDataset: epoch must be >= 0, got {epoch}.")
        self._epoch.fill_(int(epoch))

    @property
    def data(self) -> np.ndarray:
        """The raw frames in data units (read-only, not augmented, not encoded)."""
        return self._data

    @property
    def origins(self) -> list[str] | None:
        """Per-sample provenance strings from the ``origin`` coordinate, if the file has one."""
        origin = self.coords.get("origin")
        return None if origin is None else [str(o) for o in origin]

    def inverse(self, batch: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """Decode model output (batch or single sample) to data units; keeps type and device."""
        if isinstance(batch, torch.Tensor):
            decoded = self._transform.decode(batch.detach().cpu().numpy())
            return torch.from_numpy(np.ascontiguousarray(decoded)).to(batch.device)
        return self._transform.decode(batch)

    def _normalise(self, indices: Sequence[int]) -> np.ndarray:
        """Indices as int64 in ``0..n-1`` (negatives wrap), so ``-1`` and ``n-1`` draw alike."""
        n = len(self._data)
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if ((idx < -n) | (idx >= n)).any():
            raise IndexError(f"FluDataset: index out of range for {n} samples: {indices!r}")
        return np.where(idx < 0, idx + n, idx)


def _fitted(transform: str | Transform | None, data: np.ndarray) -> Transform:
    """Return a fitted transform, fitting a copy on ``data`` when needed."""
    if transform is None:
        return Identity()
    if isinstance(transform, str):
        transform = make_transform(transform)
    elif not isinstance(transform, Transform):
        raise TrainsetError(
            f"FluDataset: transform must be a name, a Transform or None, got {type(transform)}."
        )
    elif transform.fitted:
        return transform
    else:
        transform = copy.deepcopy(transform)
    logger.info("fitting %s on %d samples", transform.name, len(data))
    return transform.fit(data)


def _encode_all(transform: Transform, data: np.ndarray) -> np.ndarray:
    """Encode every sample once, as a read-only contiguous float32 array."""
    encoded = np.ascontiguousarray(transform.encode(data), dtype=np.float32)
    encoded.flags.writeable = False
    return encoded


def _read_netcdf(path: Path, variable: str) -> tuple[np.ndarray, dict, dict]:
    """Read one variable, its per-sample coords and the attrs; errors name file and fix."""
    if not path.is_file():
        raise TrainsetError(f"{path}: no such file; build it with the datasets stage first "
                            "or fix the path.")
    arr = open_netcdf_array(path, variable)  # raises TrainsetError on unreadable/missing var
    if tuple(arr.dims) != DIMS:
        raise TrainsetError(f"{path}: {variable!r} has dims {tuple(arr.dims)}, expected {DIMS}; "
                            "rewrite it with .transpose(*DIMS).")
    data = np.asarray(arr.values, dtype=np.float32)
    bad = int((~np.isfinite(data)).sum())
    if bad:
        raise TrainsetError(f"{path}: {variable!r} holds {bad} NaN/inf values; fill them in the "
                            "frames stage before training.")
    coords = {str(k): np.asarray(c.values) for k, c in arr.coords.items()
              if c.dims == ("sample",) and k != "sample"}
    coords.update({k: np.asarray(arr.coords[k].values) for k in DIMS[2:] if k in arr.coords})
    return data, coords, dict(arr.attrs)
