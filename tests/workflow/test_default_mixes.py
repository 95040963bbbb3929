"""The shipped config/config.yaml, unchanged, mixed to frames: filled places in their frames'
units (Florida in the ILI-percent fluview frames of SURV_ONLY), no fill-share warning in either
default mix, and no held-out frame holding a cell copied from a training group."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.workflow.test_workflow import REPO, SNAKEMAKE
from trainset.mixing.checks import place_shares
from trainset.mixing.cube import build_cube
from trainset.mixing.store import read_frame_values
from trainset.seasons import SeasonAxis
from trainset.table.io import read_table

pytestmark = pytest.mark.workflow

AXIS = SeasonAxis.from_config({})
FLORIDA = AXIS.places.index("12")


@pytest.fixture(scope="module")
def default_frames(tmp_path_factory):
    work = tmp_path_factory.mktemp("default")
    command = [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(work), "--cores", "2",
               "build_all_frames", "results/datasets/SURV_ONLY/splits.json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return work / "results"


def test_florida_keeps_its_share_in_the_fluview_frames(default_frames):
    values, frames = read_frame_values(default_frames / "frames/SURV_ONLY.parquet", AXIS.weeks, AXIS.places)
    fluview = place_shares(values[(frames["datasetH1"] == "fluview").to_numpy()], AXIS.states_mask)[:, FLORIDA]
    cube = build_cube(read_table(default_frames / "tables/flu_demo.parquet"), AXIS)
    observing = cube.has_place[:, FLORIDA]
    reference = place_shares(np.nan_to_num(cube.values[observing]), AXIS.states_mask)[:, FLORIDA]
    ratio = np.median(fluview) / np.median(reference)
    assert 1 / 3 < ratio < 3, ratio  # before fill scaling: a median 0.90 against 0.09 (ratio ~10)


def test_no_share_warning_in_either_default_mix(default_frames):
    for mix in ("SURV_ONLY", "MIX_70S30M"):
        summary = json.loads((default_frames / f"frames/{mix}.summary.json").read_text())
        assert summary["fill_share_check"]["warnings"] == [], mix
        assert summary["fill_share_check"]["places"]["12"]["fluview"]["frames_filled"] > 0
        assert summary["splits"]["fill_sources_isolated"] is True
        assert summary["policies"]["fill_scaling"] == "match_level"


def test_no_held_out_frame_holds_a_training_groups_cell(default_frames):
    splits = json.loads((default_frames / "datasets/SURV_ONLY/splits.json").read_text())
    assert splits["assigned_at"] == "mixing"
    cells = pq.read_table(default_frames / "frames/SURV_ONLY.parquet", columns=["frame", "origin", "fill"]).to_pandas()
    train = np.asarray(splits["splits"]["train"])
    in_train = cells["frame"].isin(train)
    train_groups = set(cells.loc[in_train, "origin"].astype(str))  # own curves and fill sources
    held_out = cells[~in_train]
    filled = held_out[held_out["fill"].astype(str).str.startswith("fill_")]
    assert len(filled) > 0  # held-out frames do have filled places
    assert not set(held_out["origin"].astype(str)) & train_groups
