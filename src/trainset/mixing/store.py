"""Frames on disk: one Parquet row per (frame, season_week, place), written block by block.

Columns: ``frame``, ``datasetH1``, ``datasetH2``, ``fluseason``, ``sample``, ``copy``,
``scale`` (the frame's), ``season_week``, ``location_code``, ``value``, ``origin`` (the
``H1/H2/season/sample`` group the cell's value came from) and ``fill`` (how the cell was made:
observed, interpolated, outside_range, fill_other_season, ...). Text columns are
dictionary-encoded, so repeating them per cell costs little.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from trainset.errors import TrainsetError
from trainset.mixing.build import Frames
from trainset.mixing.gaps import CELL_KINDS
from trainset.provenance import atomic_path
from trainset.table.io import PROVENANCE_KEY

FRAME_COLUMNS = ["datasetH1", "datasetH2", "fluseason", "sample", "copy", "scale"]
_BLOCK_FRAMES = 256


def write_frames(frames: Frames, path: str | os.PathLike, provenance: dict) -> None:
    """Write ``frames`` atomically, one row group per block of frames (bounded memory)."""
    schema = _schema(provenance)
    cells = frames.values.shape[1] * frames.values.shape[2]
    week = np.repeat(frames.axis.week_numbers.astype(np.int16), frames.values.shape[2])
    place = np.tile(np.arange(len(frames.axis.places), dtype=np.int32), frames.values.shape[1])
    places = pa.array(frames.axis.places, pa.string())
    origins = pa.array(list(frames.labels), pa.string())
    kinds = pa.array(CELL_KINDS, pa.string())
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for start in range(0, len(frames.frames), _BLOCK_FRAMES):
            stop = min(start + _BLOCK_FRAMES, len(frames.frames))
            n = stop - start
            block = frames.frames.iloc[start:stop]
            columns = {
                "frame": np.repeat(np.arange(start, stop, dtype=np.int32), cells),
                **{c: _repeat(block[c], cells, schema.field(c).type) for c in FRAME_COLUMNS},
                "season_week": np.tile(week, n),
                "location_code": pa.DictionaryArray.from_arrays(np.tile(place, n), places),
                "value": frames.values[start:stop].ravel(),
                "origin": pa.DictionaryArray.from_arrays(frames.source[start:stop].ravel(), origins),
                "fill": pa.DictionaryArray.from_arrays(frames.kind[start:stop].ravel().astype(np.int32), kinds),
            }
            writer.write_table(pa.table(columns, schema=schema))


def _repeat(column: pd.Series, times: int, kind: pa.DataType) -> pa.Array:
    if pa.types.is_dictionary(kind):
        codes, uniques = pd.factorize(column)
        return pa.DictionaryArray.from_arrays(np.repeat(codes.astype(np.int32), times), pa.array(list(uniques), pa.string()))
    return pa.array(np.repeat(column.to_numpy(), times), kind)


def _schema(provenance: dict) -> pa.Schema:
    text = pa.dictionary(pa.int32(), pa.string())
    fields = [
        ("frame", pa.int32()), ("datasetH1", text), ("datasetH2", text), ("fluseason", pa.int32()),
        ("sample", pa.int32()), ("copy", pa.int32()), ("scale", pa.float64()),
        ("season_week", pa.int16()), ("location_code", text), ("value", pa.float64()),
        ("origin", text), ("fill", text),
    ]  # fmt: skip
    metadata = {PROVENANCE_KEY: json.dumps(provenance, sort_keys=True, default=str).encode()}
    return pa.schema(fields, metadata=metadata)


def read_frame_values(path: str | os.PathLike, weeks: int, places: tuple[str, ...]) -> tuple[np.ndarray, pd.DataFrame]:
    """Read a frames file back as a dense float64 [frames, weeks, places] array + frame table.

    Row groups are read one at a time and scattered by their (frame, week, place) codes, so
    memory stays near the size of the result and row order does not matter. A file whose grid
    is incomplete, has a cell twice, or has places off the axis is refused.
    """
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as error:
        raise TrainsetError(f"{path}: not a readable frames file ({error})") from error
    n_frames, remainder = divmod(parquet.metadata.num_rows, weeks * len(places))
    if remainder:
        raise TrainsetError(f"{path}: {parquet.metadata.num_rows} cells do not fill whole frames of {weeks} weeks x "
                            f"{len(places)} places. Fix: rebuild the frames with the same season_axis")
    values = np.empty((n_frames, weeks, len(places)))
    seen = np.zeros(values.shape, dtype=bool)
    frame_rows = []
    columns = ["frame", "season_week", "location_code", "value", *FRAME_COLUMNS]
    for group in range(parquet.num_row_groups):
        block = parquet.read_row_group(group, columns=columns)
        cell = _cell_index(block, weeks, places, n_frames, path)
        if seen[cell].any():
            raise TrainsetError(f"{path}: some (frame, season_week, place) cells appear twice. Fix: rebuild the frames")
        seen[cell] = True
        values[cell] = block.column("value").to_numpy()
        first = np.unique(cell[0], return_index=True)[1]
        frame_rows.append(block.select(["frame", *FRAME_COLUMNS]).take(first).to_pandas())
    if not seen.all():
        raise TrainsetError(f"{path}: {int((~seen).sum())} cells of the frame grid are missing. Fix: rebuild the frames")
    frames = pd.concat(frame_rows, ignore_index=True).drop_duplicates("frame").sort_values("frame")
    frames = frames.drop(columns="frame").reset_index(drop=True)
    for column in ("datasetH1", "datasetH2"):
        frames[column] = frames[column].astype(str)
    return values, frames


def _cell_index(block: pa.Table, weeks: int, places: tuple[str, ...], n_frames: int, path) -> tuple[np.ndarray, ...]:
    """(frame, week, place) integer indices of a block's cells, checked against the grid."""
    frame = block.column("frame").to_numpy().astype(np.int64)
    week = block.column("season_week").to_numpy().astype(np.int64) - 1
    place = _place_codes(block.column("location_code"), places, path)
    if frame.min() < 0 or frame.max() >= n_frames or week.min() < 0 or week.max() >= weeks:
        raise TrainsetError(f"{path}: frame or season_week codes outside the grid. Fix: rebuild the frames")
    return frame, week, place


def _place_codes(column: pa.ChunkedArray, places: tuple[str, ...], path) -> np.ndarray:
    """Axis position of every cell's place, decoded through each chunk's dictionary."""
    lookup = pd.Index(places)
    parts = []
    for chunk in column.chunks:
        position = lookup.get_indexer(chunk.dictionary.to_pylist())
        if (position < 0).any():
            raise TrainsetError(f"{path}: places {chunk.dictionary.to_pylist()} not all on the axis {list(places)}")
        parts.append(position[chunk.indices.to_numpy()])
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def read_frames_provenance(path: str | os.PathLike) -> dict:
    """The provenance stored in a frames file."""
    raw = (pq.read_schema(path).metadata or {}).get(PROVENANCE_KEY)
    return json.loads(raw) if raw else {}
