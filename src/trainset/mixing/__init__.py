"""Mixing: the validated long table -> a set of dense, provenance-tracked frames.

A *group* is one (datasetH1, datasetH2, fluseason, sample) curve set of the table; a *frame* is
one copy of a group laid on the complete (season_week x place) grid, gap-filled, with missing
places filled and optionally rescaled. Modules: ``cube`` (table -> dense group array), ``gaps``
(interior/exterior week gaps), ``plan`` (which groups, how many copies), ``fill`` (missing
places), ``scaling`` (target peaks), ``build`` (all of it) and ``store`` (Parquet in and out).
Per-frame generators come from :mod:`trainset.rng`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Frames", "build_frames"]


def __getattr__(name: str) -> Any:
    """``Frames`` and ``build_frames`` on first use: the workflow imports ``trainset.mixing.config``
    (the start-up check of each mix) whenever Snakemake parses it, and ``build`` imports pandas."""
    if name in __all__:
        from trainset.mixing import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
