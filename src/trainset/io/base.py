"""The interface every format adapter implements, and the registry of adapters.

A :class:`Format` writes a :class:`~trainset.collection.Collection` (plus its splits) to one path
and returns a :class:`Reader` for that path. Readers are what loaders use: they know each part's
variables (name, per-sample shape, dtype) without reading data, and read whole blocks of samples
in one call, which is what makes chunked and compressed stores fast (anchors section 5).
Readers open files lazily and reopen them after a fork, so each DataLoader worker has its own
handle.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator

import numpy as np

from trainset.collection import Collection
from trainset.errors import TrainsetError

Splits = dict[str, np.ndarray]
"""Split name -> sorted global sample indices."""

ChunkShare = Callable[[str, int], range]
"""(the array's name in the store: HDF5 dataset path or Zarr part, its number of sample chunks)
-> the sample chunks one parallel job writes."""


@dataclass(frozen=True)
class VariableInfo:
    """Per-sample shape and dtype of one stored variable."""

    shape: tuple[int, ...]
    dtype: np.dtype


@dataclass(frozen=True)
class PartInfo:
    """What a reader knows about one part without reading its data."""

    name: str
    size: int
    variables: dict[str, VariableInfo]


class Reader(ABC):
    """Random-access reading of a stored collection (map-style formats)."""

    #: natural block of samples (a chunk, or a row group): samplers shuffle whole blocks
    block_size: int = 256

    @property
    @abstractmethod
    def parts(self) -> list[PartInfo]:
        """Parts in stored order."""

    @property
    def attrs(self) -> dict[str, Any]:
        """Dataset-level attributes."""
        return {}

    @property
    def splits(self) -> Splits | None:
        """The splits stored with the data, if any (global indices)."""
        return None

    @abstractmethod
    def read(self, part: int, local: np.ndarray, variables: list[str] | None = None) -> dict[str, np.ndarray]:
        """Rows ``local`` (sorted, unique) of part number ``part``: variable -> stacked array."""

    def __len__(self) -> int:
        return sum(p.size for p in self.parts)

    def offsets(self) -> np.ndarray:
        """Global index of each part's first sample."""
        return np.cumsum([0, *(p.size for p in self.parts)])[:-1]


class Format(ABC):
    """A file format: writer, reader factory and structural validator."""

    name: ClassVar[str]
    suffix: ClassVar[str]  # e.g. ".nc", ".h5", ".zarr", "-wds"

    def path_for(self, folder: str | os.PathLike, name: str) -> Path:
        """Where the workflow writes dataset ``name``: ``folder/TS_{name}{suffix}``."""
        return Path(folder) / f"TS_{name}{self.suffix}"

    @abstractmethod
    def write(self, collection: Collection, path: str | os.PathLike, splits: Splits | None = None,
              **options: Any) -> None:
        """Write atomically: a temporary path renamed into place only when complete."""

    @abstractmethod
    def reader(self, path: str | os.PathLike) -> Any:
        """A :class:`Reader` (map-style formats) or an iterable source (WebDataset)."""

    @abstractmethod
    def guess_can_open(self, path: str | os.PathLike) -> bool:
        """Whether ``path`` looks like this format (by name or magic bytes; never by unpickling)."""

    @abstractmethod
    def check(self, path: str | os.PathLike) -> list[str]:
        """Structural problems of a stored file (each with its fix); empty when sound."""

    @abstractmethod
    def load(self, path: str | os.PathLike) -> tuple[Collection, Splits | None]:
        """Read a whole stored dataset back into its canonical form."""

    @contextmanager
    def open(self, path: str | os.PathLike) -> Iterator[tuple[Collection, Splits | None]]:
        """The stored dataset as a collection that may read lazily while the block is open.

        Writers slice it block by block, so formats that can (NetCDF) override this to read
        only the slices asked for; the default loads everything.
        """
        yield self.load(path)


FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    """Add a format adapter to :data:`FORMATS` (each adapter module calls this last)."""
    FORMATS[fmt.name] = fmt
    return fmt


def get_format(name: str) -> Format:
    """The adapter called ``name``; a clear error lists the known ones."""
    import trainset.io  # noqa: F401  - registers the built-in adapters

    if name not in FORMATS:
        raise TrainsetError(f"unknown dataset format {name!r}. Fix: use one of {sorted(FORMATS)}")
    return FORMATS[name]


def guess_format(path: str | os.PathLike) -> Format:
    """The adapter that recognises ``path``."""
    import trainset.io  # noqa: F401

    for fmt in FORMATS.values():
        if fmt.guess_can_open(path):
            return fmt
    raise TrainsetError(f"{path}: not a dataset trainset can open (known formats: {sorted(FORMATS)}). "
                        "Fix: pass the .nc/.h5 file, the .zarr folder or the -wds folder")
