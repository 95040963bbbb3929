"""``trainset.open_dataset``: any stored dataset as a torch dataset, whatever its format."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from trainset.errors import TrainsetError
from trainset.io.base import Format, Reader, Splits
from trainset.splits import check_splits, read_splits

SOURCE_ATTR = "source_sha256"
"""The dataset attribute of a stored copy naming the dataset it was converted from (its identity)."""


ALL = "all"
"""``split="all"``: every split, as a dict of datasets."""


def open_dataset(path: str | os.PathLike, split: str | None = None, variables: Sequence[str] | None = None,
                 format: str | None = None, worlds: Sequence[str] | None = None, provenance: bool = False,
                 storage_options: dict[str, Any] | None = None, **options: Any) -> Any:
    """Open a NetCDF, HDF5, Zarr or WebDataset dataset written by trainset.

    Parameters
    ----------
    path : path
        ``TS_<name>.nc``, ``TS_<name>.h5``, the ``TS_<name>.zarr`` folder or the
        ``TS_<name>-wds`` folder.
    split : str, optional
        A split name; without one, every sample in stored order; ``"all"``: a dict of every
        split's dataset, by split name (as ``datasets.load_dataset`` returns).
    variables : list of str, optional
        Only these variables (WebDataset then skips the other members without decoding them).
    format : str, optional
        Force a format instead of recognising it.
    worlds : list of str, optional
        Only these parts (macro worlds; any random-access format that stores parts), read in
        stored order; a name the dataset does not store is an error listing the stored ones.
        Samples keep their store ``index`` and ``part``; splits are the stored ones restricted
        to these worlds. Streamed formats (WebDataset) refuse it.
    provenance : bool
        Flu mixes: samples (and batches) also carry ``origin`` (text) and ``scale`` (the
        ``to_scale`` factor, float64), so ``frames / scale`` undoes the rescaling (see
        :mod:`trainset.loaders.provenance`). Off by default: samples stay numbers only. A dataset
        without those per-sample coordinates is refused.
    storage_options : dict, optional
        For an fsspec URL (``s3://bucket/key``): the filesystem's options (``s3fs``: ``key``,
        ``secret``, ``endpoint_url``, ``client_kwargs``...). See :mod:`trainset.io.remote` for
        what each format supports there.
    options
        For WebDataset: ``shuffle``, ``seed``, ``shuffle_buffer``.

    Returns
    -------
    MappedDataset or WdsDataset (or a dict of them, by split, for ``split="all"``)
        Map-style (``len``, indexing, whole-batch fetches) for readers with random access
        (NetCDF, HDF5, Zarr); an iterable dataset for streamed ones (WebDataset). All yield the
        same sample dicts in the same order.
    """
    from trainset.io.remote import open_reader

    fmt, reader, path = open_reader(path, format, storage_options)
    if split == ALL:
        names = list(dataset_splits(path, reader.splits, len(reader)))
        if ALL in names:
            raise TrainsetError(f"{path}: a stored split is named {ALL!r}, so split={ALL!r} is ambiguous. "
                                "Fix: open the splits one by one (split=name)")
        return {name: _labelled(fmt, reader, path, name, variables, worlds, provenance, options) for name in names}
    return _labelled(fmt, reader, path, split, variables, worlds, provenance, options)


def _labelled(fmt: Format, reader: Reader, path: Any, split: str | None, variables: Sequence[str] | None,
              worlds: Sequence[str] | None, provenance: bool, options: dict[str, Any]) -> Any:
    """One split's dataset, labelled with its format, path and split (its repr), provenance added."""
    if provenance and isinstance(path, str) and "://" in path:
        raise TrainsetError(f"{path}: provenance=True reads the stored coordinates from a local dataset. "
                            "Fix: open a local copy, or drop provenance=True")
    dataset = dataset_of(fmt, reader, path, split, variables, worlds=worlds, **options)
    if provenance:
        from trainset.loaders.provenance import with_provenance

        dataset = with_provenance(dataset, fmt, path)
    return dataset


def dataset_of(fmt: Format, source: Reader, path: str | os.PathLike, split: str | None = None,
               variables: Sequence[str] | None = None, worlds: Sequence[str] | None = None, **options: Any) -> Any:
    """:func:`open_dataset` over a reader already opened (``fmt.reader(path)``), so a caller that
    looked at the reader first (its parts) does not open the file again."""
    if not fmt.random_access:  # streamed: the dataset shares out the stored blocks itself
        if worlds is not None:
            raise TrainsetError(f"{path}: worlds= needs a random-access copy ({fmt.name} is streamed). "
                                "Fix: open the dataset's zarr, netcdf or hdf5 copy")
        return fmt.streamed_dataset(source, split, variables, **options)
    from trainset.io.subset import PartSubset
    from trainset.loaders.mapped import MappedDataset

    indices = None
    if split is not None:  # splits are checked against the whole store, then narrowed
        splits = dataset_splits(path, source.splits, len(source))
        indices = splits.get(split)
        if indices is None:
            raise TrainsetError(f"{path}: no split {split!r}. Fix: use one of {sorted(splits)}")
    if worlds is not None:
        source = PartSubset(source, worlds, path)
        indices = None if indices is None else source.keep(indices)
    return MappedDataset(source, indices, variables, format=fmt.name, path=path, split=split)


def dataset_splits(path: str | os.PathLike, stored: Splits | None, n: int | None = None) -> Splits:
    """The splits stored in a dataset, else those of a ``splits.json`` beside it, both through
    :func:`~trainset.splits.check_splits` against the dataset's ``n`` samples (when given): a
    split that would leak samples is refused here, where the data is read."""
    if stored:
        return check_splits(stored, n, f"{path}: stored splits")
    if isinstance(path, str) and "://" in path:
        raise TrainsetError(f"{path}: stores no splits (a splits.json beside it is not looked for in object "
                            "storage). Fix: write the dataset with its splits, or pass split=None")
    beside = Path(path).parent / "splits.json"
    if beside.exists():
        return read_splits(beside, n=n)
    raise TrainsetError(f"{path}: has no splits and there is no splits.json beside it. "
                        "Fix: run the make_splits rule or pass split=None")


def dataset_identity(path: str | os.PathLike, attrs: dict[str, Any], digest: str | None = None) -> str:
    """The identity of the dataset stored at ``path``: the sha256 of the canonical NetCDF it was
    converted from (attribute :data:`SOURCE_ATTR`, written into every stored copy), else of
    the file (or folder) itself. A NetCDF written from frames is its own source, so its
    identity is its file hash, the same bytes for the same inputs. ``digest``: that file hash,
    when the caller has it already (hashing a large file twice is slow)."""
    from trainset.provenance import file_sha256

    recorded = attrs.get(SOURCE_ATTR)
    return str(recorded) if recorded else (digest or file_sha256(path))
