"""Seeded random generators that depend only on names, never on order or process.

The old code had no seed and changed with PYTHONHASHSEED. Each frame here gets its own
generator derived from (seed, mix, frame key, copy) through a cryptographic digest of the names,
so a frame's draws are the same whatever the table's row order, the other frames, or the number
of cores.
"""

from __future__ import annotations

import hashlib

import numpy as np


def named_rng(seed: int, *names: object) -> np.random.Generator:
    """A generator seeded by ``seed`` and a stable digest of ``names``."""
    text = "\x1f".join(str(name) for name in names).encode()
    words = np.frombuffer(hashlib.blake2b(text, digest_size=16).digest(), dtype="<u4")
    return np.random.default_rng(np.random.SeedSequence([int(seed), *words.tolist()]))
