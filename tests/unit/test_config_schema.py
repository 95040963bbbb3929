"""The code owns the run config (keys, defaults, descriptions); the schema's copy cannot drift.

Direction code -> schema: see :mod:`trainset.train.config_schema`. After changing a field of
TrainingConfig or an option of find_lr / tune_io, regenerate the schema's ``runs`` and
``tuning`` sections with ``python -m trainset.train.config_schema --write``.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from trainset.train.config_schema import run_schema, tuning_schema

REPO = Path(__file__).resolve().parents[2]
FIX = "Fix: regenerate it with python -m trainset.train.config_schema --write"


def _schema():
    return yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())["properties"]


def test_the_run_schema_is_the_one_the_code_generates():
    assert _schema()["runs"]["additionalProperties"] == run_schema(), f"runs: the schema drifted. {FIX}"


def test_the_tuning_schema_is_the_one_the_code_generates():
    assert _schema()["tuning"] == tuning_schema(), f"tuning: the schema drifted. {FIX}"


def test_the_torch_free_names_match_the_registries():
    from trainset.models import MODELS
    from trainset.train.losses import LOSSES, PENALTIES
    from trainset.train.names import LOSS_PARAMS, MODEL_NAMES, PENALTY_PARAMS

    def keyword(fn):
        return tuple(n for n, p in inspect.signature(fn).parameters.items() if p.kind == p.KEYWORD_ONLY)

    assert sorted(MODEL_NAMES) == sorted(MODELS)
    assert {n: keyword(f) for n, f in LOSSES.items()} == LOSS_PARAMS
    assert {n: keyword(f) for n, f in PENALTIES.items()} == PENALTY_PARAMS


def test_the_auto_placeholders_are_the_defaults():
    from trainset.train.auto import AUTO_KEYS, placeholder, with_placeholders
    from trainset.train.config import TrainingSection

    for key in AUTO_KEYS:
        assert placeholder(key) == getattr(TrainingSection(), key)
    run = {"training": {"lr": "auto", "batch_size": " Auto", "epochs": 2}, "lr": "auto"}
    assert with_placeholders(run) == {"training": {"lr": 1e-3, "batch_size": 64, "epochs": 2}, "lr": 1e-3}
    assert with_placeholders(run, keys=("lr",))["training"]["batch_size"] == " Auto"


def test_start_up_checks_do_not_import_torch():
    code = ("import sys, trainset.train.config, trainset.train.auto, trainset.train.search; "
            "from trainset.train.config import TrainingConfig; "
            "TrainingConfig.from_dict({'dataset': 'x', 'model': {'name': 'sequence'}, "
            "'training': {'losses': [{'name': 'gap_loss', 'params': {'margin': 0.1}}]}}); "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_the_search_schema_is_the_one_the_code_generates():
    from trainset.train.config_schema import search_schema
    from trainset.train.search import _SEARCH_KEYS

    assert _schema()["searches"]["additionalProperties"] == search_schema(), f"searches: the schema drifted. {FIX}"
    assert set(search_schema()["properties"]) == set(_SEARCH_KEYS) - {"name"}


def _validate(run_config):
    """Validate a workflow config holding ``runs`` (and ``searches``) against the schema, as
    Snakemake's ``validate`` does at start-up; returns the error messages."""
    import jsonschema

    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    sub = {"$defs": schema.get("$defs", {}), "type": "object", "additionalProperties": False,
           "properties": {k: schema["properties"][k] for k in ("runs", "searches", "tuning")}}
    validator = jsonschema.Draft202012Validator(sub)
    return [e.message for e in validator.iter_errors(run_config)]


def test_a_typo_under_a_run_or_search_is_caught_by_the_schema():
    good = {"runs": {"r": {"dataset": "D", "training": {"lr": "1e-3", "batch_size": "auto", "epochs": 2},
                           "model": {"name": "sequence", "time_pooling": "max"}, "data": {"target_seq_len": 8}},
                     "flat003": {"dataset": "D", "lr": 1e-4, "loss_fn": "mae", "checkpoint_dir": "runs/x"},
                     "flat002": {"dataset": "D", "learning_rate": 1e-3, "l1_lambda": "1e-9",
                                 "deep_hidden_units": [8]}},
            "searches": {"s": {"run": "r", "method": "random", "trials": 2,
                               "space": {"training.lr": {"log_uniform": [1e-4, 1e-2]}}}}}
    assert _validate(good) == []
    assert any("trainig" in m for m in _validate({"runs": {"x": {"dataset": "D", "trainig": {}}}}))
    assert any("lr_max" in m for m in _validate({"runs": {"x": {"dataset": "D", "training": {"lr_max": 1}}}}))
    assert any("epochs" in m or "integer" in m
               for m in _validate({"runs": {"x": {"dataset": "D", "training": {"epochs": 2.5}}}}))
    assert any("trails" in m for m in _validate({"searches": {"s": {"run": "r", "trails": 3, "space": {}}}}))
    tuning = {"lr_finder": {"min_lr": "1e-7", "steps": 5}, "io_tuner": {"batch_sizes": [8], "seconds": 0.5,
                                                                          "samples_per_member": None}}
    assert _validate({"tuning": tuning}) == []
    assert any("min_lrr" in m for m in _validate({"tuning": {"lr_finder": {"min_lrr": 1e-7}}}))
    assert any("worker" in m for m in _validate({"tuning": {"io_tuner": {"worker": [0]}}}))
    assert any("integer" in m for m in _validate({"tuning": {"lr_finder": {"steps": "many"}}}))


def test_tuning_float_options_are_coerced_like_run_fields():
    from trainset.errors import TrainsetError
    from trainset.train.coerce import coerce_options
    from trainset.train.lr_finder import find_lr

    options = coerce_options(find_lr, {"min_lr": "1e-7", "steps": 5}, "tuning.lr_finder")
    assert options == {"min_lr": 1e-7, "steps": 5} and isinstance(options["min_lr"], float)
    with pytest.raises(TrainsetError, match="tuning.lr_finder.max_lr"):
        coerce_options(find_lr, {"max_lr": "big"}, "tuning.lr_finder")
