"""Mixing on synthetic tables: modes, shares, gap filling, place filling with origins,
scaling to targets, and determinism independent of table order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from trainset.errors import TrainsetError
from trainset.mixing.build import build_frames
from trainset.mixing.gaps import INTERPOLATED, MISSING, OBSERVED, OUTSIDE, fill_gaps
from trainset.mixing.scaling import national_peaks
from trainset.mixing.store import read_frame_values, write_frames
from trainset.table.validate import validate_table

A = [("fluview", "fluview", s, 0) for s in (2012, 2013, 2014)]
B = [("flepi", "flepi", 2020, k) for k in range(4)]


def frames_of(axis, table, families, **mix):
    table, _ = validate_table(table, axis)
    return build_frames(table, {"families": families, **mix}, "TEST", axis, seed=7)


def test_multiplier_repeats_every_group(axis, table_factory):
    fr = frames_of(axis, table_factory(A + B), {"fluview": {"multiplier": 3}, "flepi": {"multiplier": 1}})
    assert len(fr.frames) == 3 * 3 + 4
    counts = fr.frames.groupby(["datasetH1", "fluseason", "sample"]).size()
    assert set(counts.loc["fluview"]) == {3} and set(counts.loc["flepi"]) == {1}
    assert list(fr.frames.loc[fr.frames.datasetH1 == "fluview", "copy"]) == [0, 1, 2] * 3


def test_proportion_gives_exact_counts_and_shares(axis, table_factory):
    families = {"fluview": {"proportion": 0.7, "total": 101}, "flepi": {"proportion": 0.3, "total": 101}}
    fr = frames_of(axis, table_factory(A + B), families)
    counts = fr.frames["datasetH1"].value_counts()
    assert counts["fluview"] == 71 and counts["flepi"] == 30  # round(70.7), round(30.3)
    assert fr.summary["families"]["fluview"]["share_realised"] == pytest.approx(71 / 101)
    per_group = fr.frames[fr.frames.datasetH1 == "flepi"].groupby("sample").size()
    assert per_group.max() - per_group.min() <= 1  # without replacement, then repeat


def test_proportion_below_group_count_samples_without_replacement(axis, table_factory):
    fr = frames_of(axis, table_factory(B), {"flepi": {"proportion": 0.5}}, total=6, allow_partial=True)
    assert len(fr.frames) == 3
    assert fr.frames["sample"].is_unique


def test_unknown_family_is_an_error(axis, table_factory):
    with pytest.raises(TrainsetError, match=r"mixes.TEST.families.nope.*fluview"):
        frames_of(axis, table_factory(A), {"nope": {"multiplier": 1}})


def test_interior_gaps_interpolate_and_outside_weeks_are_zero():
    values = np.full((1, 10, 2), np.nan)
    values[0, [2, 3, 6], 0] = [1.0, 2.0, 5.0]
    filled, kind = fill_gaps(values)
    np.testing.assert_allclose(filled[0, :, 0], [0, 0, 1, 2, 3, 4, 5, 0, 0, 0])
    assert list(kind[0, :, 0]) == [OUTSIDE] * 2 + [OBSERVED] * 2 + [INTERPOLATED] * 2 + [OBSERVED] + [OUTSIDE] * 3
    assert (kind[0, :, 1] == MISSING).all() and np.isnan(filled[0, :, 1]).all()
    zero, _ = fill_gaps(values, interior="zero")
    assert zero[0, 4, 0] == 0.0


def _origins(fr, frame, place_code):
    place = fr.axis.places.index(place_code)
    kinds = fr.kind[frame, :, place]
    sources = {fr.labels[s] for s in fr.source[frame, :, place]}
    return set(kinds.tolist()), sources


def test_fill_from_same_family_other_season(axis, table_factory):
    table = table_factory(A, drop={A[0]: ["06"]})
    fr = frames_of(axis, table, {"fluview": {"multiplier": 1}})
    kinds, sources = _origins(fr, 0, "06")
    assert kinds == {3}  # fill_other_season
    assert sources <= {"fluview/fluview/2013/0", "fluview/fluview/2014/0"} and len(sources) == 1


def test_fill_from_same_season_other_sample(axis, table_factory):
    table = table_factory(B, drop={B[0]: ["36"]})
    fr = frames_of(axis, table, {"flepi": {"multiplier": 1}})
    kinds, sources = _origins(fr, 0, "36")
    assert kinds == {4}  # fill_other_sample
    assert sources <= {f"flepi/flepi/2020/{k}" for k in (1, 2, 3)} and len(sources) == 1


def test_fill_from_other_family_when_family_lacks_the_place(axis, table_factory):
    drop = {g: ["48"] for g in A}
    fr = frames_of(axis, table_factory(A + B, drop=drop), {"fluview": {"multiplier": 1}})
    kinds, sources = _origins(fr, 0, "48")
    assert kinds == {5}  # fill_other_family
    assert len(sources) == 1 and sources.pop().startswith("flepi/flepi/2020/")


def test_filled_values_are_the_source_series(axis, table_factory):
    table = table_factory(A, drop={A[0]: ["06"]})
    validated, _ = validate_table(table, axis)
    fr = build_frames(validated, {"families": {"fluview": {"multiplier": 2}}}, "TEST", axis, seed=1)
    place = axis.places.index("06")
    def series(season, place_code=None):
        rows = validated[validated.fluseason == season]
        rows = rows if place_code is None else rows[rows.location_code == place_code]
        return rows

    own = series(2012)
    for frame in (0, 1):
        label = fr.labels[fr.source[frame, 0, place]]
        season = int(label.split("/")[2])
        rows = series(season, "06")
        expected = np.zeros(axis.weeks)
        expected[rows.season_week.to_numpy() - 1] = rows.value.to_numpy()
        # r by hand: both groups observe every other place on the same weeks
        source = series(season)
        r = own.value.sum() / source[source.location_code != "06"].value.sum()
        assert fr.fill_scale[frame, place] == pytest.approx(r, rel=1e-12) and r != pytest.approx(1.0)
        np.testing.assert_allclose(fr.values[frame, :, place], expected * r)
    unscaled = build_frames(validated, {"families": {"fluview": {"multiplier": 2}}, "fill_scaling": "none"},
                            "TEST", axis, seed=1)
    assert (unscaled.fill_scale == 1.0).all()


def test_zeros_and_none_fill_policies(axis, table_factory):
    table = table_factory(A, drop={A[0]: ["06"]})
    place = axis.places.index("06")
    zeros = frames_of(axis, table, {"fluview": {"multiplier": 1}}, fill_missing_locations="zeros")
    assert (zeros.values[0, :, place] == 0).all() and (zeros.kind[0, :, place] == 6).all()
    none = frames_of(axis, table, {"fluview": {"multiplier": 1}}, fill_missing_locations="none")
    assert np.isnan(none.values[0, :, place]).all()
    assert none.summary["cells_left_missing"] == axis.weeks


def test_scaled_national_peak_equals_its_target(axis, table_factory):
    targets = [1234.5, 98765.0]
    fr = frames_of(axis, table_factory(A), {"fluview": {"multiplier": 4, "to_scale": True}},
                   scaling_distribution={"values": targets})
    peaks = national_peaks(fr.values, axis.states_mask)
    for peak in peaks:
        assert min(abs(peak - t) for t in targets) < 1e-6 * peak
    assert len(set(np.round(fr.frames["scale"], 9))) > 1  # each copy draws its own target
    assert fr.summary["frames_scaled"] == 12


def test_scaling_from_families_uses_51_state_peaks(axis, table_factory):
    table = table_factory(A + B)
    extra = table[table.datasetH1 == "flepi"].iloc[:50].assign(location_code="US", value=1e9)
    validated, _ = validate_table(pd.concat([table, extra], ignore_index=True), axis)
    fr = build_frames(validated, {"families": {"fluview": {"multiplier": 1, "to_scale": True}},
                                  "scaling_distribution": {"from_families": ["flepi"]}}, "T", axis, 3)
    flepi = build_frames(validated, {"families": {"flepi": {"multiplier": 1}}}, "T", axis, 3)
    allowed = national_peaks(flepi.values, axis.states_mask)
    for peak in national_peaks(fr.values, axis.states_mask):
        assert np.isclose(allowed, peak, rtol=1e-9).any()


def test_provenance_survives_scaling(axis, table_factory, tmp_path):
    table = table_factory(A, drop={A[0]: ["06"]})
    fr = frames_of(axis, table, {"fluview": {"multiplier": 2, "to_scale": True}},
                   scaling_distribution={"values": [500.0]})
    write_frames(fr, tmp_path / "f.parquet", {"test": True})
    cells = pq.read_table(tmp_path / "f.parquet").to_pandas()
    filled = cells[(cells.frame == 0) & (cells.location_code == "06")]
    assert set(filled["fill"].astype(str)) == {"fill_other_season"}
    assert filled["origin"].astype(str).iloc[0] in {"fluview/fluview/2013/0", "fluview/fluview/2014/0"}
    assert filled["scale"].iloc[0] == fr.frames["scale"].iloc[0] != 1.0
    values, frames = read_frame_values(tmp_path / "f.parquet", axis.weeks, axis.places)
    np.testing.assert_array_equal(values, fr.values)
    assert list(frames["copy"]) == [0, 1, 0, 1, 0, 1]


def test_frames_do_not_depend_on_table_order(axis, table_factory, tmp_path):
    """Shuffled rows and a Parquet round trip (categoricals in first-appearance order) give the
    same frames: build_frames itself must not depend on row or category order."""
    from trainset.table.io import read_table, write_table

    shared = [("fluview", "zz", 2012, 0), ("fluview", "aa", 2013, 0), ("flepi", "zz", 2020, 0), ("flepi", "aa", 2020, 1)]
    table, _ = validate_table(table_factory(shared, drop={shared[0]: ["06"]}), axis)
    families = {"fluview": {"proportion": 0.6, "to_scale": True}, "flepi": {"proportion": 0.4}}
    mix = {"families": families, "total": 10, "scaling_distribution": {"from_families": ["flepi"]}}
    one = build_frames(table, mix, "TEST", axis, seed=7)
    two = build_frames(table.sample(frac=1.0, random_state=5), mix, "TEST", axis, seed=7)
    write_table(table.sample(frac=1.0, random_state=9), tmp_path / "t.parquet", {})
    three = build_frames(read_table(tmp_path / "t.parquet"), mix, "TEST", axis, seed=7)
    assert list(one.frames["datasetH2"][::3][:2]) == ["aa", "zz"]  # sorted, whatever the table order
    for other in (two, three):
        np.testing.assert_array_equal(one.values, other.values)
        np.testing.assert_array_equal(one.labels[one.source], other.labels[other.source])
        pd.testing.assert_frame_equal(one.frames, other.frames)


def test_different_seed_changes_draws(axis, table_factory):
    table, _ = validate_table(table_factory(A), axis)
    mix = {"families": {"fluview": {"multiplier": 3, "to_scale": True}},
           "scaling_distribution": {"values": list(range(100, 200))}}
    one = build_frames(table, mix, "M", axis, seed=1)
    two = build_frames(table, mix, "M", axis, seed=2)
    assert not np.array_equal(one.frames["scale"], two.frames["scale"])


def test_stage_writes_blocks_identical_to_the_whole_mix_in_memory(axis, table_factory, tmp_path):
    """mix_frames makes and writes 256 frames at a time (several row groups here); the file
    equals the one written from the whole mix in memory, and a scaling-targets file read from
    another place (a storage copy) gives the same frames while provenance keeps the configured path."""
    from trainset.mixing.stage import mix_frames
    from trainset.mixing.store import read_frames_provenance
    from trainset.table.io import write_table

    table, _ = validate_table(table_factory(A + B, drop={A[0]: ["06", "36"]}), axis)
    write_table(table, tmp_path / "t.parquet", {})
    (tmp_path / "peaks.txt").write_text("100\n250\n")
    mix = {"families": {"fluview": {"multiplier": 150, "to_scale": True}, "flepi": {"multiplier": 20}},
           "scaling_distribution": {"path": str(tmp_path / "peaks.txt")}}
    summary = mix_frames(tmp_path / "t.parquet", tmp_path / "stage.parquet", tmp_path / "s.json", "TEST", mix, {}, 7)
    whole = build_frames(table, mix, "TEST", axis, seed=7)
    write_frames(whole, tmp_path / "whole.parquet", read_frames_provenance(tmp_path / "stage.parquet"))
    assert pq.ParquetFile(tmp_path / "stage.parquet").num_row_groups == 3  # 530 frames
    assert (tmp_path / "stage.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    assert summary["frames"] == 530 and summary["cells_by_kind"] == whole.summary["cells_by_kind"]

    (tmp_path / "copy.txt").write_text("100\n250\n")
    mix_frames(tmp_path / "t.parquet", tmp_path / "copy.parquet", tmp_path / "c.json", "TEST", mix, {}, 7,
               scaling_file=tmp_path / "copy.txt")
    values, _ = read_frame_values(tmp_path / "copy.parquet", axis.weeks, axis.places)
    np.testing.assert_array_equal(values, whole.values)
    record = read_frames_provenance(tmp_path / "copy.parquet")
    assert record["config"]["mix"]["scaling_distribution"]["path"] == str(tmp_path / "peaks.txt")
    assert "scaling_targets" in record["inputs"]
