"""Hyper-parameter search: deterministic trial configs, grid order, errors naming the key, gather."""

import copy
import json
import math
import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from trainset.errors import TrainsetError
from trainset.train.config import TrainingConfig
from trainset.train.search import (gather, get_dotted, set_dotted, trial_configs, trial_names, trial_values,
                                   write_search_results)

SCRIPT = Path(__file__).resolve().parents[2] / "src" / "scripts" / "gather_search.py"

BASE = {
    "dataset": "SEQ_PULSES",
    "format": "hdf5",
    "model": {"name": "sequence", "params": {"kind": "gru", "hidden": 32, "layers": 1,
                                             "time_pooling": {"name": "max", "params": {"scale": 1.0}}}},
    "training": {"losses": [{"name": "cross_entropy", "weight": 1.0},
                            {"name": "gap_loss", "weight": 0.3, "params": {"margin": 0.2}}],
                 "epochs": 4, "batch_size": 64, "lr": 0.003, "save_every_n_epochs": 2},
}

SPACE = {
    "training.lr": {"log_uniform": [1.0e-4, 1.0e-2]},
    "training.weight_decay": {"uniform": [0.0, 0.1]},
    "model.params.hidden": {"choice": [16, 32, 64]},
    "training.batch_size": {"int_uniform": [32, 128]},
}


def random_search(trials: int = 6, **extra) -> dict:
    return {"name": "pulses_search", "run": "pulses_gru", "method": "random", "trials": trials,
            "space": copy.deepcopy(SPACE), **extra}


def test_random_trials_are_deterministic_valid_and_within_bounds():
    base = copy.deepcopy(BASE)
    first = trial_configs(base, random_search(), seed=0)
    assert first == trial_configs(BASE, random_search(), seed=0)
    assert base == BASE  # the base is never changed
    assert list(first) == [f"t{i:03d}" for i in range(6)] == trial_names(random_search())
    for trial, cfg in first.items():
        assert cfg["name"] == f"pulses_search/{trial}"
        parsed = TrainingConfig.from_dict(cfg)
        assert 1e-4 <= parsed.training.lr <= 1e-2
        assert 0.0 <= parsed.training.weight_decay <= 0.1
        assert isinstance(cfg["training"]["batch_size"], int) and 32 <= cfg["training"]["batch_size"] <= 128
        assert cfg["model"]["params"]["hidden"] in (16, 32, 64)
        # everything outside the space is the base's
        assert cfg["model"]["params"]["time_pooling"] == BASE["model"]["params"]["time_pooling"]
        assert cfg["training"]["losses"] == BASE["training"]["losses"]
        for value in (cfg["training"]["lr"], cfg["training"]["weight_decay"]):
            assert type(value) is float and value == float(f"{value:.6g}")  # 6 significant digits
        json.dumps(cfg, allow_nan=False)
    # another seed, or the search's own seed, gives other draws
    assert trial_values(random_search(), seed=1) != trial_values(random_search(), seed=0)
    assert trial_values(random_search(seed=1), seed=0) == trial_values(random_search(), seed=1)


def test_log_uniform_spreads_over_decades():
    search = {"name": "s", "trials": 300, "space": {"training.lr": {"log_uniform": [1e-5, 1e-1]}}}
    lrs = np.array([v["training.lr"] for v in trial_values(search, seed=3).values()])
    assert lrs.min() >= 1e-5 and lrs.max() <= 1e-1
    decades = np.clip(np.floor(np.log10(lrs)).astype(int), -5, -2)  # 1e-1 itself joins the top decade
    counts = np.bincount(decades + 5, minlength=4)
    assert counts.min() > 40  # ~75 a decade; uniform would put ~90% in the top one
    assert abs(np.log10(lrs).mean() - (-3.0)) < 0.25


def test_adding_trials_keeps_earlier_trials_and_other_keys():
    six = trial_configs(BASE, random_search(6), seed=7)
    ten = trial_configs(BASE, random_search(10), seed=7)
    assert {t: ten[t] for t in six} == six
    # editing one key's distribution leaves the other keys' draws alone
    edited = random_search(6)
    edited["space"]["training.weight_decay"] = {"uniform": [0.2, 0.3]}
    before, after = trial_values(random_search(6), seed=7), trial_values(edited, seed=7)
    for trial in before:
        assert before[trial]["training.lr"] == after[trial]["training.lr"]
        assert before[trial]["model.params.hidden"] == after[trial]["model.params.hidden"]
        assert 0.2 <= after[trial]["training.weight_decay"] <= 0.3


def test_grid_enumerates_the_product_in_a_stable_order():
    search = {"name": "grid", "method": "grid",
              "space": {"training.lr": [0.001, 0.01], "model.params.hidden": {"choice": [16, 32, 64]},
                        "model.params.layers": [1, 2]}}
    configs = trial_configs(BASE, search, seed=0)
    assert list(configs) == [f"t{i:03d}" for i in range(12)] == trial_names(search)
    got = [(c["model"]["params"]["hidden"], c["model"]["params"]["layers"], c["training"]["lr"])
           for c in configs.values()]
    # keys sorted (model.params.hidden, model.params.layers, training.lr), the last varying fastest
    assert got == [(h, n, lr) for h in (16, 32, 64) for n in (1, 2) for lr in (0.001, 0.01)]
    reordered = {"name": "grid", "method": "grid", "space": dict(reversed(list(search["space"].items())))}
    assert trial_configs(BASE, reordered, seed=99) == configs  # order of keys and seed do not matter


def test_dotted_keys_reach_nested_params_and_create_missing_mappings():
    cfg = {"model": {"name": "mlp"}}
    set_dotted(cfg, "model.params.time_pooling.params.scale", 2.0)
    assert cfg == {"model": {"name": "mlp", "params": {"time_pooling": {"params": {"scale": 2.0}}}}}
    assert get_dotted(cfg, "model.params.time_pooling.params.scale") == 2.0
    with pytest.raises(KeyError):
        get_dotted(cfg, "model.params.hidden")
    search = {"name": "s", "method": "grid", "space": {"model.params.time_pooling.params.scale": [0.5, 2.0]}}
    configs = trial_configs(BASE, search, seed=0)
    assert [c["model"]["params"]["time_pooling"] for c in configs.values()] == [
        {"name": "max", "params": {"scale": 0.5}}, {"name": "max", "params": {"scale": 2.0}}]
    # choices may be lists (seed 002 searched over layer sizes)
    search = {"name": "s", "trials": 4, "space": {"model.params.units": {"choice": [[128, 64], [256, 128]]}}}
    assert all(c["model"]["params"]["units"] in ([128, 64], [256, 128])
               for c in trial_configs(BASE, search, seed=0).values())


@pytest.mark.parametrize(("space", "extra", "message"), [
    ({"training.lr": {"normal": [0, 1]}}, {}, r"searches\.s\.space\.training\.lr: unknown distribution 'normal'"
                                              r".*uniform, log_uniform, int_uniform, choice"),
    ({"training.lrr": {"uniform": [0.1, 0.2]}}, {}, r"searches\.s\.space\.training\.lrr:.*unknown key 'training\.lrr'"
                                                    r".*did you mean 'lr'"),
    ({"training.lr": {"uniform": [-1.0, 1.0]}}, {}, r"searches\.s\.space\.training\.lr:.*training\.lr: must be > 0"),
    ({"training.batch_size": {"uniform": [16, 64]}}, {}, r"space\.training\.batch_size:.*expected an integer"),
    ({"training.lr": {"log_uniform": [0.0, 1.0]}}, {}, r"space\.training\.lr: log_uniform bounds must be > 0"),
    ({"training.lr": {"uniform": [0.2, 0.1]}}, {}, r"space\.training\.lr: uniform bounds .* low <= high"),
    ({"training.batch_size": {"int_uniform": [8.5, 64]}}, {}, r"space\.training\.batch_size: int_uniform bounds"),
    ({"training.lr": {"choice": []}}, {}, r"space\.training\.lr: choice needs a non-empty list"),
    ({"training.lr": 0.1}, {}, r"space\.training\.lr: expected one distribution"),
    ({"training.lr.x": [1.0]}, {}, r"space\.training\.lr\.x: .*training\.lr holds 0\.003, not a mapping"),
    ({"training.lr": {"uniform": [0.1, 0.2]}}, {"method": "grid", "trials": None},
     r"searches\.s\.space\.training\.lr: a grid search takes a list"),
    ({"training.lr": [0.1]}, {"method": "grid", "trials": 3}, r"searches\.s\.trials: a grid search runs"),
    ({"training.lr": [0.1]}, {"method": "bayes"}, r"searches\.s\.method: unknown method 'bayes'"),
    ({"training.lr": [0.1]}, {"trials": 0}, r"searches\.s\.trials: .*integer >= 1"),
    ({"training.lr": [0.1]}, {"n_iter": 30}, r"searches\.s: unknown keys \['n_iter'\]"),
    ({}, {}, r"searches\.s\.space: expected a non-empty mapping"),
])
def test_invalid_searches_name_the_search_and_key(space, extra, message):
    search = {"name": "s", "trials": 3, "space": space, **extra}
    search = {k: v for k, v in search.items() if v is not None}
    with pytest.raises(TrainsetError, match="(?s)" + message):  # messages list problems one a line
        trial_configs(BASE, search, seed=0)


def test_invalid_base_and_missing_name():
    bad = {**BASE, "training": {**BASE["training"], "epochs": 0}}
    with pytest.raises(TrainsetError, match=r"(?s)searches\.s: the base run 'r' is invalid.*training\.epochs"):
        trial_configs(bad, {"name": "s", "run": "r", "trials": 2, "space": {"training.lr": [0.1]}}, seed=0)
    with pytest.raises(TrainsetError, match="a search needs a name"):
        trial_configs(BASE, {"trials": 2, "space": {"training.lr": [0.1]}}, seed=0)
    # a name passed explicitly wins
    assert list(trial_configs(BASE, {"trials": 1, "space": {"training.lr": [0.1]}}, seed=0, name="x").values())[0][
        "name"] == "x/t000"


def _fake_trial(folder, trial, val_losses, lr, hidden):
    d = folder / trial
    d.mkdir(parents=True)
    history = [{"epoch": e + 1, "train_loss": 1.0 / (e + 1), "val_loss": v, "lr": lr, "improved": False}
               for e, v in enumerate(val_losses)]
    cfg = TrainingConfig.from_dict({**BASE, "name": f"s/{trial}",
                                    "training": {**BASE["training"], "lr": lr},
                                    "model": {"name": "sequence", "params": {"kind": "gru", "hidden": hidden}}})
    (d / "history.json").write_text(json.dumps(history))
    (d / "config.json").write_text(json.dumps(cfg.to_dict()))
    return d / "history.json", d / "config.json"


def test_gather_ranks_trials_and_writes_csv_and_json(tmp_path):
    trials = {
        "t000": _fake_trial(tmp_path, "t000", [0.9, 0.7, 0.8], 0.001, 16),
        "t001": _fake_trial(tmp_path, "t001", [0.6, 0.4, 0.5, 0.45], 0.01, 64),  # best, at epoch 2
        "t002": _fake_trial(tmp_path, "t002", [0.5, 0.55], 0.003, 32),
    }
    table = gather(trials, ["model.params.hidden", "training.lr"])
    assert list(table.columns) == ["trial", "model.params.hidden", "training.lr", "best_val_loss", "best_epoch",
                                   "final_train_loss", "epochs"]
    assert list(table["trial"]) == ["t001", "t002", "t000"]
    best = table.iloc[0]
    assert (best["model.params.hidden"], best["training.lr"]) == (64, 0.01)
    assert best["best_val_loss"] == pytest.approx(0.4) and best["best_epoch"] == 2
    assert best["final_train_loss"] == pytest.approx(0.25) and best["epochs"] == 4

    csv_path, json_path = tmp_path / "out" / "search.csv", tmp_path / "out" / "search.json"
    write_search_results(table, csv_path, json_path, search="s")
    back = pd.read_csv(csv_path)
    assert list(back["trial"]) == ["t001", "t002", "t000"]
    assert back["best_val_loss"].tolist() == pytest.approx([0.4, 0.5, 0.7])
    summary = json.loads(json_path.read_text())
    assert summary["search"] == "s" and summary["best_trial"] == "t001" and summary["n_trials"] == 3
    assert summary["best"]["best_epoch"] == 2
    assert summary["best_config"]["name"] == "s/t001"
    assert TrainingConfig.from_dict(summary["best_config"]).training.lr == 0.01
    assert [r["trial"] for r in summary["ranking"]] == ["t001", "t002", "t000"]
    assert not list((tmp_path / "out").glob(".*.tmp"))  # atomic writes leave no temporaries


def test_gather_edge_cases(tmp_path):
    trials = {"a": _fake_trial(tmp_path, "a", [float("nan")], 0.001, 16),
              "b": _fake_trial(tmp_path, "b", [0.3], 0.001, 16)}
    # json.dumps writes NaN; a trial without a finite validation loss sorts last
    table = gather(trials, ["training.lr"])
    assert list(table["trial"]) == ["b", "a"] and math.isnan(table.iloc[1]["best_val_loss"])
    summary = write_search_results(table, tmp_path / "t.csv", tmp_path / "t.json")
    assert summary["ranking"][1]["best_val_loss"] is None and summary["ranking"][1]["best_epoch"] is None
    json.loads((tmp_path / "t.json").read_text())
    with pytest.raises(TrainsetError, match="searched key 'training.gamma2' not found"):
        gather(trials, ["training.gamma2"])
    (tmp_path / "a" / "history.json").write_text("[]")
    with pytest.raises(TrainsetError, match="non-empty list of epoch records"):
        gather(trials, ["training.lr"])
    with pytest.raises(TrainsetError, match="history not found"):
        gather({"c": (tmp_path / "none.json", trials["b"][1])}, [])


def test_gather_search_script(tmp_path):
    main = runpy.run_path(str(SCRIPT), run_name="gather_search")["main"]  # the rule script, not run as __main__

    trials = {t: _fake_trial(tmp_path, t, v, 0.001, h) for t, v, h in (("t000", [0.5], 16), ("t001", [0.2], 32))}
    snakemake = SimpleNamespace(
        input=SimpleNamespace(histories=[str(trials[t][0]) for t in trials],
                              configs=[str(trials[t][1]) for t in trials]),
        params=SimpleNamespace(search="s", trials=list(trials), space=["model.params.hidden"]),
        output=SimpleNamespace(table=str(tmp_path / "r" / "s.csv"), summary=str(tmp_path / "r" / "s.json")),
        config={"searches": {"s": {"run": "r", "trials": 2, "space": {"model.params.hidden": [16, 32]}}}},
    )
    main(snakemake)
    summary = json.loads((tmp_path / "r" / "s.json").read_text())
    assert summary["best_trial"] == "t001" and summary["best"]["model.params.hidden"] == 32
    assert list(pd.read_csv(tmp_path / "r" / "s.csv").columns)[:2] == ["trial", "model.params.hidden"]
