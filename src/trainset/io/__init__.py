"""File formats: one adapter (module or package) per format, registered in ``FORMATS`` on import."""

from trainset.io import hdf5, netcdf, wds, zarr_  # noqa: F401  (each registers itself)
from trainset.io.base import (
    FORMATS,
    Block,
    Format,
    Reader,
    StoredCopy,
    get_copy,
    get_format,
    guess_format,
    stored_copies,
)

__all__ = ["FORMATS", "Block", "Format", "Reader", "StoredCopy", "get_copy", "get_format", "guess_format",
           "stored_copies"]
