"""LR range test: exponential LRs, a suggestion inside the sweep and before divergence,
determinism, early stopping, JSON + PNG output, and ``auto`` values in run configs."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tests.conftest import stored_sequences
from trainset.errors import TrainsetError
from trainset.train.auto import resolve_auto
from trainset.train.config import TrainingConfig
from trainset.train.lr_finder import apply_lr, find_lr, lr_search_hash, search_config, suggest_lr, write_lr_result

RUN = {
    "name": "pulses",
    "model": {"name": "sequence", "params": {"kind": "gru", "hidden": 16, "layers": 1}},
    "training": {"losses": [{"name": "cross_entropy"}], "batch_size": 32},
}
SCRIPTS = Path(__file__).resolve().parents[2] / "src" / "scripts"


@pytest.fixture(scope="module")
def pulses(tmp_path_factory):
    return stored_sequences(tmp_path_factory.mktemp("pulses"), "pulses", 160, seed=1, length=24)


@pytest.fixture(scope="module")
def cfg():
    return TrainingConfig.from_dict(RUN)


@pytest.fixture(scope="module")
def sweep(pulses, cfg):
    return find_lr(cfg, pulses, min_lr=1e-5, max_lr=1.0, steps=40)


def test_lrs_grow_exponentially_from_min_lr(sweep):
    lrs = np.asarray(sweep["lrs"])
    assert lrs[0] == pytest.approx(1e-5)
    assert np.allclose(np.diff(np.log(lrs)), math.log(1.0 / 1e-5) / 39)
    if not sweep["stopped_early"]:
        assert sweep["steps"] == 40 and lrs[-1] == pytest.approx(1.0)
    assert len(sweep["losses"]) == len(sweep["smoothed"]) == sweep["steps"] == len(lrs)
    assert sweep["smoothed"][0] == pytest.approx(sweep["losses"][0])  # bias correction


def test_suggestion_lies_in_the_sweep(sweep, cfg):
    assert 1e-5 <= sweep["suggested_lr"] <= 1.0
    assert sweep["suggested_lr"] in sweep["lrs"]
    lowest = sweep["lrs"][int(np.argmin(sweep["smoothed"]))]
    assert sweep["suggested_lr"] <= lowest
    assert sweep["min_loss_lr_div10"] == pytest.approx(lowest / 10)
    assert sweep["config_hash"] == lr_search_hash(cfg)


def test_two_runs_are_identical(sweep, pulses, cfg):
    assert find_lr(cfg, pulses, min_lr=1e-5, max_lr=1.0, steps=40) == sweep


def test_stops_early_when_the_loss_diverges(pulses, cfg):
    result = find_lr(cfg, pulses, min_lr=1e-4, max_lr=1e4, steps=60, divergence=4.0)
    assert result["stopped_early"] and result["steps"] < 60
    smoothed = result["smoothed"]
    best = np.minimum.accumulate(smoothed)
    assert smoothed[-1] > 4.0 * best[-1] and all(np.asarray(smoothed[:-1]) <= 4.0 * best[:-1])
    divergence_lr = result["lrs"][-1]
    assert 1e-4 <= result["suggested_lr"] < divergence_lr


def test_json_and_png_are_written(sweep, tmp_path):
    target = tmp_path / "tuning" / "lr.json"
    write_lr_result(sweep, target)
    assert json.loads(target.read_text()) == {**sweep, "format_version": 1}
    png = tmp_path / "tuning" / "lr.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    first = png.read_bytes()
    write_lr_result(sweep, target)
    assert png.read_bytes() == first  # no timestamps or version chunk
    assert sorted(p.name for p in target.parent.iterdir()) == ["lr.json", "lr.png"]


def test_apply_lr_sets_only_the_lr(sweep, cfg, tmp_path):
    write_lr_result(sweep, tmp_path / "lr.json")
    tuned = apply_lr(cfg, tmp_path / "lr.json")
    assert tuned.training.lr == sweep["suggested_lr"]
    assert tuned.to_dict()["model"] == cfg.to_dict()["model"] and tuned.training.seed == cfg.training.seed
    with pytest.raises(TrainsetError, match="not found"):
        apply_lr(cfg, tmp_path / "missing.json")


def test_resolve_auto_replaces_auto_values(tmp_path):
    (tmp_path / "lr.json").write_text(json.dumps({"suggested_lr": 0.003, "format_version": 1}))
    (tmp_path / "io.json").write_text(json.dumps({"best": {"batch_size": 256, "num_workers": 2,
                                                           "samples_per_s": 1e5}, "format_version": 1}))
    run = {**RUN, "training": {**RUN["training"], "lr": "auto", "batch_size": "auto", "num_workers": "auto"}}
    out = resolve_auto(run, tmp_path / "lr.json", tmp_path / "io.json")
    assert out["training"]["lr"] == 0.003 and out["training"]["batch_size"] == 256
    assert out["training"]["num_workers"] == 2 and run["training"]["lr"] == "auto"  # input unchanged
    cfg = TrainingConfig.from_dict(out)
    assert (cfg.training.lr, cfg.training.batch_size, cfg.training.num_workers) == (0.003, 256, 2)
    assert resolve_auto(RUN) == RUN  # nothing to resolve: a copy
    flat = {"name": "macro", "lr": "auto", "batch_size": 64}  # the seed-003 layout
    assert resolve_auto(flat, lr_json={"suggested_lr": 0.01})["lr"] == 0.01


def test_resolve_auto_without_the_json_names_the_key():
    with pytest.raises(TrainsetError, match=r"training\.lr.*find_lr"):
        resolve_auto({"training": {"lr": "auto"}}, io_json={"best": {"batch_size": 8, "num_workers": 0}})
    with pytest.raises(TrainsetError, match=r"training\.num_workers.*tune_io"):
        resolve_auto({"training": {"num_workers": "auto"}}, lr_json={"suggested_lr": 0.1})
    with pytest.raises(TrainsetError, match=r"^lr: .*find_lr"):
        resolve_auto({"lr": "auto"})
    with pytest.raises(TrainsetError, match=r"training\.batch_size.*batch_size"):
        resolve_auto({"training": {"batch_size": "auto"}}, io_json={"best": {"num_workers": 0}})


def test_search_config_accepts_auto_lr():
    cfg = search_config({**RUN, "training": {**RUN["training"], "lr": "auto"}})
    assert cfg.training.batch_size == 32
    assert lr_search_hash(cfg) == lr_search_hash(TrainingConfig.from_dict(RUN))


def test_bad_settings_and_flat_curves():
    cfg = TrainingConfig.from_dict(RUN)
    with pytest.raises(TrainsetError, match="max_lr"):
        find_lr(cfg, "unused.h5", min_lr=1.0, max_lr=0.1)
    with pytest.raises(TrainsetError, match="steps"):
        find_lr(cfg, "unused.h5", steps=2)
    assert suggest_lr([1e-3, 1e-2, 1e-1], [1.0, 2.0, 3.0]) == (1e-3, 1e-3)  # rising from the start
    lrs = list(np.logspace(-4, 0, 9))
    assert suggest_lr(lrs, [5, 4.9, 4.5, 3, 2.5, 2.4, 2.3, 6, 20])[0] == lrs[3]


def test_rule_script(pulses, tmp_path):
    spec = importlib.util.spec_from_file_location("find_lr_script", SCRIPTS / "find_lr.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    snakemake = SimpleNamespace(
        input=SimpleNamespace(dataset=str(pulses), scalers=None),
        output=SimpleNamespace(lr=str(tmp_path / "lr.json")),
        params=SimpleNamespace(run={**RUN, "training": {**RUN["training"], "lr": "auto"}}, threads=1,
                               lr_finder={"min_lr": 1e-4, "max_lr": 0.1, "steps": 10}))
    script.main(snakemake)
    assert json.loads((tmp_path / "lr.json").read_text())["steps"] == 10 and (tmp_path / "lr.png").exists()
    snakemake.params.lr_finder = {"max_rate": 1.0}
    with pytest.raises(TrainsetError, match="max_rate"):
        script.main(snakemake)
