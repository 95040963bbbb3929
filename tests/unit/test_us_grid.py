"""The US grid visual check: a valid, non-blank, byte-deterministic PNG, and clear errors."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import xarray as xr

from trainset.errors import TrainsetError
from trainset.locations import load_locations
from trainset.plots import plot_us_grid
from trainset.plots.us_grid import _y_label

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DIMS = ("sample", "feature", "season_week", "place")


def _state_codes() -> list[str]:
    table = load_locations()
    return sorted(table.loc[table["kind"] == "state", "location_code"])


def _frames(n: int = 5, pad: bool = False, weeks: int = 53) -> xr.DataArray:
    """Bell-shaped epidemics with random peaks and sizes, optionally padded to 64 places."""
    rng = np.random.default_rng(1)
    places = _state_codes()
    week = np.arange(1, weeks + 1)
    peak = rng.uniform(15, 30, (n, 1, 1, len(places)))
    size = rng.lognormal(3, 1, (n, 1, 1, len(places)))
    values = size * np.exp(-((week[None, None, :, None] - peak) ** 2) / 30)
    if pad:
        extra = [f"PAD_{i}" for i in range(len(places), 64)]
        values = np.concatenate([values, np.full((n, 1, weeks, len(extra)), 1e6)], axis=3)
        places = places + extra
    origin = [f"fluview/fluview/2015/{i}" for i in range(n)]
    coords = {"sample": np.arange(n), "feature": ["value"], "season_week": week,
              "place": places, "origin": ("sample", origin)}
    return xr.DataArray(values, dims=DIMS, coords=coords)


def _png_chunks(raw: bytes) -> list[tuple[bytes, bytes]]:
    """(type, payload) of every chunk, parsed by hand so the test needs no PIL."""
    assert raw[:8] == PNG_SIGNATURE
    chunks, pos = [], 8
    while pos < len(raw):
        (length,) = struct.unpack(">I", raw[pos:pos + 4])
        kind, payload = raw[pos + 4:pos + 8], raw[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", raw[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + payload) == crc
        chunks.append((kind, payload))
        pos += 12 + length
    return chunks


def _text_chunks(raw: bytes) -> dict[str, str]:
    out = {}
    for kind, payload in _png_chunks(raw):
        if kind == b"tEXt":
            key, value = payload.split(b"\0", 1)
            out[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"iTXt":
            key, rest = payload.split(b"\0", 1)
            compressed, rest = rest[0], rest[2:]
            value = rest.split(b"\0", 2)[2]
            out[key.decode("latin-1")] = (zlib.decompress(value) if compressed else value).decode()
    return out


def test_writes_a_non_blank_png(tmp_path):
    path = tmp_path / "grid.png"
    plot_us_grid(_frames(), path)
    raw = path.read_bytes()
    width, height = struct.unpack(">II", _png_chunks(raw)[0][1][:8])
    assert width > 1000 and height > 800
    assert 30_000 < len(raw) < 2_000_000
    image = pytest.importorskip("matplotlib.image").imread(path)
    assert image.shape[:2] == (height, width)
    colours = np.unique((image[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 100


def test_same_input_gives_identical_bytes(tmp_path):
    data, past = _frames(), _frames(3).isel(feature=0) * 0.5
    for name in ("a.png", "b.png"):
        plot_us_grid(data, tmp_path / name, past=past, metadata={"Source": "x.nc"})
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_metadata_lands_in_png_and_software_does_not(tmp_path):
    path = tmp_path / "grid.png"
    plot_us_grid(_frames(), path, metadata={"Source": "TS_MIX_2024-01-01.nc", "Config": "abc123"})
    text = _text_chunks(path.read_bytes())
    assert text["Source"] == "TS_MIX_2024-01-01.nc"
    assert text["Config"] == "abc123"
    assert "Software" not in text


def test_padding_places_are_ignored(tmp_path):
    """Huge values on PAD places must not reach the national sum (same picture as unpadded)."""
    plain, padded = tmp_path / "plain.png", tmp_path / "padded.png"
    plot_us_grid(_frames(), plain, title="t")
    plot_us_grid(_frames(pad=True), padded, title="t")
    assert plain.read_bytes() == padded.read_bytes()


def test_options_change_the_picture(tmp_path):
    data = _frames(20)
    plot_us_grid(data, tmp_path / "default.png")
    plot_us_grid(data, tmp_path / "shared.png", sharey=True)
    plot_us_grid(data, tmp_path / "all.png", sample_idx=range(20))
    plot_us_grid(data, tmp_path / "past.png", past=_frames(4))
    outputs = {p.name: p.read_bytes() for p in tmp_path.glob("*.png")}
    assert len(set(outputs.values())) == 4


def test_subset_of_states_still_plots(tmp_path):
    data = _frames().isel(place=slice(0, 10))
    plot_us_grid(data, tmp_path / "few.png", sample_idx=[4, 0])
    assert (tmp_path / "few.png").read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.parametrize("bad", [
    lambda d: d.isel(feature=0),
    lambda d: d.rename(place="location"),
    lambda d: d.expand_dims("extra"),
    lambda d: d.values,
])
def test_bad_dims_raise_and_leave_no_file(tmp_path, bad):
    with pytest.raises(TrainsetError, match="dims|DataArray"):
        plot_us_grid(bad(_frames()), tmp_path / "grid.png")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("idx", [[5], [-1], [], [0, 99]])
def test_bad_sample_idx_raises_and_leaves_no_file(tmp_path, idx):
    with pytest.raises(TrainsetError, match="sample_idx"):
        plot_us_grid(_frames(5), tmp_path / "grid.png", sample_idx=idx)
    assert list(tmp_path.iterdir()) == []


def test_no_state_place_raises(tmp_path):
    data = _frames().assign_coords(place=[f"PAD_{i}" for i in range(51)])
    with pytest.raises(TrainsetError, match="no state place"):
        plot_us_grid(data, tmp_path / "grid.png")
    assert list(tmp_path.iterdir()) == []


def test_bad_feature_and_metadata_raise(tmp_path):
    with pytest.raises(TrainsetError, match="feature"):
        plot_us_grid(_frames(), tmp_path / "grid.png", feature=3)
    with pytest.raises(TrainsetError, match="metadata"):
        plot_us_grid(_frames(), tmp_path / "grid.png", metadata={"Source": 3})
    assert list(tmp_path.iterdir()) == []


def test_existing_file_is_replaced_not_left_partial(tmp_path):
    path = tmp_path / "grid.png"
    path.write_bytes(b"old")
    with pytest.raises(TrainsetError):
        plot_us_grid(_frames(), path, sample_idx=[7])
    assert path.read_bytes() == b"old"
    plot_us_grid(_frames(), path)
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png"]


def _long_origins(data: xr.DataArray) -> xr.DataArray:
    names = [f"SMH_R4-R5/scenario_{i}_very_long_model_name_ensemble/2023/{i}" for i in range(data.sizes["sample"])]
    return data.assign_coords(origin=("sample", names))


@pytest.mark.parametrize("samples, past", [(12, True), (30, False)])
def test_legend_and_note_cover_no_panel(tmp_path, samples, past):
    """The legend sits in the empty tiles south-east of the map, clear of every panel."""
    data = _long_origins(_frames(samples))
    fig = plot_us_grid(data, tmp_path / "grid.png", sample_idx=range(samples),
                       past=_frames(3).isel(feature=0) if past else None)
    renderer = fig.canvas.get_renderer()
    assert not any(ax.get_legend() for ax in fig.axes)
    (legend,) = fig.legends
    (note,) = [t for t in fig.texts if t.get_gid() == "axes-note"]
    width, height = fig.canvas.get_width_height()
    for artist in (legend, note):
        box = artist.get_window_extent(renderer)
        assert 0 <= box.x0 and box.x1 <= width and 0 <= box.y0 and box.y1 <= height
        for ax in fig.axes:
            assert not box.overlaps(ax.get_tightbbox(renderer)), (artist, ax.get_title())


def test_title_says_each_fact_once_and_axes_have_units(tmp_path):
    fig = plot_us_grid(_frames(20), tmp_path / "grid.png", title="MIX_A: samples spread evenly through the mix")
    title = fig.get_suptitle()
    assert title == "MIX_A: samples spread evenly through the mix — 12 of 20 samples shown"
    assert title.count("12 of 20") == 1 and title.count("MIX_A") == 1
    national = next(ax for ax in fig.axes if ax.get_title().startswith("National"))
    assert national.get_title() == "National: sum over 51 states"
    assert national.get_xlabel() == "season week"
    assert national.get_ylabel() == "value (per season week)"
    note = next(t.get_text() for t in fig.texts if t.get_gid() == "axes-note")
    assert "x season week 1-53" in note and "value (per season week)" in note
    data = _frames()
    data.attrs["units"] = "hospitalisations per week"
    fig = plot_us_grid(data, tmp_path / "units.png")
    assert fig.get_suptitle() == "US grid — 5 of 5 samples shown"
    assert "value (hospitalisations per week)" in [ax.get_ylabel() for ax in fig.axes]
    assert _y_label(data, 0, "cases") == "value (cases)"  # the argument wins over the attribute
