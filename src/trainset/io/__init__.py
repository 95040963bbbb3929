"""File formats: one small adapter module per format, registered in ``FORMATS`` on import."""

from trainset.io import hdf5, netcdf, wds, zarr_  # noqa: F401  (each registers itself)
from trainset.io.base import FORMATS, Format, Reader, get_format, guess_format

__all__ = ["FORMATS", "Format", "Reader", "get_format", "guess_format"]
