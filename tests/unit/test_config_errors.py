"""Config errors a person can act on: one short line per schema problem (key path, value, what is
allowed, a did-you-mean), YAML syntax errors with file, line and column, and a missing input file
named by its config key; the workflow prints these instead of the whole schema."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from trainset.config_errors import check_config, load_schema, load_yaml, missing_paths, schema_problems
from trainset.errors import TrainsetError

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


@pytest.fixture(scope="module")
def defaults():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


@pytest.fixture(scope="module")
def schema():
    return load_schema(SCHEMA)


def test_defaults_fit(defaults, schema):
    assert schema_problems(defaults, schema) == []


def test_misspelt_keys_suggest_the_right_one(defaults, schema):
    cfg = copy.deepcopy(defaults)
    cfg["mixs"] = {"A": {}}
    mix = next(iter(cfg["mixes"]))
    cfg["mixes"][mix]["pad_too"] = 3
    top, nested = schema_problems(cfg, schema)  # ordered by key path: the top level first
    assert nested.startswith(f"mixes.{mix}.pad_too: unknown key (value 3) (did you mean 'pad_to'?). Allowed keys")
    assert "pad_to" in nested.split("Allowed keys")[1]
    assert top.startswith("mixs: unknown key") and "did you mean 'mixes'?" in top and "mixs" not in cfg.get("mixes", {})  # the config itself is not changed


def test_values_name_what_is_allowed(defaults, schema):
    cfg = copy.deepcopy(defaults)
    cfg["seed"] = -1
    dataset = next(iter(cfg["datasets"]))
    cfg["datasets"][dataset]["domain"] = "sequnces"
    cfg["tables"]["both"] = {"path": "a.csv", "demo": "flu"}
    problems = schema_problems(cfg, schema)
    assert f"datasets.{dataset}.domain: 'sequnces' is not allowed (did you mean 'sequences'?). Allowed: sequences, " \
           "flights, macro" in problems
    assert any(p.startswith("seed: -1 is not allowed") and ">= 0" in p for p in problems)
    assert "tables.both: needs exactly one of the keys path, demo; found path, demo" in problems


def test_check_config_is_short(defaults):
    cfg = copy.deepcopy(defaults)
    cfg["mixs"] = {}
    with pytest.raises(TrainsetError) as error:
        check_config(cfg, SCHEMA, source="my.yaml")
    message = str(error.value)
    assert message.startswith("my.yaml does not fit the config schema") and len(message.splitlines()) <= 4


def test_yaml_syntax_error_names_file_line_and_column(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("seed: 3\nmixes:\n  a: [1,\n  b: 2\n")
    with pytest.raises(TrainsetError, match=rf"^{path}:\d+:\d+: YAML syntax error"):
        load_yaml(path)
    tab = tmp_path / "tab.yaml"
    tab.write_text("mixes:\n\tA: 1\n")
    with pytest.raises(TrainsetError, match=rf"^{tab}:2:1: "):
        load_yaml(tab)


def test_missing_paths_name_the_key_and_the_folder(tmp_path):
    (tmp_path / "here.csv").write_text("x\n")
    cfg = {"tables": {"mine": {"path": "data/mine.csv"}, "ok": {"path": "here.csv"}, "demo": {"demo": "flu"},
                      "remote": {"path": "s3://bucket/t.csv"}},
           "mixes": {"M": {"scaling_distribution": {"path": "peaks.txt"}}},
           "datasets": {"D": {"files": {"sitedays": str(tmp_path / "none.parquet")}}}}
    problems = missing_paths(cfg, tmp_path)
    assert len(problems) == 3
    assert problems[0].startswith("tables.mine.path: 'data/mine.csv' does not exist") and str(tmp_path) in problems[0]
    assert "relative to the working directory" in problems[0] and "--directory" in problems[0]
    assert problems[1].startswith("mixes.M.scaling_distribution.path") and "absolute" in problems[2]


def _dry_run(tmp_path: Path, overlay: str) -> subprocess.CompletedProcess:
    config = tmp_path / "my.yaml"
    config.write_text(overlay)
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path / "wd"),
               "--configfile", str(config), "-n", "--cores", "1"]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ})


@pytest.mark.workflow
def test_workflow_prints_one_short_message_for_a_typo(tmp_path):
    result = _dry_run(tmp_path, "mixs:\n  A: {}\n")
    text = result.stdout + result.stderr
    assert result.returncode != 0 and "mixs: unknown key" in text and "did you mean 'mixes'?" in text
    assert len(text.splitlines()) < 15, text  # was about 1,060 lines (the whole schema and config)


@pytest.mark.workflow
def test_workflow_names_the_key_of_a_missing_table(tmp_path):
    result = _dry_run(tmp_path, "tables:\n  mine: {path: data/mine.csv}\n")
    text = result.stdout + result.stderr
    assert result.returncode != 0 and "tables.mine.path: 'data/mine.csv' does not exist" in text
    assert f"relative to the working directory {tmp_path / 'wd'}" in text


@pytest.mark.parametrize("config_file", ["config/config.yaml", "config/test/config.yaml"])
def test_fill_and_check_fills_the_defaults_snakemake_fills(config_file):
    """The workflow's one-pass check (common.smk's check_schema) leaves the config Snakemake's
    ``validate(set_default=True)`` would, and refuses a bad one with the short message (the test
    config as the workflow sees it: merged over the defaults)."""
    from snakemake.utils import validate

    from trainset.config_errors import fill_and_check, merge_overlays

    defaults = yaml.safe_load((REPO / "config/config.yaml").read_text())
    raw = merge_overlays(defaults, [yaml.safe_load((REPO / config_file).read_text())], [config_file])
    ours, theirs = copy.deepcopy(raw), copy.deepcopy(raw)
    fill_and_check(ours, SCHEMA, source=config_file)
    validate(theirs, str(SCHEMA), set_default=True)
    assert ours == theirs and ours != raw
    ours["seed"] = -1
    with pytest.raises(TrainsetError, match=rf"^{config_file} does not fit the config schema .*\n  - seed: -1"):
        fill_and_check(ours, SCHEMA, source=config_file)
