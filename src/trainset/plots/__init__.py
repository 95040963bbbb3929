"""Visual checks of trainset arrays, drawn without pyplot so no global figure state leaks."""

from __future__ import annotations

from typing import Any

__all__ = ["plot_us_grid"]


def __getattr__(name: str) -> Any:
    """``plot_us_grid`` on first use: importing matplotlib takes ~0.3 s, and the workflow imports
    ``trainset.plots.past`` (the overlay's config check) each time Snakemake parses it."""
    if name == "plot_us_grid":
        from trainset.plots.us_grid import plot_us_grid

        return plot_us_grid
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
