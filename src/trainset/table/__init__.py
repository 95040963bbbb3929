"""The combined long table: reading, validating and writing it (the first stage)."""

from trainset.table.validate import KEY_COLUMNS, TABLE_COLUMNS, validate_table

__all__ = ["KEY_COLUMNS", "TABLE_COLUMNS", "validate_table"]
