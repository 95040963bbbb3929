"""Mixing: the validated long table -> a set of dense, provenance-tracked frames.

A *group* is one (datasetH1, datasetH2, fluseason, sample) curve set of the table; a *frame* is
one copy of a group laid on the complete (season_week x place) grid, gap-filled, with missing
places filled and optionally rescaled. Modules: ``cube`` (table -> dense group array), ``gaps``
(interior/exterior week gaps), ``plan`` (which groups, how many copies), ``fill`` (missing
places), ``scaling`` (target peaks), ``build`` (all of it) and ``store`` (Parquet in and out).
Per-frame generators come from :mod:`trainset.rng`.
"""

from trainset.mixing.build import Frames, build_frames

__all__ = ["Frames", "build_frames"]
