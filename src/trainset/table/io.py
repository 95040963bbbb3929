"""Reading raw tables (CSV or Parquet) and writing the validated table as Parquet.

String columns are written dictionary-encoded: family and place names repeat millions of times,
so this keeps both the file and the reader's memory small.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from trainset.errors import TrainsetError
from trainset.provenance import atomic_path

PROVENANCE_KEY = b"trainset.provenance"
_TEXT = {"datasetH1": str, "datasetH2": str, "location_code": str}


def read_raw_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a user's CSV or Parquet table; location codes stay text (leading zeros kept)."""
    path = Path(path)
    if not path.exists():
        raise TrainsetError(f"{path}: table file not found. Fix: correct tables.<name>.path in the config")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.read_table(path).to_pandas()
        if suffix in {".csv", ".gz", ".tsv"}:
            sep = "\t" if ".tsv" in path.suffixes else ","
            return pd.read_csv(path, sep=sep, dtype=_TEXT)
    except (pa.ArrowInvalid, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise TrainsetError(f"{path}: cannot be read as {suffix[1:]}: {error}") from error
    raise TrainsetError(f"{path}: unknown table format '{suffix}'. Fix: use .csv, .tsv or .parquet")


def write_table(table: pd.DataFrame, path: str | os.PathLike, provenance: dict) -> None:
    """Write the validated table atomically, provenance in the Parquet schema metadata."""
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.cast(_dictionary_strings(arrow.schema))
    metadata = dict(arrow.schema.metadata or {})
    metadata[PROVENANCE_KEY] = json.dumps(provenance, sort_keys=True, default=str).encode()
    arrow = arrow.replace_schema_metadata(metadata)
    with atomic_path(path) as tmp:
        pq.write_table(arrow, tmp, compression="zstd")


def read_table(path: str | os.PathLike, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a validated table written by :func:`write_table` (strings as categoricals).

    Columns are read and converted one at a time, so peak memory stays near the size of the
    resulting frame instead of twice it (Arrow buffers plus pandas copies).
    """
    parquet = pq.ParquetFile(path)
    columns = columns or parquet.schema_arrow.names
    return pd.DataFrame({c: parquet.read(columns=[c]).column(0).to_pandas() for c in columns}, copy=False)


def read_provenance(path: str | os.PathLike) -> dict:
    """The provenance record stored in a Parquet file's metadata (empty if none)."""
    metadata = pq.read_schema(path).metadata or {}
    raw = metadata.get(PROVENANCE_KEY)
    return json.loads(raw) if raw else {}


def _dictionary_strings(schema: pa.Schema) -> pa.Schema:
    fields = [
        pa.field(f.name, pa.dictionary(pa.int32(), pa.string()), metadata=f.metadata)
        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
        else f
        for f in schema
    ]
    return pa.schema(fields, metadata=schema.metadata)
