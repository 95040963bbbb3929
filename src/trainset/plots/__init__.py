"""Visual checks of trainset arrays, drawn without pyplot so no global figure state leaks."""

from trainset.plots.us_grid import plot_us_grid

__all__ = ["plot_us_grid"]
