"""Synthetic demo inputs, so the workflow and its tests run without any real data."""

from trainset.demo.flu import make_flu_table

__all__ = ["make_flu_table"]
