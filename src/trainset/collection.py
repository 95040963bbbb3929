"""The canonical in-memory form of a dataset, which every format writes and every reader yields.

A :class:`Collection` is an ordered set of *parts*, each an :class:`xarray.Dataset` whose data
variables all start with a ``sample`` dimension. Most datasets have one part; the macro
emulator has one per world (``nk``, ``var``, ``lss``), because worlds differ in parameter and
shock counts, so their arrays cannot share one shape. Samples are numbered globally in part
order: part 0's samples first. A *sample* is the dict of one row of every data variable of its
part, plus ``index`` (the global number) and, for collections of several parts, ``part``.

Per-sample coordinates (origins, site ids, dates as text) and attributes travel with the parts
but are not part of a sample: samples hold numbers only, so they collate into tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

if TYPE_CHECKING:  # parts are built by the adapters; importing xarray (and pandas) here cost every job ~0.5 CPU-s
    import xarray as xr

from trainset.errors import TrainsetError

SAMPLE = "sample"


@dataclass
class Collection:
    """Ordered parts of a dataset, with dataset-level attributes.

    Parameters
    ----------
    parts : dict of str to xarray.Dataset
        Part name -> dataset with a leading ``sample`` dimension on every data variable.
    attrs : dict
        Dataset-level attributes (task, provenance, config); JSON-able.
    """

    parts: dict[str, xr.Dataset]
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.parts:
            raise TrainsetError("a dataset needs at least one part")
        for name, part in self.parts.items():
            for var, array in part.data_vars.items():
                if not array.dims or array.dims[0] != SAMPLE:
                    raise TrainsetError(f"part {name!r}, variable {var!r}: first dimension must be "
                                        f"'{SAMPLE}', got {array.dims}")

    @classmethod
    def single(cls, dataset: xr.Dataset, name: str = "all", attrs: dict | None = None) -> "Collection":
        """A one-part collection."""
        return cls({name: dataset}, dict(attrs or {}))

    @property
    def sizes(self) -> dict[str, int]:
        """Samples per part, in part order."""
        return {name: int(part.sizes[SAMPLE]) for name, part in self.parts.items()}

    @property
    def offsets(self) -> dict[str, int]:
        """Global index of each part's first sample."""
        starts = np.cumsum([0, *self.sizes.values()])[:-1]
        return {name: int(start) for name, start in zip(self.parts, starts)}

    def __len__(self) -> int:
        return sum(self.sizes.values())

    def variables(self, part: str) -> list[str]:
        """Data variable names of a part, in stored order."""
        return list(self.parts[part].data_vars)

    def locate(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(part number, local index) of global sample indices."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise TrainsetError(f"sample index out of range 0..{len(self) - 1}")
        starts = np.asarray(list(self.offsets.values()))
        part = np.searchsorted(starts, indices, side="right") - 1
        return part, indices - starts[part]

    def sample(self, index: int) -> dict[str, Any]:
        """One sample as a dict of numpy arrays (``index``, and ``part`` when several)."""
        number, local = (int(x[0]) for x in self.locate(np.array([index])))
        name = list(self.parts)[number]
        part = self.parts[name]
        out: dict[str, Any] = {var: np.asarray(part[var].values[local]) for var in part.data_vars}
        out["index"] = np.int64(index)
        if len(self.parts) > 1:
            out["part"] = name
        return out

    def iter_samples(self, indices: np.ndarray | None = None) -> Iterator[dict[str, Any]]:
        """Samples in the given (default: stored) order."""
        for index in range(len(self)) if indices is None else indices:
            yield self.sample(int(index))
