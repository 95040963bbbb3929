"""Some of a stored dataset's parts (worlds) as a reader of their own: ``open_dataset(worlds=...)``.

Why a reader and not a filter on sample indices: everything downstream of a reader (model
description, per-world heads, the padded collate, scaler checks) asks ``reader.parts``, so
narrowing the parts here makes every stage agree on which worlds a run has. Samples keep the
identity they have in the store: :meth:`PartSubset.stored_index` maps this reader's numbering
back to the store's global numbers, which is what datasets put in a sample's ``index`` (so
predictions still line up with the store's splits), and samples keep their ``part`` even when
one world is selected (:attr:`PartSubset.names_parts`), as they had it in the whole store.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from trainset.errors import TrainsetError
from trainset.io.base import PartInfo, Reader, Splits


class PartSubset(Reader):
    """The parts ``names`` of ``source``, in stored order, numbered as if alone.

    Parameters
    ----------
    source : Reader
        A random-access reader of the whole dataset.
    names : sequence of str
        World (part) names to keep; each must be stored, none twice, at least one.
    where : str
        What to name in errors (the dataset path).
    """

    def __init__(self, source: Reader, names: Sequence[str], where: Any) -> None:
        if isinstance(names, str):
            raise TrainsetError(f"{where}: worlds={names!r} is a string. Fix: pass a list, e.g. worlds=[{names!r}]")
        stored = [p.name for p in source.parts]
        names = [str(n) for n in names]
        unknown = [n for n in names if n not in stored]
        if unknown or not names or len(set(names)) != len(names):
            problem = (f"no world(s) {unknown}" if unknown else "no world given" if not names
                       else f"worlds listed twice in {names}")
            raise TrainsetError(f"{where}: {problem}; it stores worlds {stored}. Fix: pass worlds from that list, "
                                "each once")
        self.source = source
        self.numbers = np.asarray(sorted(stored.index(n) for n in names), dtype=np.int64)
        self.block_size = source.block_size
        self.names_parts = len(stored) > 1
        """Samples carry ``part`` (as they do in the whole dataset, which has several)."""
        self._source_offsets = source.offsets()

    @property
    def parts(self) -> list[PartInfo]:
        every = self.source.parts
        return [every[k] for k in self.numbers]

    @property
    def attrs(self) -> dict[str, Any]:
        return self.source.attrs

    @property
    def splits(self) -> Splits | None:
        """The store's splits, restricted to these worlds, in this reader's numbering."""
        stored = self.source.splits
        return None if stored is None else self.from_stored(stored)

    def read(self, part: int, local: np.ndarray, variables: list[str] | None = None) -> dict[str, np.ndarray]:
        if not 0 <= part < len(self.numbers):
            raise TrainsetError(f"part {part} does not exist (the subset has {len(self.numbers)})")
        return self.source.read(int(self.numbers[part]), local, variables)

    def stored_index(self, indices: np.ndarray) -> np.ndarray:
        """This reader's global numbers -> the store's global numbers."""
        indices = np.asarray(indices, dtype=np.int64)
        mine = self.offsets()
        part = np.searchsorted(mine, indices, side="right") - 1
        return indices - mine[part] + self._source_offsets[self.numbers[part]]

    def from_stored(self, splits: Splits) -> Splits:
        """Split name -> sorted indices of the store, kept when in these worlds and renumbered."""
        return {name: self.keep(ix) for name, ix in splits.items()}

    def keep(self, indices: np.ndarray) -> np.ndarray:
        """The store's global ``indices`` that fall in these worlds, in this reader's numbering
        (order kept)."""
        indices = np.asarray(indices, dtype=np.int64)
        sizes = np.asarray([p.size for p in self.source.parts], dtype=np.int64)
        part = np.searchsorted(self._source_offsets, indices, side="right") - 1
        position = np.full(sizes.size, -1, dtype=np.int64)
        position[self.numbers] = np.arange(self.numbers.size)
        chosen = position[part] >= 0
        local = indices[chosen] - self._source_offsets[part[chosen]]
        return self.offsets()[position[part[chosen]]] + local
