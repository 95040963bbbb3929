"""Reading raw tables (CSV or Parquet) and writing the validated table as Parquet.

CSV dialects: the delimiter is sniffed among ``,`` ``;`` and tab from the first 64 KiB
(``.tsv`` files are tab-separated) unless the table config gives ``sep``; sniffing that finds
nothing falls back to ``,``. Family, dataset and place columns are always read as text, so
location codes keep their leading zeros. ``sample`` is read as text and becomes integers only
when every id is written as a plain integer (``0``, ``12``): the conversion then loses nothing,
while ids such as ``10.0`` or ``1.0_NA_101`` stay exactly as written (they are labels).

String columns are written dictionary-encoded: family and place names repeat millions of times,
so this keeps both the file and the reader's memory small.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from trainset.errors import TrainsetError
from trainset.provenance import atomic_path, jsonable
from trainset.versions import PARQUET_KEY, check_version, current

logger = logging.getLogger(__name__)

PROVENANCE_KEY = b"trainset.provenance"
SEPARATORS = (",", ";", "\t", "|")
"""Delimiters a table config may give as ``sep``."""

_TEXT = ("datasetH1", "datasetH2", "location_code", "sample")
_SNIFF_BYTES = 64 * 1024
_SNIFFED = ",;\t"
_GZIP_MAGIC = b"\x1f\x8b"
_PLAIN_INTEGER = r"0|-?[1-9][0-9]*"


def read_raw_table(
    path: str | os.PathLike,
    sep: str | None = None,
    columns: Mapping[str, str] | None = None,
    config_key: str = "tables.<name>",
) -> pd.DataFrame:
    """Read a user's CSV, TSV or Parquet table without changing what the file says.

    Parameters
    ----------
    path : path
        ``.csv``, ``.tsv`` (optionally ``.gz``-compressed) or ``.parquet``.
    sep : str, optional
        CSV delimiter; default: sniffed (tab for ``.tsv``).
    columns : mapping, optional
        The table's rename map (file name -> trainset name), so the file's own names of the
        text columns are the ones read as text.
    config_key : str
        ``tables.<name>`` of this table, for the fixes in messages.
    """
    path = Path(path)
    if not path.exists():
        raise TrainsetError(f"{path}: table file not found. Fix: correct {config_key}.path in the config")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            if sep is not None:
                raise TrainsetError(f"{path}: {config_key}.sep is set but the file is Parquet, which has no "
                                    f"delimiter. Fix: remove {config_key}.sep")
            _refuse_duplicates(path, pq.read_schema(path).names)
            return pq.read_table(path).to_pandas()
        if suffix in {".csv", ".gz", ".tsv"}:
            return _read_csv(path, sep, columns or {}, config_key)
    except (pa.ArrowInvalid, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
            OSError) as error:  # fmt: skip
        raise TrainsetError(f"{path}: cannot be read as {suffix[1:]}: {error}") from error
    raise TrainsetError(f"{path}: unknown table format '{suffix}'. Fix: use .csv, .tsv, .csv.gz or .parquet")


def _read_csv(path: Path, sep: str | None, columns: Mapping[str, str], config_key: str) -> pd.DataFrame:
    """Read a (possibly gzipped) delimited file with the text columns as text."""
    compressed = _check_compression(path)
    if sep is None:
        sep = _sniff(path, compressed)
    elif sep not in SEPARATORS:
        raise TrainsetError(f"{path}: {config_key}.sep is {sep!r}. Fix: use one of {list(SEPARATORS)}")
    _refuse_duplicates(path, _header(path, sep, compressed))
    file_names = {trainset: file for file, trainset in columns.items()}
    text = {file_names.get(c, c): str for c in _TEXT} | dict.fromkeys(_TEXT, str)
    table = pd.read_csv(path, sep=sep, dtype=text, compression="gzip" if compressed else None)
    sample = file_names.get("sample", "sample")
    if sample in table.columns:
        table[sample] = _integer_ids(table[sample])
    return table


def _header(path: Path, sep: str, compressed: bool) -> list[str]:
    """The column names of a CSV's first line, as written (pandas would rename duplicates)."""
    with (gzip.open(path, "rt", encoding="utf-8-sig", errors="replace", newline="") if compressed
          else open(path, encoding="utf-8-sig", errors="replace", newline="")) as handle:
        try:
            return next(csv.reader(handle, delimiter=sep), [])
        except csv.Error:  # left to pandas, whose message names the problem
            return []


def _refuse_duplicates(path: Path, names: list[str]) -> None:
    """A column named twice is refused: pandas would read the second as ``value.1`` and ignore it."""
    counts = Counter(names)
    twice = {name: n for name, n in counts.items() if n > 1}
    if twice:
        shown = ", ".join(f"column {name!r} {n} times" for name, n in twice.items())
        raise TrainsetError(f"{path}: the header names {shown}; all but the first would be read under another "
                            f"name ({next(iter(twice))}.1) and silently ignored. Fix: keep one column of each name in the file "
                            "(or rename the others)")


def _check_compression(path: Path) -> bool:
    """Whether the file is gzip; a name and content that disagree are refused, not guessed."""
    with open(path, "rb") as handle:
        gzipped = handle.read(2) == _GZIP_MAGIC
    named = path.suffix.lower() == ".gz"
    if named and not gzipped:
        raise TrainsetError(f"{path}: named .gz but is not gzip-compressed. Fix: compress it with gzip, "
                            f"or rename it to {path.stem}")
    if gzipped and not named:
        raise TrainsetError(f"{path}: the file is gzip-compressed but not named .gz. Fix: rename it to {path.name}.gz")
    return gzipped


def _sniff(path: Path, compressed: bool) -> str:
    """The delimiter of a CSV: tab for ``.tsv``, else sniffed among , ; tab, falling back to ,."""
    if ".tsv" in [s.lower() for s in path.suffixes]:
        return "\t"
    with (gzip.open(path, "rb") if compressed else open(path, "rb")) as handle:
        head = handle.read(_SNIFF_BYTES).decode("utf-8", errors="replace")
    if len(head) >= _SNIFF_BYTES and "\n" in head:
        head = head[: head.rindex("\n")]  # a cut last line would mislead the sniffer
    try:
        sep = csv.Sniffer().sniff(head, delimiters=_SNIFFED).delimiter
    except csv.Error:
        sep = ","
    sep = sep if sep in _SNIFFED else ","
    logger.info("%s: delimiter %r", path, sep)
    return sep


def _integer_ids(sample: pd.Series) -> pd.Series:
    """Integers when every id is written as a plain integer (lossless); otherwise the text as is."""
    written = sample.dropna()
    if written.empty or not written.str.fullmatch(_PLAIN_INTEGER).all():
        return sample
    return pd.to_numeric(sample)


def write_table(table: pd.DataFrame, path: str | os.PathLike, provenance: dict) -> None:
    """Write the validated table atomically, provenance in the Parquet schema metadata."""
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.cast(_dictionary_strings(arrow.schema))
    metadata = dict(arrow.schema.metadata or {})
    metadata.update(footer_metadata("table", provenance))
    arrow = arrow.replace_schema_metadata(metadata)
    with atomic_path(path) as tmp:
        pq.write_table(arrow, tmp, compression="zstd")


def read_table(path: str | os.PathLike, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a validated table written by :func:`write_table` (strings as categoricals).

    Columns are read and converted one at a time, so peak memory stays near the size of the
    resulting frame instead of twice it (Arrow buffers plus pandas copies).
    """
    parquet = pq.ParquetFile(path)
    check_footer_version("table", parquet.schema_arrow.metadata, path)
    columns = columns or parquet.schema_arrow.names
    return pd.DataFrame({c: parquet.read(columns=[c]).column(0).to_pandas() for c in columns}, copy=False)


def footer_metadata(what: str, provenance: dict) -> dict[bytes, bytes]:
    """The footer keys of a Parquet artifact: its provenance record and its format version."""
    return {PROVENANCE_KEY: json.dumps(jsonable(provenance, f"{what} provenance"), sort_keys=True).encode(),
            PARQUET_KEY: str(current(what)).encode()}


def check_footer_version(what: str, metadata: dict | None, path: str | os.PathLike) -> None:
    """Refuse a Parquet artifact written by another trainset format version.

    A file with trainset provenance but no version predates versioning (outdated); a file with
    neither was written by another tool and is judged by its columns alone.
    """
    metadata = metadata or {}
    if PARQUET_KEY in metadata or PROVENANCE_KEY in metadata:
        check_version(what, metadata.get(PARQUET_KEY), path)


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
