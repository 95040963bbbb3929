"""Seeded random generators that depend only on names, never on order or process.

The old code had no seed and changed with PYTHONHASHSEED. Each unit of work gets its own
generator derived from the seed and its names through a cryptographic digest: a flu frame from
(seed, mix, frame key, copy), a macro draw from (seed, world, draw), a search trial from (seed,
search, trial, key). So its draws are the same whatever the table's row order, the other units,
or the number of cores. Used by the mixing, domains and train packages, hence its place here.
"""

from __future__ import annotations

import hashlib

import numpy as np

DEFAULT_SEED = 42
"""The workflow's master ``seed`` when a config gives none (the schema's copy is tested against it)."""
MAX_SEED = 2**63 - 1
"""The largest seed: NetCDF/HDF5 attributes and Parquet provenance store seeds as signed 64-bit
integers (numpy's generators would take more; torch takes at most 2**64-1). The schema's
``seed`` maximum is this, tested in tests/hostile/test_names_and_tables.py."""


def named_rng(seed: int, *names: object) -> np.random.Generator:
    """A generator seeded by ``seed`` and a stable digest of ``names``."""
    text = "\x1f".join(str(name) for name in names).encode()
    words = np.frombuffer(hashlib.blake2b(text, digest_size=16).digest(), dtype="<u4")
    return np.random.default_rng(np.random.SeedSequence([int(seed), *words.tolist()]))
