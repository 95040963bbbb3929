"""Filled places in the frame's units and split, every fill policy, mix arithmetic, text sample
ids and the week-53 stub: each rule on a small table, asserting values and provenance."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import xarray as xr

from trainset.errors import TrainsetError
from trainset.mixing.build import build_frames
from trainset.mixing.checks import place_shares
from trainset.mixing.config import check_mix
from trainset.mixing.gaps import CARRIED, FILL_FAMILY, OBSERVED, OUTSIDE, fill_gaps
from trainset.table.validate import validate_table

SURV = [("surv", "surv", s, 0) for s in (2012, 2013, 2014)]
SIMS = [("sims", f"m{k}", 2020, 0) for k in range(12)]
FL = "12"


def unit_table(table_factory, surv_scale=0.01, **kwargs):
    """Surveillance in small units (ILI-percent-like) lacking Florida everywhere, simulations in
    counts (x1000 larger) observing it."""
    table = table_factory(SURV + SIMS, drop={g: [FL] for g in SURV}, **kwargs)
    surv = table["datasetH1"] == "surv"
    table.loc[surv, "value"] *= surv_scale
    return table


def mix(axis, table, families, splits=None, **cfg):
    validated, _ = validate_table(table, axis)
    return build_frames(validated, {"families": families, **cfg}, "MIX", axis, seed=5, splits_cfg=splits)


def test_filled_place_takes_the_frame_level_and_r_is_stored(axis, table_factory, tmp_path):
    from trainset.mixing.store import read_fill_scales, write_frames

    table = unit_table(table_factory)
    fr = mix(axis, table, {"surv": {"multiplier": 2}})
    place = axis.places.index(FL)
    validated, _ = validate_table(table, axis)
    for frame in range(len(fr.frames)):
        source = int(fr.source[frame, 0, place])
        assert fr.kind[frame, 0, place] == FILL_FAMILY and fr.labels[source].startswith("sims/")
        own = validated[(validated.datasetH1 == "surv") & (validated.fluseason == fr.frames.fluseason[frame])]
        h2 = fr.labels[source].split("/")[1]
        src = validated[(validated.datasetH2 == h2) & (validated.location_code != FL)]
        r = own.value.sum() / src.value.sum()  # both observe every other place on the same weeks
        assert fr.fill_scale[frame, place] == pytest.approx(r, rel=1e-12)
        assert r == pytest.approx(0.01, rel=0.3)  # the unit change, up to the groups' own levels
    share = place_shares(fr.values, axis.states_mask)[:, place]
    sims = mix(axis, table, {"sims": {"multiplier": 1}})
    observed = place_shares(sims.values, axis.states_mask)[:, place]
    assert 1 / 3 < np.median(share) / np.median(observed) < 3
    assert fr.summary["fill_share_check"]["warnings"] == []
    assert fr.summary["fill_scale"]["places_filled"] == len(fr.frames)

    write_frames(fr, tmp_path / "f.parquet", {})
    cells = pq.read_table(tmp_path / "f.parquet").to_pandas()
    assert (cells.loc[cells.fill.astype(str) == "observed", "fill_scale"] == 1.0).all()
    florida = cells[cells.location_code.astype(str) == FL]
    np.testing.assert_allclose(florida.groupby("frame")["fill_scale"].first(), fr.fill_scale[:, place])
    stored = read_fill_scales(tmp_path / "f.parquet", axis.weeks, axis.places)
    assert stored["place"] == [FL] * len(fr.frames) and stored["frame"] == list(range(len(fr.frames)))
    np.testing.assert_allclose(stored["scale"], fr.fill_scale[:, place])
    pq.write_table(pq.read_table(tmp_path / "f.parquet"), tmp_path / "rewritten.parquet")  # drops the index
    assert read_fill_scales(tmp_path / "rewritten.parquet", axis.weeks, axis.places) == stored


def test_fill_scaling_none_copies_as_is_and_the_share_check_warns(axis, table_factory, caplog):
    fr = mix(axis, unit_table(table_factory), {"surv": {"multiplier": 1}}, fill_scaling="none")
    assert (fr.fill_scale == 1.0).all()
    warnings = fr.summary["fill_share_check"]["warnings"]
    assert len(warnings) == 1 and "place 12" in warnings[0] and "mix MIX" in warnings[0]
    assert "surv frames" in warnings[0] and "['sims']" in warnings[0] and "fill_scaling: match_level" in warnings[0]
    entry = fr.summary["fill_share_check"]["places"][FL]["surv"]
    assert entry["ratio"] > 3 and entry["source_families"] == ["sims"]
    assert any("place 12" in record.message for record in caplog.records)


def test_a_source_sharing_no_observed_cell_is_skipped_for_the_next(axis, table_factory):
    """Surveillance observes weeks 5-20; a simulation that only starts after week 30 shares no
    cell with it, so Florida comes from the other simulation."""
    late = table_factory([("sims", "late", 2020, 0)], weeks=range(30, 41))
    early = table_factory([("sims", "early", 2020, 0)], weeks=range(5, 41))
    surv = table_factory(SURV[:1], weeks=range(5, 21), drop={SURV[0]: [FL]})
    fr = mix(axis, pd.concat([surv, late, early], ignore_index=True), {"surv": {"multiplier": 20}})
    place = axis.places.index(FL)
    assert {fr.labels[s] for s in fr.source[:, 0, place]} == {"sims/early/2020/0"}
    only_late = pd.concat([surv, late], ignore_index=True)
    with pytest.raises(TrainsetError, match=r"(?s)surv/surv/2012/0: \[.12.\].*no_source: zeros"):
        mix(axis, only_late, {"surv": {"multiplier": 1}})
    zeros = mix(axis, only_late, {"surv": {"multiplier": 1}}, no_source="zeros")
    assert (zeros.values[0, :, place] == 0).all() and zeros.summary["groups_without_fill_source"] == 1
    unscaled = mix(axis, only_late, {"surv": {"multiplier": 1}}, fill_scaling="none")
    assert unscaled.labels[unscaled.source[0, 0, place]] == "sims/late/2020/0"  # no overlap needed


def test_no_source_skip_drops_the_group_and_counts_it(axis, table_factory):
    """The simulation observes Florida only after the surveillance season ends: no usable source."""
    surv = table_factory(SURV[:1], weeks=range(5, 21), drop={SURV[0]: [FL]})
    late = table_factory([("sims", "late", 2020, 0)], weeks=range(30, 41))
    table = pd.concat([surv, late], ignore_index=True)
    fr = mix(axis, table, {"surv": {"multiplier": 3}, "sims": {"multiplier": 2}}, no_source="skip")
    assert list(fr.frames["datasetH1"]) == ["sims", "sims"]
    families = fr.summary["families"]
    assert families["surv"]["frames_skipped_no_source"] == 3 and families["surv"]["frames"] == 0
    assert families["sims"]["share_realised"] == 1.0 and fr.summary["frames"] == 2
    with pytest.raises(TrainsetError, match="no_source: skip would leave no frame"):
        mix(axis, table, {"surv": {"multiplier": 3}}, no_source="skip")


def test_fill_policy_skip_delivers_the_proportions_from_complete_groups(axis, table_factory):
    table = table_factory(SURV + SIMS, drop={SURV[0]: [FL], SIMS[0]: ["06"], SIMS[1]: ["06"]})
    families = {"surv": {"proportion": 0.3}, "sims": {"proportion": 0.7}}
    fr = mix(axis, table, families, total=101, fill_missing_locations="skip")
    counts = fr.frames["datasetH1"].value_counts()
    assert counts["surv"] == 30 and counts["sims"] == 71  # round(30.3), round(70.7)
    assert not set(fr.frames.loc[fr.frames.datasetH1 == "surv", "fluseason"]) & {2012}
    assert not set(fr.frames.loc[fr.frames.datasetH1 == "sims", "datasetH2"]) & {"m0", "m1"}
    assert fr.summary["families"]["surv"]["groups_skipped"] == 1
    assert fr.summary["families"]["sims"]["groups_skipped"] == 2
    assert (fr.kind != FILL_FAMILY).all() and fr.summary["places_filled"] == 0
    lacking = table_factory(SURV, drop={g: [FL] for g in SURV})
    with pytest.raises(TrainsetError, match=r"families.surv: all 3 groups lack some place.*0 frames"):
        mix(axis, lacking, {"surv": {"multiplier": 1}}, fill_missing_locations="skip")


def test_fill_policy_error_names_every_incomplete_group_and_place(axis, table_factory):
    table = table_factory(SURV + SIMS[:1], drop={SURV[0]: [FL, "06"], SURV[2]: ["48"]})
    with pytest.raises(TrainsetError) as error:
        mix(axis, table, {"surv": {"multiplier": 1}}, fill_missing_locations="error")
    message = str(error.value)
    assert "2 group(s) lack places" in message
    assert "surv/surv/2012/0: ['06', '12']" in message and "surv/surv/2014/0: ['48']" in message
    fr = mix(axis, table, {"sims": {"multiplier": 1}}, fill_missing_locations="error")
    assert len(fr.frames) == 1  # only the mixed families must be complete


def test_fill_sources_stay_inside_the_frames_split(axis, table_factory):
    """Group splits are decided before filling: no val/test frame holds a cell from a group whose
    frames are in train, nor from an unmixed source group assigned to another split."""
    groups = [("surv", "surv", s, 0) for s in range(2000, 2020)]
    drop = {g: [FL] for g in groups[::2]} | {g: ["06"] for g in groups[1::4]}
    table = pd.concat([table_factory(groups, drop=drop), table_factory(SIMS)], ignore_index=True)
    splits = {"method": "group", "by": "group", "fractions": {"train": 0.6, "val": 0.2, "test": 0.2}}
    fr = mix(axis, table, {"surv": {"multiplier": 2}}, splits=splits)
    split = fr.frames["split"].to_numpy()
    assert set(split) == {"train", "val", "test"}
    group_split = dict(zip(fr.labels[fr.source[:, 0, 0]], split))  # place 01 is never missing
    for frame in np.flatnonzero(split != "train"):
        sources = {fr.labels[s] for s in np.unique(fr.source[frame])}
        assert all(group_split.get(s, split[frame]) == split[frame] for s in sources), (frame, sources)
    # the frames' splits are exactly what make_splits gives for the frames' groups
    from trainset.splits import make_splits

    expected = make_splits(len(fr.frames), splits, 5, groups=fr.labels[fr.source[:, 0, 0]])
    for name, indices in expected.items():
        assert list(np.flatnonzero(split == name)) == list(indices)
    assert fr.summary["splits"]["fill_sources_isolated"] is True
    free = mix(axis, table, {"surv": {"multiplier": 2}}, splits={"method": "random"})
    assert set(free.frames["split"]) == {""} and free.summary["splits"]["fill_sources_isolated"] is False


def test_unmixed_source_groups_are_assigned_to_splits_too(axis, table_factory):
    table = unit_table(table_factory)
    splits = {"method": "group", "by": "group", "fractions": {"train": 0.5, "test": 0.5}}
    fr = mix(axis, table, {"surv": {"multiplier": 4}}, splits=splits)
    place = axis.places.index(FL)
    by_source = {}
    for frame, name in enumerate(fr.frames["split"]):
        by_source.setdefault(fr.labels[fr.source[frame, 0, place]], set()).add(name)
    assert all(len(names) == 1 for names in by_source.values())  # one sims group never feeds two splits


@pytest.mark.parametrize("cfg, match", [
    ({"families": {"a": {"proportion": 0.8}, "b": {"proportion": 0.5}}, "total": 100},
     r"mixes.M: proportions \{'a': 0.8, 'b': 0.5\} sum to 1.3, more than 1"),
    ({"families": {"a": {"proportion": 0.8, "total": 100}, "b": {"proportion": 0.5, "total": 100}}},
     r"sum to 1.3, more than 1"),
    ({"families": {"a": {"proportion": 0.5}, "b": {"proportion": 0.3}}, "total": 100},
     r"sum to 0.8, less than 1: the mix would hold 80 of its total 100 frames.*allow_partial: true"),
    ({"families": {"a": {"proportion": 0.5, "total": 100}, "b": {"proportion": 0.5, "total": 300}}},
     r"totals disagree \(\{'a': 100, 'b': 300\}\)"),
    ({"families": {"a": {"proportion": 0.5, "total": 100}, "b": {"proportion": 0.5}}, "total": 200},
     r"totals disagree \(\{'total': 200, 'a': 100\}\)"),
    ({"families": {"a": {"multiplier": 2}, "b": {"proportion": 0.5}}, "total": 10},
     r"families \['a'\] use 'multiplier' and \['b'\] use 'proportion'"),
    ({"families": {"a": {"proportion": 0.999}, "b": {"proportion": 0.001}}, "total": 100},
     r"families \['b'\]: proportion x total 100 rounds to 0 frames"),
    ({"families": {"a": {"proportion": 1.0}}},
     r"proportion families need the mix's total"),
    ({"families": {"a": {"multiplier": 1, "to_scale": True}}},
     r"scaling_distribution: families \['a'\] have to_scale: true but no distribution"),
    ({"families": {"a": {"multiplier": 1}}, "no_source": "maybe"}, r"mixes.M.no_source: 'maybe' unknown"),
    ({"families": {}}, r"mixes.M.families: empty"),
])  # fmt: skip
def test_mix_arithmetic_is_refused_with_the_numbers(cfg, match):
    with pytest.raises(TrainsetError, match=match):
        check_mix("M", cfg)


def test_bad_target_peaks_are_refused_not_dropped(axis, table_factory, tmp_path):
    table = table_factory(SURV)
    families = {"surv": {"multiplier": 1, "to_scale": True}}
    with pytest.raises(TrainsetError, match=r"scaling_distribution.values: 2 of 3 target peaks.*\[-5.0, 0.0\]"):
        mix(axis, table, families, scaling_distribution={"values": [100.0, -5.0, 0.0]})
    (tmp_path / "peaks.txt").write_text("100\nnan\n")
    with pytest.raises(TrainsetError, match=r"peaks.txt: 1 of 2 target peaks"):
        mix(axis, table, families, scaling_distribution={"path": str(tmp_path / "peaks.txt")})
    fr = mix(axis, table, families, scaling_distribution={"values": [100.0, 200.0]})
    assert fr.summary["scaling_targets"] == {"count": 2, "groups_with_zero_peak_left_out": 0}


def test_mix_arithmetic_that_holds_is_accepted(axis, table_factory):
    assert check_mix("M", {"families": {"a": {"proportion": 0.7, "total": 50}, "b": {"proportion": 0.3,
                                                                                    "total": 50}}}).total == 50
    assert check_mix("M", {"families": {"a": {"proportion": 0.5}}, "total": 9, "allow_partial": True}).total == 9
    assert check_mix("M", {"families": {"a": {"proportion": 0.37}, "b": {"proportion": 0.63}}, "total": 3000})
    fr = mix(axis, table_factory(SURV + SIMS), {"surv": {"proportion": 0.5}}, total=10, allow_partial=True)
    assert len(fr.frames) == 5 and fr.summary["total"] == 10


def test_text_sample_ids_flow_into_frames_and_the_dataset(axis, table_factory, tmp_path):
    from trainset.datasets import write_mix_netcdf
    from trainset.mixing.stage import mix_frames
    from trainset.table.io import write_table

    table = table_factory([("smh", "r4", 2023, 0), ("smh", "r4", 2023, 1), ("smh", "r4", 2023, 2)])
    table["sample"] = table["sample"].map({0: "1.0_NA_101", 1: "10.0", 2: "9.0"})
    validated, _ = validate_table(table, axis)
    assert validated["sample"].dtype == "string"
    write_table(validated, tmp_path / "t.parquet", {})
    cfg = {"families": {"smh": {"multiplier": 2}}}
    mix_frames(tmp_path / "t.parquet", tmp_path / "f.parquet", tmp_path / "f.json", "TXT", cfg, {}, 1,
               splits_cfg={"method": "group", "by": "group", "fractions": {"train": 0.5, "test": 0.5}})
    cells = pq.read_table(tmp_path / "f.parquet").to_pandas()
    assert list(dict.fromkeys(cells["sample"].astype(str))) == ["1.0_NA_101", "10.0", "9.0"]  # code-point order
    write_mix_netcdf(tmp_path / "f.parquet", tmp_path / "TS.nc", "TXT", cfg, {}, 1)
    with xr.open_dataset(tmp_path / "TS.nc") as ds:
        assert list(ds["source_sample"].values) == ["1.0_NA_101"] * 2 + ["10.0"] * 2 + ["9.0"] * 2
        assert list(ds["group"].values[:2]) == ["smh/r4/2023/1.0_NA_101"] * 2
        assert set(ds["split"].values) <= {"train", "test"}
        assert json.loads(ds["frames"].attrs["fill_scale"]) == {"frame": [], "place": [], "scale": []}


def test_split_rule_reads_the_split_assigned_at_mixing(axis, table_factory, tmp_path):
    from trainset.datasets import split_dataset, write_mix_netcdf
    from trainset.mixing.stage import mix_frames
    from trainset.splits import read_splits
    from trainset.table.io import write_table

    groups = [("surv", "surv", s, 0) for s in range(2000, 2012)]
    table, _ = validate_table(table_factory(groups, drop={g: [FL] for g in groups[::3]}), axis)
    write_table(table, tmp_path / "t.parquet", {})
    cfg = {"families": {"surv": {"multiplier": 3}}}
    splits = {"method": "group", "by": "group", "fractions": {"train": 0.5, "val": 0.25, "test": 0.25}}
    summary = mix_frames(tmp_path / "t.parquet", tmp_path / "f.parquet", tmp_path / "f.json", "S", cfg, {}, 2,
                         splits_cfg=splits)
    write_mix_netcdf(tmp_path / "f.parquet", tmp_path / "TS.nc", "S", cfg, {}, 2)
    split_dataset(tmp_path / "TS.nc", tmp_path / "splits.json", splits, 2)
    stored = read_splits(tmp_path / "splits.json")
    assert {name: int(ix.size) for name, ix in stored.items()} == summary["splits"]["frames"]
    cells = pq.read_table(tmp_path / "f.parquet", columns=["frame", "origin", "split"]).to_pandas()
    train_groups = set(cells.loc[cells.frame.isin(stored["train"]), "origin"].astype(str))
    held_out = cells[~cells.frame.isin(stored["train"])]
    assert not set(held_out["origin"].astype(str)) & train_groups
    with xr.open_dataset(tmp_path / "TS.nc") as ds:
        filled = json.loads(ds["frames"].attrs["fill_scale"])
    assert set(filled["place"]) == {FL} and len(filled["frame"]) == 4 * 3


def test_week_53_stub_carries_week_52(axis):
    values = np.full((1, 53, 3), np.nan)
    values[0, 10:52, 0] = 5.0  # observed through week 52
    values[0, 10:40, 1] = 5.0  # ends at week 40: zeros after it, no carry
    values[0, 10:53, 2] = 7.0  # week 53 observed
    filled, kind = fill_gaps(values)
    assert filled[0, 52, 0] == 5.0 and kind[0, 52, 0] == CARRIED
    assert filled[0, 52, 1] == 0.0 and kind[0, 52, 1] == OUTSIDE
    assert filled[0, 52, 2] == 7.0 and kind[0, 52, 2] == OBSERVED
    zero, kind = fill_gaps(values, stub_week="zero")
    assert zero[0, 52, 0] == 0.0 and kind[0, 52, 0] == OUTSIDE
    short, _ = fill_gaps(values[:, :52])  # a 52-week axis has no stub
    assert short[0, 51, 0] == 5.0


def test_stage_refusal_leaves_no_output(axis, table_factory, tmp_path):
    from trainset.mixing.stage import mix_frames
    from trainset.table.io import write_table

    table, _ = validate_table(table_factory(SURV, drop={g: [FL] for g in SURV}), axis)
    write_table(table, tmp_path / "t.parquet", {})
    with pytest.raises(TrainsetError, match="no usable source"):
        mix_frames(tmp_path / "t.parquet", tmp_path / "f.parquet", tmp_path / "f.json", "S",
                   {"families": {"surv": {"multiplier": 1}}}, {}, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]
