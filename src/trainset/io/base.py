"""The interface every format adapter implements, and the registry of adapters.

A :class:`Format` writes a :class:`~trainset.collection.Collection` (plus its splits) to one path,
in one call or in parallel jobs plus a gather, and returns a :class:`Reader` for that path.
Readers are what loaders use: they know each part's variables (name, per-sample shape, dtype)
without reading data, and read whole blocks of samples in one call, which is what makes chunked
and compressed stores fast (anchors section 5). Every reader streams blocks in stored order
(:meth:`Reader.iter_blocks`); map-style readers also read any rows (:meth:`Reader.read`), and say
so with ``random_access`` (their format too, without opening a file; a streamed format builds
its own torch dataset, :meth:`Format.streamed_dataset`). Readers open files lazily and reopen them after a fork, so each
DataLoader worker has its own handle.

A format may store a dataset in several named copies (:class:`StoredCopy`): the HDF5 adapter
declares ``hdf5_presplit``, its presplit layout under its own file-name suffix.
:func:`stored_copies` lists them all; the workflow's rules, schema and run configs derive their
format names from it.
"""

from __future__ import annotations

import importlib
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, NamedTuple, Sequence

import numpy as np

from trainset.collection import Collection
from trainset.errors import TrainsetError
from trainset.provenance import safe_name

CANONICAL_FORMAT = "netcdf"
"""The stored copy every dataset has (a dataset's ``formats`` default): splits and the other
formats are made from it."""
DEFAULT_JOBS = 1
"""``format_options.<format>.jobs`` of a parallel format when not given: one job writes it all."""

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


class Block(NamedTuple):
    """Rows of one part, as :meth:`Reader.iter_blocks` yields them."""

    part: int
    """Part number (stored order)."""
    local: np.ndarray
    """Row numbers within the part (sorted)."""
    arrays: dict[str, np.ndarray]
    """Variable -> those rows, stacked (the requested variables this part stores)."""


class Reader(ABC):
    """Reading a stored collection: whole blocks in stored order, and (map-style) any rows."""

    #: natural block of samples (a chunk, a row group, a tar member): samplers shuffle whole blocks
    block_size: int = 256
    #: whether :meth:`read` serves any rows at any time (False: stream with :meth:`iter_blocks`)
    random_access: ClassVar[bool] = True

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

    def take(self, part: int, rows: np.ndarray, variables: list[str] | None = None) -> dict[str, np.ndarray]:
        """Rows ``rows`` of part ``part`` in the order given (repeats allowed): variable -> stacked array.

        What a loader's shuffled batch needs. This default reads the sorted unique rows with
        :meth:`read` and reorders them (two copies); readers that can gather in one pass (from
        RAM, or from whole raw chunks) override it with the same result.
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        unique, inverse = np.unique(rows, return_inverse=True)
        block = self.read(part, unique, variables)
        if unique.size == rows.size and np.array_equal(unique, rows):
            return block
        return {var: a[inverse] for var, a in block.items()}

    def iter_blocks(self, indices: np.ndarray | None = None, variables: Sequence[str] | None = None,
                    rows: int | Sequence[int] | None = None) -> Iterator[Block]:
        """The samples ``indices`` (sorted, unique global indices; None: all) in stored order.

        Each :class:`Block` holds consecutive selected rows of one part. ``rows`` cuts every
        part's selected rows into blocks of that many (a list: one size per part; the last
        block of a part may be short), the same for every format, so fits and scans over the
        blocks give bit-identical results whatever the format. Without ``rows`` blocks follow
        the store (:attr:`block_size` rows here). Blocks never straddle parts.
        """
        names, parts = self._requested(variables), self.parts
        for part, local in enumerate(self.local_indices(indices)):
            size = self._block_rows(rows, part)
            wanted = None if names is None else [v for v in names if v in parts[part].variables]
            for start in range(0, local.size, size):
                chunk = local[start:start + size]
                yield Block(part, chunk, self.read(part, chunk, wanted))

    def local_indices(self, indices: np.ndarray | None) -> list[np.ndarray]:
        """Per part, the selected rows as sorted row numbers within the part."""
        firsts = self.offsets()
        if indices is None:
            return [np.arange(p.size, dtype=np.int64) for p in self.parts]
        indices = np.asarray(indices, dtype=np.int64)
        return [indices[(indices >= f) & (indices < f + p.size)] - f for f, p in zip(firsts, self.parts)]

    def _block_rows(self, rows: int | Sequence[int] | None, part: int) -> int:
        """Rows per block of part number ``part``."""
        size = self.block_size if rows is None else rows if isinstance(rows, (int, np.integer)) else rows[part]
        return max(1, int(size))

    def _requested(self, variables: Sequence[str] | None) -> list[str] | None:
        """``variables`` as a list; an error names those no part stores."""
        if variables is None:
            return None
        known = {v for p in self.parts for v in p.variables}
        unknown = sorted(set(variables) - known)
        if unknown:
            raise TrainsetError(f"no variable(s) {unknown} stored (has {sorted(known)}). Fix: request stored variables")
        return list(variables)

    def __len__(self) -> int:
        return sum(p.size for p in self.parts)

    def offsets(self) -> np.ndarray:
        """Global index of each part's first sample."""
        return np.cumsum([0, *(p.size for p in self.parts)])[:-1]


_SCRATCH = threading.local()


def gather_chunks(read_chunk: Callable[[int, np.ndarray], bool], rows: np.ndarray, which: np.ndarray,
                  touched: np.ndarray, buf: np.ndarray, out: np.ndarray) -> bool:
    """Fill ``out[i]`` with row ``rows[i]`` (chunk ``which[i]``) from whole chunks of ``len(buf)`` rows.

    ``read_chunk(c, raw)`` fills ``buf``, seen as its raw bytes ``raw``, with chunk ``c`` and says
    whether it could; the rows of each touched chunk are then gathered straight into ``out``
    (:func:`gather_rows`), so a batch costs one read and one copy per chunk. HDF5's direct chunk
    reads use it; False (``out`` partly filled) when a chunk could not be read.
    """
    chunk, raw = buf.shape[0], buf.reshape(-1).view(np.uint8)
    for c in touched.tolist():
        if not read_chunk(c, raw):
            return False
        if touched.size == 1:
            gather_rows(buf, rows - c * chunk, out)
        else:
            sel = which == c
            gather_rows(buf, rows[sel] - c * chunk, out, sel)
    return True


def gather_rows(block: np.ndarray, local: np.ndarray, out: np.ndarray, where: np.ndarray | None = None) -> None:
    """``out[where] = block[local]``: rows ``local`` (in range) of a chunk read into ``block``, to
    their places in a batch. ``where`` None: they are the whole batch, in order, gathered with
    no temporary. Shared by HDF5's direct chunk reads and Zarr's raw chunk spans."""
    if where is None:
        np.take(block, local, axis=0, out=out, mode="clip")  # in range; "raise" would buffer out
    else:
        out[where] = block[local]


def scratch_buffer(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A chunk-sized scratch array reused by this thread (contents undefined): readers that gather
    a batch from whole chunks read each chunk into it. A fresh 1 MB array per batch costs more in
    page faults (~1 ms once the allocator hands freed memory back to the system) than the read."""
    cache = getattr(_SCRATCH, "by_shape", None)
    if cache is None:
        cache = _SCRATCH.by_shape = {}
    key = (tuple(shape), np.dtype(dtype).str)
    if key not in cache:
        if len(cache) > 8:
            cache.clear()
        cache[key] = np.empty(shape, dtype=dtype)
    return cache[key]


@dataclass(frozen=True)
class StoredCopy:
    """A named stored copy of a dataset: what a dataset's ``formats:`` list and a run's ``format:`` name.

    Each format is a copy under its own name; an adapter may add variants (``hdf5_presplit``:
    HDF5 with ``layout: presplit``, in ``TS_<name>.presplit.h5``). The variant's ``options``
    are laid over the dataset's ``format_options.<format>``.
    """

    name: str
    format: str
    suffix: str
    options: dict[str, Any]
    parallel: bool
    """Written by parallel jobs plus a gather (its format's :attr:`Format.parallel`: every format
    but NetCDF, the canonical copy)."""
    folder: bool
    """Stored as a folder (Zarr, WebDataset) rather than one file."""

    @property
    def adapter(self) -> Format:
        return get_format(self.format)

    def writer_options(self, chosen: dict[str, Any] | None) -> dict[str, Any]:
        """The dataset's ``format_options.<format>`` (``chosen``) with the options this copy fixes
        laid over them: the one place a variant's options are merged (the rules pass only the
        user's)."""
        return {**(chosen or {}), **self.options}


class Format(ABC):
    """A file format: writer (whole, or by parallel jobs and a gather), reader factory, validator."""

    name: ClassVar[str]
    suffix: ClassVar[str]  # e.g. ".nc", ".h5", ".zarr", "-wds"
    parallel: ClassVar[bool] = True
    """Whether :meth:`write_job` and :meth:`gather` can write this format."""
    folder: ClassVar[bool] = False
    """Whether a stored dataset is a folder (else one file)."""
    random_access: ClassVar[bool] = True
    """Its readers' :attr:`Reader.random_access` (adapters copy their reader class's flag), known
    without opening a file: False means streamed, opened as :meth:`streamed_dataset`."""
    packing_option: ClassVar[str | None] = None
    """The writer option setting a streamed store's block (samples packed together), which the
    I/O tuner varies; None: not tunable."""
    variants: ClassVar[dict[str, tuple[dict[str, Any], str]]] = {}
    """Further named copies: copy name -> (writer options it fixes, file-name suffix)."""
    options: ClassVar[dict[str, Any]] = {}
    """Writer options (a dataset's ``format_options.<name>``) and their defaults: declared once,
    here; the schema's copy is tested against them. Parallel formats also take ``jobs``."""
    choices: ClassVar[dict[str, tuple]] = {}
    """Allowed values of the options that have a fixed set of them."""

    def path_for(self, folder: str | os.PathLike, name: str) -> Path:
        """Where the workflow writes dataset ``name``: ``folder/TS_{name}{suffix}`` (a name that
        would leave ``folder`` or nest folders is refused: :func:`trainset.provenance.safe_name`)."""
        return Path(folder) / f"TS_{safe_name(name, 'dataset name')}{self.suffix}"

    @abstractmethod
    def write(self, collection: Collection, path: str | os.PathLike, splits: Splits | None = None,
              **options: Any) -> None:
        """Write atomically: a temporary path renamed into place only when complete."""

    def write_job(self, collection: Collection, path: str | os.PathLike, job: int, jobs: int,
                  splits: Splits | None = None, **options: Any) -> None:
        """Job ``job`` of ``jobs``: its share of the dataset in folder ``path``, for :meth:`gather`.

        Every job plans the same layout from the collection's metadata, so jobs need no
        coordination. The job number is checked here, once for every adapter; the adapter
        writes its share in :meth:`_write_job`.
        """
        if not self.parallel:
            raise self._no_jobs()
        if not 0 <= job < jobs:
            raise TrainsetError(f"{self.name}: job {job} is not in 0..{jobs - 1}. "
                                "Fix: number the jobs 0..jobs-1 (format_options.<format>.jobs)")
        self._write_job(collection, path, job, jobs, splits, **options)

    def _write_job(self, collection: Collection, path: str | os.PathLike, job: int, jobs: int,
                   splits: Splits | None, **options: Any) -> None:
        """The adapter's part of :meth:`write_job` (``0 <= job < jobs`` holds)."""
        raise self._no_jobs()

    def gather(self, collection: Collection, job_folders: list[str | os.PathLike], path: str | os.PathLike,
               splits: Splits | None = None, **options: Any) -> None:
        """One dataset at ``path`` from the jobs' folders, byte-identical to :meth:`write`'s."""
        raise self._no_jobs()

    def _no_jobs(self) -> TrainsetError:
        parallel = sorted(n for n, f in FORMATS.items() if f.parallel)
        return TrainsetError(f"{self.name}: not written in parallel jobs (it is written whole). "
                             f"Fix: use write(), or one of {parallel}")

    @abstractmethod
    def reader(self, path: str | os.PathLike) -> Reader:
        """A :class:`Reader` of the stored dataset (opened lazily)."""

    remote_refusal: ClassVar[str] = "its reader opens local files only"
    """Why :meth:`remote_reader` refuses, for formats that do not read from object stores."""

    def remote_reader(self, url: str, fs: Any, path: str) -> Reader:
        """A :class:`Reader` of the dataset at fsspec URL ``url`` (``path`` inside filesystem ``fs``),
        with the same integrity checks as :meth:`reader`; refused where they cannot hold
        (:attr:`remote_refusal`, see :mod:`trainset.io.remote`)."""
        raise TrainsetError(f"{url}: {self.name} datasets are not read from object storage: {self.remote_refusal}. "
                            "Fix: open the dataset's hdf5, zarr or webdataset copy there, or copy it to a local folder first "
                            "(fsspec.open_local('simplecache::' + url), aws s3 cp --recursive)")

    def streamed_dataset(self, reader: Reader, split: str | None, variables: Sequence[str] | None,
                         **options: Any) -> Any:
        """The iterable torch dataset over a streamed ``reader`` (``random_access`` False), which
        shares out the stored blocks itself; ``options`` are its own (shuffle, seed, batch_size...)."""
        raise TrainsetError(f"{self.name}: its readers serve any rows (random_access), so it is opened "
                            "map-style. Fix: open it with trainset.open_dataset")

    def kept_options(self, reader: Reader) -> dict[str, Any]:
        """Writer options that reproduce the layout of the dataset ``reader`` reads, apart from
        :attr:`packing_option` (what the I/O tuner keeps when it rewrites a copy)."""
        return {}

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


ADAPTERS: dict[str, str] = {"hdf5": "hdf5", "netcdf": "netcdf", "webdataset": "wds", "zarr": "zarr_"}
"""Built-in format name -> its adapter's module in :mod:`trainset.io`, imported the first time the
format is asked for: a job that validates an HDF5 copy imports h5py, not zarr (every rule
job is a fresh process, and importing all four adapters cost each job ~0.5 s). The order is
the order :func:`guess_format` tries them in. tests/unit/test_lazy_imports.py checks that each
module registers its name and that no built-in adapter is missing."""
VARIANTS: dict[str, str] = {"hdf5_presplit": "hdf5"}
"""Built-in variant copy name -> the format declaring it (:attr:`Format.variants`), so
:func:`get_copy` imports one adapter (checked by the same test)."""


class Registry(Mapping):
    """Format adapters by name (:data:`FORMATS`). Looking one up imports only its adapter module
    (:data:`ADAPTERS`). Iterating imports each built-in adapter as it reaches it, in
    :data:`ADAPTERS` order whatever order they were first used in, then yields the others in
    registration order: a search that stops early (:func:`guess_format` on a NetCDF file)
    imports no adapter after the one it found."""

    def __init__(self) -> None:
        self._known: dict[str, Format] = {}

    def add(self, fmt: Format) -> None:
        """Register ``fmt`` under its name, replacing an earlier adapter of that name. A built-in
        adapter counts as registered first, as when importing :mod:`trainset.io` registered all
        four: its module, imported after a user's adapter took the name, leaves the user's."""
        if fmt.name in self._known and _built_in(fmt):
            return
        self._known[fmt.name] = fmt

    def __getitem__(self, name: str) -> Format:
        if name not in self._known and name in ADAPTERS:
            self._load(name)
        return self._known[name]

    def __iter__(self) -> Iterator[str]:
        for name in ADAPTERS:
            if name not in self._known:
                self._load(name)
            yield name
        yield from [name for name in list(self._known) if name not in ADAPTERS]

    def names(self) -> list[str]:
        """Every format name, built in (:data:`ADAPTERS` order) or registered, importing no
        adapter: what an error lists, so a broken optional adapter cannot replace the message."""
        return [*ADAPTERS, *(name for name in self._known if name not in ADAPTERS)]

    def loaded(self) -> dict[str, Format]:
        """The adapters registered so far, by name (importing none)."""
        return dict(self._known)

    def _load(self, name: str) -> None:
        """Import the built-in adapter ``name`` (its module registers it; a second import is free)."""
        importlib.import_module(f"trainset.io.{ADAPTERS[name]}")
        if name not in self._known:
            raise TrainsetError(f"trainset.io.{ADAPTERS[name]} did not register format {name!r}. "
                                "Fix: make ADAPTERS in trainset/io/base.py name the module that registers it")

    def __len__(self) -> int:
        return len(set(ADAPTERS) | set(self._known))

    def __repr__(self) -> str:
        return f"Registry({sorted(self._known)} loaded of {sorted(set(ADAPTERS) | set(self._known))})"


FORMATS = Registry()


def _built_in(fmt: Format) -> bool:
    """Whether ``fmt`` is the built-in adapter of its name (defined in its :data:`ADAPTERS` module)."""
    module = ADAPTERS.get(fmt.name)
    return module is not None and type(fmt).__module__.split(".")[:3] == ["trainset", "io", module]


def register(fmt: Format) -> Format:
    """Add a format adapter to :data:`FORMATS` (each adapter module calls this last)."""
    FORMATS.add(fmt)
    return fmt


def get_format(name: str) -> Format:
    """The adapter called ``name`` (importing only its module); a clear error lists the known ones."""
    fmt = FORMATS.get(name)
    if fmt is None:
        raise TrainsetError(f"unknown dataset format {name!r}. Fix: use one of {sorted(FORMATS.names())}")
    return fmt


def stored_copies() -> dict[str, StoredCopy]:
    """Every stored copy by name: each format (sorted by name), then the variants adapters declare."""
    formats = sorted(FORMATS.items())
    own = [_copies_of(f)[f.name] for _, f in formats]
    extra = [copy for _, f in formats for name, copy in sorted(_copies_of(f).items()) if name != f.name]
    return {copy.name: copy for copy in [*own, *extra]}


def _copies_of(fmt: Format) -> dict[str, StoredCopy]:
    """The copies one adapter stores: itself, then its variants."""
    own = StoredCopy(fmt.name, fmt.name, fmt.suffix, {}, fmt.parallel, fmt.folder)
    return {fmt.name: own, **{name: StoredCopy(name, fmt.name, suffix, dict(options), fmt.parallel, fmt.folder)
                              for name, (options, suffix) in fmt.variants.items()}}


def get_copy(name: str) -> StoredCopy:
    """The stored copy called ``name`` (a format or a variant), importing only its adapter when it
    is built in; a clear error lists the known ones."""
    fmt = FORMATS.get(VARIANTS.get(name, name))
    copy = None if fmt is None else _copies_of(fmt).get(name)
    if copy is not None:
        return copy
    for fmt in FORMATS.loaded().values():  # a variant of a user's adapter (built-in ones are in VARIANTS)
        if name in fmt.variants:
            return _copies_of(fmt)[name]
    known = [*sorted(FORMATS.names()), *VARIANTS,
             *sorted(v for f in FORMATS.loaded().values() for v in f.variants if v not in VARIANTS)]
    raise TrainsetError(f"unknown dataset format {name!r}. Fix: use one of {known}")


def guess_format(path: str | os.PathLike) -> Format:
    """The adapter that recognises ``path``: the first in :data:`ADAPTERS` order (importing those
    it tries), then any other registered."""
    for fmt in FORMATS.values():
        if fmt.guess_can_open(path):
            return fmt
    raise TrainsetError(f"{path}: not a dataset trainset can open (known formats: {sorted(FORMATS.names())}). "
                        "Fix: pass the .nc/.h5 file, the .zarr folder or the -wds folder")
