"""The run config's ``augment:`` applied to the training split of a stored flu dataset.

:class:`~trainset.loaders.flu.FluDataset` augments frames it holds in memory; workflow runs read
stored datasets through :func:`trainset.open.open_dataset` instead, so this module wraps those
datasets (map-style :class:`~trainset.loaders.mapped.MappedDataset` and streamed
:class:`~trainset.loaders.wds.WdsDataset`) and augments the ``frames`` variable of every
batch they yield, in data units (before any scaler, as FluDataset does before its transform).

Each sample draws from :func:`trainset.augment.sample_rng` ``(training.seed, epoch, index)``,
``index`` being the sample's global number in the stored dataset: the draws of a sample do not
depend on the batch it lands in, on the fetch order, on the split it belongs to or on the number
of DataLoader workers. The epoch is set through ``set_epoch`` (the loader factory of
:func:`trainset.train.run.batches` calls it) and lives in shared memory like FluDataset's.

Only the training split is wrapped (:func:`augment_split`); validation and test data are never
augmented. A dataset without a ``frames`` variable (a task other than flu frames) is refused.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import IterableDataset

from trainset.augment import Augment, augment_batch, from_config, sample_rng
from trainset.errors import TrainsetError
from trainset.loaders.mapped import MappedDataset

__all__ = ["FRAMES", "AugmentedDataset", "AugmentedStream", "augment_frames", "augment_split"]

FRAMES = "frames"
"""The variable holding flu frames ``(feature, season_week, place)`` per sample."""


def augment_frames(batch: dict[str, Any], cfg: Augment, seed: int, epoch: int) -> dict[str, Any]:
    """``batch`` with its ``frames`` augmented, one generator per sample from its ``index``.

    Accepts a stacked batch (``frames`` ``(B, feature, week, place)``, ``index`` ``(B,)``) or
    one sample (``frames`` 3-D, ``index`` a scalar); returns a new dict of the same layout.
    """
    frames = batch[FRAMES]
    single = frames.ndim == 3
    index = np.atleast_1d(np.asarray(batch["index"], dtype=np.int64))
    x = np.asarray(frames)[None] if single else np.asarray(frames)
    rngs = [sample_rng(seed, epoch, i) for i in index.tolist()]
    out = torch.from_numpy(np.ascontiguousarray(augment_batch(x, cfg, rngs)))
    return {**batch, FRAMES: out[0] if single else out}


class _Epoch:
    """The epoch keying the draws, in shared memory so DataLoader workers see every update."""

    def __init__(self) -> None:
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch``; call before iterating each epoch."""
        if int(epoch) < 0:
            raise TrainsetError(f"augment: epoch must be >= 0, got {epoch}")
        self._epoch.fill_(int(epoch))

    @property
    def epoch(self) -> int:
        return int(self._epoch)


class AugmentedDataset(MappedDataset, _Epoch):
    """A one-part map-style flu dataset whose ``frames`` come out augmented (same samples, same
    batching; only the values of ``frames`` change)."""

    def __init__(self, base: MappedDataset, augment: Augment, seed: int) -> None:
        MappedDataset.__init__(self, base.reader, base.indices, base.variables)
        _Epoch.__init__(self)
        self.augment, self.seed = augment, int(seed)

    def get_batch(self, positions: Sequence[int]) -> Any:
        return augment_frames(super().get_batch(positions), self.augment, self.seed, self.epoch)

    def _fetch(self, positions: Sequence[int]) -> list[dict[str, Any]]:
        samples = super()._fetch(positions)
        if not samples:
            return samples
        stacked = {FRAMES: torch.stack([s[FRAMES] for s in samples]),
                   "index": torch.stack([s["index"] for s in samples])}
        frames = augment_frames(stacked, self.augment, self.seed, self.epoch)[FRAMES]
        return [{**s, FRAMES: f} for s, f in zip(samples, frames.unbind(0))]


class AugmentedStream(IterableDataset, _Epoch):
    """A streamed flu dataset (WebDataset) whose ``frames`` come out augmented, sample by sample
    or batch by batch as the wrapped stream yields them."""

    def __init__(self, base: Any, augment: Augment, seed: int) -> None:
        IterableDataset.__init__(self)
        _Epoch.__init__(self)
        self.base, self.augment, self.seed = base, augment, int(seed)
        self.reader, self.batch_size = base.reader, base.batch_size

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch of the augmentation draws and of the wrapped stream's shuffle."""
        _Epoch.set_epoch(self, epoch)
        self.base.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.base)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        epoch = self.epoch
        for batch in self.base:
            yield augment_frames(batch, self.augment, self.seed, epoch)


def augment_split(dataset: Any, options: dict[str, Any], seed: int, where: Any) -> Any:
    """``dataset`` (the training split, as :func:`trainset.open.dataset_of` opened it) wrapped so
    its frames are augmented as ``options`` (a run config's ``augment``) say; unchanged when
    ``options`` is empty.

    Raises
    ------
    TrainsetError
        If the dataset holds no ``frames`` variable (augmentation is defined for flu frames
        only), holds several parts, or was opened without its ``frames``.
    """
    augment = from_config(options)
    if not augment.enabled:
        return dataset
    parts = list(dataset.reader.parts)
    shape = parts[0].variables.get(FRAMES).shape if FRAMES in parts[0].variables else None
    if len(parts) != 1 or shape is None or len(shape) != 3:
        task = dataset.reader.attrs.get("task", "unknown")
        raise TrainsetError(
            f"{where}: augment: Poisson resampling, week shifts and rescaling are defined for flu frames "
            f"(one part with a 'frames' variable shaped (feature, season_week, place)); this dataset "
            f"(task {task!r}, variables {sorted(parts[0].variables)}) has none. Fix: remove augment from the run")
    if getattr(dataset, "variables", None) and FRAMES not in dataset.variables:
        raise TrainsetError(f"{where}: augment: data.variables leaves out 'frames', the variable augmented. "
                            "Fix: add frames to data.variables or remove augment")
    if isinstance(dataset, MappedDataset):
        return AugmentedDataset(dataset, augment, seed)
    return AugmentedStream(dataset, augment, seed)
