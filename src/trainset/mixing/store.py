"""Frames on disk: one Parquet row per (frame, season_week, place), written block by block.

Columns: ``frame``, ``datasetH1``, ``datasetH2``, ``fluseason``, ``sample`` (integers, or text
when the table's sample ids are text), ``copy``, ``scale`` (the frame's), ``split`` (the
frame's split when the mix assigned it, else empty), ``season_week``, ``location_code``,
``value``, ``fill_scale`` (the level ratio r a filled place was multiplied by, 1 for cells not
copied from another group), ``origin`` (the ``H1/H2/season/sample`` group the cell's value came
from) and ``fill`` (how the cell was made: observed, interpolated, outside_range,
fill_other_season, ...). Text columns are dictionary-encoded, so repeating them per cell costs
little.
"""

from __future__ import annotations

import json
import os
from typing import Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from trainset.errors import TrainsetError
from trainset.mixing.build import BLOCK_FRAMES as _BLOCK_FRAMES
from trainset.mixing.build import FrameBlock, Frames
from trainset.mixing.gaps import CELL_KINDS, FILL_LEVELS
from trainset.provenance import atomic_path
from trainset.seasons import SeasonAxis
from trainset.table.io import check_footer_version, footer_metadata, read_provenance

FILL_SCALE_KEY = b"trainset.fill_scale"
"""Footer key of the index of filled (frame, place) pairs and their level ratios."""

FRAME_COLUMNS = ["datasetH1", "datasetH2", "fluseason", "sample", "copy", "scale", "split"]
_TEXT_COLUMNS = ("datasetH1", "datasetH2", "sample", "split")
_KEY_COLUMNS = ["frame", "datasetH1", "datasetH2", "fluseason", "sample", "season_week"]


def write_frames(frames: Frames, path: str | os.PathLike, provenance: dict) -> None:
    """Write in-memory ``frames`` atomically (see :func:`write_frame_blocks`)."""
    rows = [slice(start, start + _BLOCK_FRAMES) for start in range(0, len(frames.frames), _BLOCK_FRAMES)]
    blocks = (FrameBlock(r.start, frames.values[r], frames.kind[r], frames.source[r], frames.frames.iloc[r],
                         frames.fill_scale[r]) for r in rows)
    text_samples = not pd.api.types.is_integer_dtype(frames.frames["sample"])
    write_frame_blocks(blocks, frames.axis, frames.labels, path, provenance, text_samples)


def write_frame_blocks(blocks: Iterable[FrameBlock], axis: SeasonAxis, labels: np.ndarray,
                       path: str | os.PathLike, provenance: dict, text_samples: bool = False) -> int:
    """Write frames block by block, one row group per block, atomically; return the frame count.

    Only one block is in memory at a time, so a mix of any size writes in bounded memory.
    """
    schema = _schema(provenance, text_samples)
    weeks, n_places = len(axis.week_numbers), len(axis.places)
    cells = weeks * n_places
    week = np.repeat(axis.week_numbers.astype(np.int16), n_places)
    place = np.tile(np.arange(n_places, dtype=np.int32), weeks)
    places = pa.array(axis.places, pa.string())
    origins = pa.array(list(labels), pa.string())
    kinds = pa.array(CELL_KINDS, pa.string())
    total, filled = 0, {"frame": [], "place": [], "scale": []}
    options = {
        "compression": "zstd",
        "use_dictionary": [name for name in schema.names if name != "value"],  # values rarely repeat
        "write_statistics": _KEY_COLUMNS,  # min/max where filters use them; a third of the write time else
    }
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema, **options) as writer:
        for block in blocks:
            n = len(block.frames)
            columns = {
                "frame": np.repeat(np.arange(block.start, block.start + n, dtype=np.int32), cells),
                **{c: _repeat(block.frames[c], cells, schema.field(c).type) for c in FRAME_COLUMNS},
                "season_week": np.tile(week, n),
                "location_code": pa.DictionaryArray.from_arrays(np.tile(place, n), places),
                "value": block.values.ravel(),
                "fill_scale": np.broadcast_to(block.fill_scale[:, None, :], block.values.shape).ravel(),
                "origin": pa.DictionaryArray.from_arrays(block.source.ravel(), origins),
                "fill": pa.DictionaryArray.from_arrays(block.kind.ravel().astype(np.int32), kinds),
            }
            writer.write_table(pa.table(columns, schema=schema))
            _index_fills(block, axis.places, filled)
            total += n
        writer.add_key_value_metadata({FILL_SCALE_KEY: json.dumps(filled, separators=(",", ":"))})
    return total


def _index_fills(block: FrameBlock, places: tuple[str, ...], index: dict[str, list]) -> None:
    """Add the block's filled (frame, place) pairs and their ratios to the file's fill index."""
    frame, place = np.nonzero(np.isin(block.kind[:, 0, :], FILL_LEVELS))
    index["frame"] += (frame + block.start).tolist()
    index["place"] += [places[p] for p in place]
    index["scale"] += block.fill_scale[frame, place].tolist()


def _repeat(column: pd.Series, times: int, kind: pa.DataType) -> pa.Array:
    if pa.types.is_dictionary(kind):
        codes, uniques = pd.factorize(column)
        return pa.DictionaryArray.from_arrays(np.repeat(codes.astype(np.int32), times), pa.array(list(uniques), pa.string()))
    return pa.array(np.repeat(column.to_numpy(), times), kind)


def _schema(provenance: dict, text_samples: bool = False) -> pa.Schema:
    text = pa.dictionary(pa.int32(), pa.string())
    fields = [
        ("frame", pa.int32()), ("datasetH1", text), ("datasetH2", text), ("fluseason", pa.int32()),
        ("sample", text if text_samples else pa.int32()), ("copy", pa.int32()), ("scale", pa.float64()),
        ("split", text), ("season_week", pa.int16()), ("location_code", text), ("value", pa.float64()),
        ("fill_scale", pa.float64()), ("origin", text), ("fill", text),
    ]  # fmt: skip
    return pa.schema(fields, metadata=footer_metadata("frames", provenance))


def read_frame_values(path: str | os.PathLike, weeks: int, places: tuple[str, ...]) -> tuple[np.ndarray, pd.DataFrame]:
    """Read a frames file back as a dense float64 [frames, weeks, places] array + frame table.

    Row groups are read one at a time and scattered by their (frame, week, place) codes, so
    memory stays near the size of the result and row order does not matter. A file whose grid
    is incomplete, has a cell twice, or has places off the axis is refused.
    """
    parquet, n_frames = _open_frames(path, weeks * len(places))
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
        first = _first_rows(cell[0])
        frame_rows.append(block.select(["frame", *FRAME_COLUMNS]).take(first).to_pandas())
    if not seen.all():
        raise TrainsetError(f"{path}: {int((~seen).sum())} cells of the frame grid are missing. Fix: rebuild the frames")
    frames = pd.concat(frame_rows, ignore_index=True).drop_duplicates("frame").sort_values("frame")
    return values, _frame_columns(frames)


def _open_frames(path: str | os.PathLike, cells: int) -> tuple[pq.ParquetFile, int]:
    """The Parquet file and its frame count; a grid that does not divide into frames is refused."""
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as error:
        raise TrainsetError(f"{path}: not a readable frames file ({error})") from error
    check_footer_version("frames", parquet.schema_arrow.metadata, path)
    n_frames, remainder = divmod(parquet.metadata.num_rows, cells)
    if remainder:
        raise TrainsetError(f"{path}: {parquet.metadata.num_rows} cells do not fill whole frames of {cells} cells. "
                            "Fix: rebuild the frames with the same season_axis")
    return parquet, n_frames


def read_frame_table(path: str | os.PathLike, weeks: int, places: tuple[str, ...]) -> pd.DataFrame:
    """One row per frame (:data:`FRAME_COLUMNS`), reading only the frame-level columns."""
    parquet, _ = _open_frames(path, weeks * len(places))
    rows = []
    for group in range(parquet.num_row_groups):
        block = parquet.read_row_group(group, columns=["frame", *FRAME_COLUMNS])
        first = _first_rows(block.column("frame").to_numpy())
        rows.append(block.take(first).to_pandas())
    frames = pd.concat(rows, ignore_index=True).drop_duplicates("frame").sort_values("frame")
    return _frame_columns(frames)


def _first_rows(frame: np.ndarray) -> np.ndarray:
    """Row of each frame's first cell, by hashing (O(n); ``np.unique`` sorts every cell)."""
    return np.flatnonzero(~pd.Series(frame).duplicated().to_numpy())


def _frame_columns(frames: pd.DataFrame) -> pd.DataFrame:
    """Frame rows without the ``frame`` column; text columns as plain strings."""
    frames = frames.drop(columns="frame").reset_index(drop=True)
    for column in _TEXT_COLUMNS:
        if not pd.api.types.is_numeric_dtype(frames[column]):
            frames[column] = frames[column].astype(str)
    return frames


def read_fill_scales(path: str | os.PathLike, weeks: int, places: tuple[str, ...]) -> dict[str, list]:
    """Every filled (frame, place) and its level ratio r: ``{"frame", "place", "scale"}`` lists.

    Read from the index the writer keeps in the file's footer; a frames file rewritten by
    another tool (which drops that index) is scanned instead: a filled place has one ratio for
    all its weeks, so only the first week's cells are read.
    """
    parquet, _ = _open_frames(path, weeks * len(places))
    raw = (parquet.metadata.metadata or {}).get(FILL_SCALE_KEY)
    if raw is not None:
        return json.loads(raw)
    frame, place, scale = [], [], []
    for group in range(parquet.num_row_groups):
        block = parquet.read_row_group(group, columns=["frame", "season_week", "location_code", "fill", "fill_scale"])
        block = block.filter(pc.equal(block.column("season_week"), 1))
        block = block.filter(pc.starts_with(block.column("fill").cast(pa.string()), "fill_"))
        frame.append(block.column("frame").to_numpy())
        place.append(_place_codes(block.column("location_code"), places, path))
        scale.append(block.column("fill_scale").to_numpy())
    frame, place, scale = (np.concatenate(parts) for parts in (frame, place, scale))
    order = np.lexsort((place, frame))
    return {"frame": frame[order].astype(int).tolist(), "place": [places[p] for p in place[order]],
            "scale": scale[order].astype(float).tolist()}


def iter_frame_values(path: str | os.PathLike, weeks: int, places: tuple[str, ...]) -> Iterator[tuple[int, np.ndarray]]:
    """(first frame, float64 values [frames, weeks, places]) of each row group, in frame order.

    Memory is one row group. Each row group must hold whole, consecutive frames (as
    :func:`write_frame_blocks` writes them); cells may be in any order inside it.
    """
    parquet, n_frames = _open_frames(path, weeks * len(places))
    expected = 0
    for group in range(parquet.num_row_groups):
        block = parquet.read_row_group(group, columns=["frame", "season_week", "location_code", "value"])
        frame, week, place = _cell_index(block, weeks, places, n_frames, path)
        first, n = int(frame.min()), int(frame.max()) - int(frame.min()) + 1
        if first != expected or block.num_rows != n * weeks * len(places):
            raise TrainsetError(f"{path}: row group {group} does not hold whole frames {expected}.. in order. "
                                "Fix: rebuild the frames with trainset")
        values = np.full((n, weeks, len(places)), np.nan)
        seen = np.zeros(values.shape, dtype=bool)
        seen[frame - first, week, place] = True
        if not seen.all():
            raise TrainsetError(f"{path}: some (frame, season_week, place) cells appear twice or are missing. "
                                "Fix: rebuild the frames")
        values[frame - first, week, place] = block.column("value").to_numpy()
        expected += n
        yield first, values
    if expected != n_frames:
        raise TrainsetError(f"{path}: {n_frames - expected} frames missing. Fix: rebuild the frames")


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


read_frames_provenance = read_provenance
"""The provenance stored in a frames file (the table's reader: the same footer key)."""
