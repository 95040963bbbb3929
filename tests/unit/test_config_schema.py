"""The code owns the run config (keys, defaults, descriptions); the schema's copy cannot drift.

Direction code -> schema: see :mod:`trainset.train.config_schema`. After changing a field of
TrainingConfig or an option of find_lr / tune_io, regenerate the schema's ``runs`` and
``tuning`` sections with ``python -m trainset.train.config_schema``.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import yaml

from trainset.train.config_schema import run_schema, tuning_schema

REPO = Path(__file__).resolve().parents[2]
FIX = "Fix: regenerate it with python -m trainset.train.config_schema"


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
