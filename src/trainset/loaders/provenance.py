"""``open_dataset(..., provenance=True)``: flu samples with their ``origin`` and ``scale``.

A flu mix stores, per sample, the group it came from (``origin``, ``H1/H2/season/sample#copy``)
and the factor ``to_scale`` multiplied it by (``scale``, 1 for frames not rescaled). Samples
are numbers only by default, so they collate into tensors fast; with ``provenance=True`` each
sample (or batch) also carries ``origin`` (text; a list of text per batch) and ``scale``
(float64), so ``frames / scale`` undoes the rescaling. Cells filled from another group were
also multiplied by their own level ratio (the dataset attribute ``fill_scale``); ``scale``
does not undo that.

Every format trainset writes (NetCDF, HDF5, Zarr, WebDataset) stores the per-sample
coordinates, so this works on any copy of a mix; a dataset without them (another task) is
refused with the reason. The coordinates are read once, when the dataset is opened.
"""

from __future__ import annotations

import os
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import IterableDataset

from trainset.errors import TrainsetError
from trainset.io.base import Format
from trainset.loaders.mapped import MappedDataset

__all__ = ["PROVENANCE", "ProvenanceDataset", "ProvenanceStream", "sample_provenance", "with_provenance"]

PROVENANCE = ("origin", "scale")
"""The per-sample coordinates added to samples."""


def sample_provenance(fmt: Format, path: str | os.PathLike) -> dict[str, np.ndarray]:
    """``origin`` (str) and ``scale`` (float64) of every sample of a stored flu dataset, in
    global order.

    Raises
    ------
    TrainsetError
        If the dataset has several parts or lacks either per-sample coordinate.
    """
    with fmt.open(path) as (collection, _):
        parts = list(collection.parts.values())
        task = collection.attrs.get("task", "unknown")
        missing = [name for name in PROVENANCE
                   if len(parts) != 1 or name not in parts[0].coords or parts[0].coords[name].dims != ("sample",)]
        if missing:
            raise TrainsetError(
                f"{path}: provenance=True needs the per-sample coordinates {list(PROVENANCE)} that flu mixes "
                f"store (the frame's source group and its to_scale factor); this dataset (task {task!r}, "
                f"{len(parts)} part(s)) lacks {missing}. Fix: open it without provenance=True")
        return {"origin": np.asarray(parts[0].coords["origin"].values).astype(str),
                "scale": np.asarray(parts[0].coords["scale"].values, dtype=np.float64)}


def _add(sample: dict[str, Any], values: dict[str, np.ndarray]) -> dict[str, Any]:
    """A sample or stacked batch with the ``origin`` and ``scale`` of its ``index``."""
    index = np.asarray(sample["index"], dtype=np.int64)
    origin = values["origin"][index]
    return {**sample, "origin": str(origin) if index.ndim == 0 else origin.tolist(),
            "scale": torch.as_tensor(values["scale"][index])}


class ProvenanceDataset(MappedDataset):
    """A map-style flu dataset whose samples and batches also carry ``origin`` and ``scale``."""

    def __init__(self, base: MappedDataset, values: dict[str, np.ndarray]) -> None:
        super().__init__(base.reader, base.indices, base.variables)
        self.provenance = values

    def get_batch(self, positions: Sequence[int]) -> Any:
        return _add(super().get_batch(positions), self.provenance)

    def _fetch(self, positions: Sequence[int]) -> list[dict[str, Any]]:
        return [_add(s, self.provenance) for s in super()._fetch(positions)]


class ProvenanceStream(IterableDataset):
    """A streamed flu dataset (WebDataset) whose samples or batches also carry ``origin`` and ``scale``."""

    def __init__(self, base: Any, values: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.base, self.provenance = base, values
        self.reader, self.batch_size = base.reader, getattr(base, "batch_size", None)

    def set_epoch(self, epoch: int) -> None:
        self.base.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.base)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for sample in self.base:
            yield _add(sample, self.provenance)


def with_provenance(dataset: Any, fmt: Format, path: str | os.PathLike) -> Any:
    """``dataset`` (as :func:`trainset.open.dataset_of` opened it) whose samples carry provenance."""
    values = sample_provenance(fmt, path)
    if len(values["origin"]) != len(dataset.reader):
        raise TrainsetError(f"{path}: {len(values['origin'])} origins for {len(dataset.reader)} samples. "
                            "Fix: rewrite the dataset")
    if isinstance(dataset, MappedDataset):
        return ProvenanceDataset(dataset, values)
    return ProvenanceStream(dataset, values)
