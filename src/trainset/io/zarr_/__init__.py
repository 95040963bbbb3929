"""Zarr v3 adapter (seed 003): one group per world, chunked along samples, with a manifest.

Layout of ``TS_<name>.zarr/``::

    zarr.json                    root group; its attributes are the dataset attrs plus the
                                 manifest under ``trainset``; consolidated metadata of the
                                 whole store (``xr.open_zarr`` opens it without warnings)
    manifest.json                a copy of that manifest (the reader refuses differing copies):
                                 format version, date, code version, chunk, config hash, seed,
                                 split names and, per world in order: sample count, offset,
                                 variables (dims, per-sample shape, dtype), coords, parameter
                                 names/bounds/priors, shock and variable names, seeds
    <world>/zarr.json            world group; its attributes are the part attrs
    <world>/<variable>/          e.g. theta [n, P], irfs [n, S, H+1, V]: chunks of ``chunk``
                                 samples (per-sample dims whole), zstd level 3 with checksum
    <world>/coords/<coord>/      per-sample and dimension coordinates, same chunking
    <world>/splits.json          split name -> LOCAL row indices of that world (if splits given)

The manifest, not the zarr group listing, is the source of truth for part and variable order:
zarr lists members alphabetically and warns about the JSON files it does not own.

Choices. Strings are stored with zarr's variable-length UTF-8 ``string`` data type, and the
original numpy dtype (``<U6``, ``object``) is kept in the array attribute ``_trainset`` so the
reader restores it exactly: the fixed-length UTF-32 type would round-trip without help but
zarr 3.1 flags it ``UnstableSpecificationWarning`` (no v3 spec yet), and strings as JSON
attributes would not be chunked. Every chunk is written even when it equals the fill value
(``write_empty_chunks``), so a missing chunk file is always an error, never silent zeros;
zstd checksums make a corrupted chunk fail loudly. Nothing in the metadata is a timestamp and
the manifest date is the day only (``SOURCE_DATE_EPOCH`` honoured), so two writes of the same
collection are byte-identical file by file.

Reading: :class:`ZarrReader` groups the requested rows by chunk and reads each touched chunk
once with one slice (zarr costs ~1 ms per call, so per-sample reads are never done). Every
``take`` (rows in any order, as a loader's shuffled batches ask) of an uncompressed local store
skips zarr-python: each touched chunk file is read once, its rows straight into their places in
the batch (:mod:`.raw`).
"""

from __future__ import annotations

from trainset.io.base import register
from trainset.io.zarr_.format import ZarrFormat
from trainset.io.zarr_.read import ZarrReader

__all__ = ["ZarrFormat", "ZarrReader"]

register(ZarrFormat())
