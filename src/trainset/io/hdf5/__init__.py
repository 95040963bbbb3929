"""HDF5 adapter (format ``hdf5``, suffix ``.h5``) in the layouts of the sequence-task guide (seed 001).

The guide's users open these files with plain h5py (``f["data"]``, ``f["train/labels"]``), so
trainset keeps those keys and adds only what the old files lacked: the global ``index`` of
pre-split rows (so sample order survives), splits, coordinates and attributes, and the metadata
that lets :meth:`HDF5Format.check` tell a damaged file from a sound one.

On disk
-------
Root attributes: ``trainset_format_version`` (2; 1, without dimension scales, still reads), ``trainset_layout`` (``single``/``presplit``),
``trainset_parts`` (JSON list of part names, in order), ``trainset_attrs`` (JSON collection
attrs) and, with splits, ``trainset_split_names`` (JSON list, in order).

``layout="single"`` (default), one part::

    /data, /labels, ...     every data variable, samples first, chunks (chunk, *per-sample shape)
    /coords/<name>          coordinates; text as variable-length UTF-8, datetimes as int64
    /splits/<name>          int64 global indices of each split (when splits are given)

``layout="single"``, several parts (worlds): ``/parts/<name>/<variable>``,
``/parts/<name>/coords/<coord>`` and ``/splits/<name>``.

``layout="presplit"`` (one part; the splits must cover every sample): ``/<split>/<variable>``
(that split's rows in global order), ``/<split>/index`` (int64 global indices of those rows) and
``/<split>/coords/<coord>`` (per-sample coordinates sliced, the others whole).

A group holding rows has attributes ``trainset_size`` and ``trainset_variables`` /
``trainset_coords`` (JSON lists of name, dims, dtype, per-sample shape, attrs; coordinates also
``per_sample``, repeated as an attribute of each coordinate dataset); a part's group (the root
for one part) has ``trainset_part_attrs``. Each such group also holds netCDF-4 dimension scales,
one empty dataset per dimension name (``/sample``, ``/time``...) attached to the axes of its
variables, coordinates and ``index`` (:mod:`trainset.io.hdf5.scales`), so
``xr.open_dataset(path, engine="h5netcdf")`` shows the dimension names.

Options of :meth:`HDF5Format.write`: ``layout``, ``chunk`` (samples per chunk, default 256; chunks
are ``(chunk, *per-sample shape)``, so a 256-sample block is one chunk) and ``compression`` (None,
``"gzip"`` level 4 or ``"lzf"``, both with the shuffle filter). Compression saves little on float
noise (gzip 84 %, lzf 92 % of the raw size) and cuts block reads ~5x, so it is off by default.

Determinism: no timestamps (``track_times=False`` on the file, every group and dataset), a fixed
creation order and key-sorted JSON, so equal input gives byte-identical files.

Reading uses h5py directly (xarray costs 0.2-1 ms a sample); :func:`read_rows` reads each touched
chunk once per call. Files are opened with HDF5's default locking; on file systems without locks
(some NFS/Lustre mounts) set ``HDF5_USE_FILE_LOCKING=FALSE``.

Files written by plain h5py in the guide's layouts are read too: root datasets become one part
(dims ``sample, <name>_dim1, ...``); split groups either each hold an ``index`` or none does, and
then row order is the index: the rows of ``train``, ``val``, ``test`` (then other groups by name)
numbered one after another. Such files are ``foreign`` (:attr:`HDF5Reader.foreign`): training cuts
a single-layout one without splits (:mod:`trainset.train.autosplit`).
"""

from __future__ import annotations

from trainset.io.base import register
from trainset.io.hdf5.format import HDF5Format

__all__ = ["HDF5Format"]

register(HDF5Format())
