"""File formats: one adapter (module or package) per format, registered in ``FORMATS`` on import.

Importing this package imports no adapter: ``FORMATS[name]`` / ``get_format(name)`` import the one
asked for (``trainset.io.base.ADAPTERS``), so a rule script pays only for the format it uses.
"""

from trainset.io.base import (
    ADAPTERS,
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

__all__ = ["ADAPTERS", "FORMATS", "Block", "Format", "Reader", "StoredCopy", "get_copy", "get_format", "guess_format",
           "stored_copies"]
