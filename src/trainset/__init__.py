"""trainset: raw long tables -> mixed frames -> datasets -> scalers -> models -> reports.

The library behind the trainset Snakemake workflow. Every rule script in ``src/scripts`` is a
thin wrapper around functions of this package, so each stage can also be called from Python.
"""

from trainset._version import __version__
from trainset.errors import TrainsetError

__all__ = ["TrainsetError", "__version__", "open_dataset"]


def __getattr__(name: str):
    """Import heavy entry points (torch) only when they are used."""
    if name == "open_dataset":
        from trainset.open import open_dataset

        return open_dataset
    raise AttributeError(f"module 'trainset' has no attribute {name!r}")
