"""The domain registry: the ingest and framing stages, split methods and dataset attributes
dispatch through it, and a config gets the registry's defaults under it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from trainset.collection import Collection
from trainset.domains.macro import scale_statistics
from trainset.domains.registry import DOMAINS, domain_attrs, domain_split, get_domain
from trainset.domains.stage import frame_domain, ingest_domain
from trainset.errors import TrainsetError

SMALL = {
    "sequences": {"domain": "sequences", "samples": 12, "length": 24},
    "flights": {"domain": "flights", "sites": 2, "years": 1},
    "macro": {"domain": "macro", "worlds": {"nk": 6, "lss": 6}, "horizon": 4},
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_each_domain_ingests_and_frames_through_its_record(tmp_path, name):
    cfg = SMALL[name]
    summary = ingest_domain(cfg, 3, tmp_path / "tables")
    domain = get_domain(name)
    written = sorted(p.stem for p in (tmp_path / "tables").glob("*.parquet"))
    assert set(written) <= set(domain.tables) and set(domain.tables) - set(written) <= set(domain.optional)
    assert summary["domain"] == name and summary["provenance"]["config"] == cfg  # defaults are not recorded
    collection = frame_domain(tmp_path / "tables", cfg, f"T_{name}")
    assert collection.attrs["domain"] == name and collection.attrs["name"] == f"T_{name}"
    assert len(collection) > 0


def test_defaults_fill_only_missing_keys():
    sequences = DOMAINS["sequences"]
    assert sequences.settings({"samples": 12})["recipe"] == "pulses"
    assert sequences.settings({"samples": 12, "recipe": "summary"})["recipe"] == "summary"
    sequences.settings({})["params"]["scale"] = 2.0  # a caller's change stays in its own settings
    assert sequences.settings({})["params"] == {} and DOMAINS["macro"].settings({})["worlds"] == {"nk": 200}


def test_unknown_domain_names_the_known_ones():
    with pytest.raises(TrainsetError, match=r"domain 'weather' unknown. Fix: use one of \['flights', 'macro'"):
        get_domain("weather")


def test_user_files_need_every_required_table(tmp_path):
    inputs = tmp_path / "inputs.csv"
    pd.DataFrame({"sample": [0], "t": [0], "feature": [0], "value": [1.0]}).to_csv(inputs, index=False)
    with pytest.raises(TrainsetError, match=r"files needs \['irfs'\] for domain macro"):
        ingest_domain({"domain": "macro", "files": {"theta": str(inputs)}}, 0, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_split_methods_and_dataset_attrs_come_from_the_collections_domain(tmp_path):
    ingest_domain(SMALL["macro"], 3, tmp_path / "tables")
    macro = frame_domain(tmp_path / "tables", SMALL["macro"], "T_MACRO")
    hook = domain_split(macro, "extrapolation", "T_MACRO")
    splits = hook(macro, 3, {"fractions": {"train": 0.5, "val": 0.25, "test": 0.25}})
    assert "test_extrapolation_slice" in splits
    attrs = domain_attrs(macro, splits)
    assert json.dumps(attrs, sort_keys=True) == json.dumps(
        {"scale_statistics": scale_statistics(macro, splits["train"])}, sort_keys=True)
    assert domain_attrs(macro, None) == {}
    assert domain_split(macro, "random", "T_MACRO") is None  # the shared methods stay in splits.py

    flu = Collection({"all": macro.parts["nk"]}, {"task": "frames"})
    assert domain_split(flu, "group", "mix") is None and domain_attrs(flu, splits) == {}
    with pytest.raises(TrainsetError, match="'extrapolation' is for macro datasets, and this one is a flu mix"):
        domain_split(flu, "extrapolation", "mix")
    with pytest.raises(TrainsetError, match="Fix: use random, group, time or explicit"):
        domain_split(flu, "extrapolation", "mix")
    assert np.all(np.diff(splits["train"]) > 0)
