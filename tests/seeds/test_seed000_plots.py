"""Seed 000: the US grid overlays the N most recent past seasons of ground truth (``plots:
{past_seasons: N}``), as the guide's ``past_ground_truth=True`` did."""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.collections import LineCollection

from tests.seeds.flu_files import flu_mix
from trainset.errors import TrainsetError
from trainset.io.netcdf import open_netcdf_array
from trainset.plots import plot_us_grid
from trainset.plots.past import overlay_family, past_seasons
from trainset.table.io import write_table

SCRIPT = Path(__file__).parents[2] / "src" / "scripts" / "plot_frames.py"


@pytest.fixture
def mix(tmp_path, axis, table_factory):
    path, table, _ = flu_mix(tmp_path / "d", axis, table_factory)
    write_table(table, tmp_path / "table.parquet", {"inputs": {}})
    return path, tmp_path / "table.parquet", table


def _past_lines(fig) -> dict[str, int]:
    """Panel title -> number of lines in its ``past`` collection (panels without one left out)."""
    out = {}
    for ax in fig.axes:
        past = [c for c in ax.collections if isinstance(c, LineCollection) and c.get_gid() == "past"]
        samples = [c for c in ax.collections if isinstance(c, LineCollection) and c.get_gid() == "samples"]
        if past:
            assert len(past) == 1 and past[0].get_zorder() < samples[0].get_zorder()  # behind the samples
            out[ax.get_title()] = len(past[0].get_segments())
    return out


def _is_png(path: Path) -> bool:
    raw = path.read_bytes()
    width, height = struct.unpack(">II", raw[16:24])
    return raw[:8] == b"\x89PNG\r\n\x1a\n" and raw[12:16] == b"IHDR" and width > 1000 and height > 800


def test_past_seasons_are_the_most_recent_seasons_of_the_table(mix):
    path, table_path, table = mix
    data = open_netcdf_array(path)
    past = past_seasons(table_path, 2, data["season_week"].values, data["place"].values)
    assert list(past["fluseason"].values) == [2013, 2014] and past.dims == ("sample", "season_week", "place")
    row = table[(table["datasetH1"] == "fluview") & (table["fluseason"] == 2014)].iloc[0]
    week, place = int(row["season_week"]), str(row["location_code"])
    assert past.sel(season_week=week, place=place).values[1] == pytest.approx(row["value"])
    assert np.isnan(past.sel(season_week=50).values).all()  # weeks the table lacks are gaps, not zeros


def test_grid_draws_one_grey_line_per_past_season_in_every_panel(mix, tmp_path):
    path, table_path, _ = mix
    data = open_netcdf_array(path)
    past = past_seasons(table_path, 3, data["season_week"].values, data["place"].values)
    fig = plot_us_grid(data, tmp_path / "grid.png", past=past)
    lines = _past_lines(fig)
    assert len(lines) == 52 and set(lines.values()) == {3}  # 51 states and the national panel
    assert _is_png(tmp_path / "grid.png")
    assert _past_lines(plot_us_grid(data, tmp_path / "plain.png")) == {}


def test_more_seasons_than_the_table_has_is_an_error_naming_the_key(mix, tmp_path):
    path, table_path, _ = mix
    data = open_netcdf_array(path)
    axes = data["season_week"].values, data["place"].values
    with pytest.raises(TrainsetError, match=r"plots.past_seasons: 4 past seasons asked, .* has 3 \(2012, 2013, 2014\)"):
        past_seasons(table_path, 4, *axes)
    with pytest.raises(TrainsetError, match="plots.past_family: family 'flepi' .* several series"):
        past_seasons(table_path, 1, *axes, family="flepi")
    with pytest.raises(TrainsetError, match=r"plots.past_family: no family 'ilinet' .* \['flepi', 'fluview'\]"):
        past_seasons(table_path, 1, *axes, family="ilinet")


def test_the_rule_script_draws_the_configured_past_seasons(mix, tmp_path):
    path, table_path, _ = mix
    spec = importlib.util.spec_from_file_location("plot_frames", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    drawn = []
    script.plot_us_grid = lambda *a, **k: drawn.append(k["past"]) or plot_us_grid(*a, **k)
    job = SimpleNamespace(input=SimpleNamespace(netcdf=str(path), table=str(table_path)),
                          output=SimpleNamespace(png=str(tmp_path / "M_us_grid.png")),
                          params=SimpleNamespace(samples=3, past_seasons=2, past_family="fluview"),
                          wildcards=SimpleNamespace(mix="M"))
    script.main(job)
    assert list(drawn[0]["fluseason"].values) == [2013, 2014] and _is_png(tmp_path / "M_us_grid.png")


def test_past_family_without_past_seasons_is_refused_not_ignored():
    """``plots.past_family`` only selects the overlay: set while ``past_seasons`` is 0 it would
    change nothing, so the workflow refuses it at start-up (common.smk calls this)."""
    with pytest.raises(TrainsetError, match=r"plots.past_family: 'fluview' is set but plots.past_seasons is 0"
                                            r".*Fix: set plots.past_seasons .* or remove plots.past_family"):
        overlay_family({"samples": 12, "past_seasons": 0, "past_family": "fluview"})
    with pytest.raises(TrainsetError, match="plots.past_family"):
        overlay_family({"past_family": "ilinet"})  # past_seasons absent: its default, 0
    assert overlay_family({"past_seasons": 2, "past_family": "ilinet"}) == "ilinet"
    assert overlay_family({"past_seasons": 2}) == overlay_family({"past_seasons": 0}) == "fluview"
