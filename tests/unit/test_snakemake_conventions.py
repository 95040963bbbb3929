"""The workflow keeps Snakemake's conventions, checked statically (fast): canonical params, a
conda env per rule pinned like the constraints file, log/benchmark/conda on every script rule,
config/README.md generated from the schema, the workflow catalog file. `snakemake --lint` and
`snakefmt --check` themselves run in tests/workflow/test_conventions.py and .ci/run."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from trainset import config_docs
from trainset.workflow import ORDERED_MAPPINGS, canonical

REPO = Path(__file__).resolve().parents[2]
ENV = REPO / "workflow" / "envs" / "trainset.yaml"
SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
SECTIONS = {"tables", "mixes", "datasets", "runs", "searches"}
"""Top-level sections of named entries: rules get one entry at a time, never the whole mapping."""


def test_canonical_sorts_fixed_keys_and_keeps_the_order_that_matters():
    mix = {"total": 20, "table": "t", "families": {"b": {"to_scale": True, "proportion": 0.5}, "a": {"proportion": 0.5}},
           "splits": {"method": "group", "fractions": {"train": 0.5, "test": 0.5}}, "pad_to": [64, 32]}
    same = canonical(dict(reversed(list(mix.items()))))
    assert repr(same) == repr(canonical(mix))  # Snakemake compares params by repr
    assert list(same) == ["families", "pad_to", "splits", "table", "total"]
    assert list(same["families"]) == ["b", "a"]  # the families order sets the frame order
    assert list(same["families"]["b"]) == ["proportion", "to_scale"]
    assert list(same["splits"]["fractions"]) == ["train", "test"]
    assert same["pad_to"] == [64, 32]
    assert repr(canonical({"families": {"a": 1, "b": 2}})) != repr(canonical({"families": {"b": 2, "a": 1}}))


def _user_named(node: dict, name: str | None, found: set[str]) -> None:
    """Collect the key names of every mapping whose keys the user chooses (additionalProperties)."""
    if not isinstance(node, dict):
        return
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        if name is not None and name not in SECTIONS:
            found.add(name)
        _user_named(extra, None, found)
    for key, child in (node.get("properties") or {}).items():
        _user_named(child, key, found)
    for key in ("items", "oneOf", "anyOf", "allOf"):
        children = node.get(key)
        for child in children if isinstance(children, list) else [children] if children else []:
            _user_named(child, name, found)
    for key, child in (node.get("$defs") or {}).items():
        _user_named(child, key, found)


def test_every_user_named_mapping_keeps_its_order():
    """A mapping whose keys the user names may carry order (families: the frame order); the
    canonical params keep the order of exactly those, so a new one in the schema must be listed."""
    found: set[str] = set()
    _user_named(SCHEMA, None, found)
    assert found and found <= ORDERED_MAPPINGS, f"add {sorted(found - ORDERED_MAPPINGS)} to ORDERED_MAPPINGS"


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-").replace(".", "-")


def constraints_file() -> Path:
    """The file the README's install command constrains pip with (``-c FILE``)."""
    found = re.findall(r"pip install -e \S+ -c (\S+)", (REPO / "README.md").read_text())
    assert found, "the README's install command has no -c <constraints file>"
    return REPO / found[0]


def test_the_rules_conda_env_pins_what_the_constraints_file_pins():
    """No network: the env lists every dependency in pyproject.toml at the constraints file's
    exact version, installs trainset from this checkout under the same constraints, on Python 3.11."""
    constraints = constraints_file()
    pins = {_name(line): line.strip() for line in constraints.read_text().splitlines()
            if line.strip() and not line.startswith("#")}
    env = yaml.safe_load(ENV.read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "python=3.11" in conda
    listed = {_name(p): p for p in pip if not p.startswith("-")}
    needed = {_name(r) for r in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]}
    assert set(listed) == needed
    assert listed == {n: pins[n] for n in listed}
    options = dict(p.split(maxsplit=1) for p in pip if p.startswith("-"))  # paths relative to the env file
    assert (ENV.parent / options["-c"]).resolve() == constraints.resolve()
    assert (ENV.parent / options["-e"]).resolve() == REPO


def _rule_blocks() -> list[tuple[str, str]]:
    """(file:line, text) of every rule in workflow/rules/*.smk and the Snakefile."""
    blocks = []
    for path in [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]:
        lines = path.read_text().splitlines()
        starts = [i for i, line in enumerate(lines) if re.match(r"\s*rule\b[^:]*:\s*$", line)]
        for start, end in zip(starts, [*starts[1:], len(lines)]):
            blocks.append((f"{path.name}:{start + 1}", "\n".join(lines[start:end])))
    return blocks


def test_every_script_rule_has_a_log_a_benchmark_and_the_conda_env():
    blocks = [(where, text) for where, text in _rule_blocks() if "script:" in text]
    assert len(blocks) >= 15
    for where, text in blocks:
        for directive in ("log:", "benchmark:", 'conda:\n'):
            assert directive in text, f"{where}: no {directive.strip()}"
        assert '"../envs/trainset.yaml"' in text, where


def test_config_readme_is_generated_from_the_schema():
    page = config_docs.config_readme(SCHEMA)
    assert (REPO / "config" / "README.md").read_text() == page, "stale: python -m trainset.config_docs --write"
    assert "| `mixes.<name>.families.<name>.multiplier` |" in page
    assert "## `demo`" in page


def test_the_workflow_catalog_file_describes_usage():
    catalog = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())
    assert catalog["usage"]["software-stack-deployment"]["conda"] is True
    assert "--cores" in catalog["usage"]["mandatory-flags"]["flags"]


def test_snakefmt_has_a_line_length():
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]
    assert isinstance(tool["snakefmt"]["line_length"], int)


def test_the_workflows_stored_copies_match_the_format_adapters():
    """common.smk builds its rules from trainset.workflow's plain copy of the stored copies (so
    parsing the workflow imports no adapter); it must say what the adapters say."""
    from trainset import workflow
    from trainset.io import base

    adapters = base.stored_copies()
    assert list(workflow.STORED_COPIES) == list(adapters)
    for name, copy in adapters.items():
        assert workflow.STORED_COPIES[name] == (copy.name, copy.format, copy.suffix, copy.parallel, copy.folder)
    assert (workflow.CANONICAL_FORMAT, workflow.DEFAULT_JOBS) == (base.CANONICAL_FORMAT, base.DEFAULT_JOBS)


def test_parsing_the_workflow_imports_no_heavy_library():
    """What common.smk imports when Snakemake parses the workflow and checks the config (every
    run, a no-op rerun too) pulls in no torch, pandas, xarray, matplotlib or format adapter
    (README "Reruns"). Snakemake's SLURM plugin imports pandas itself; this is the library's part."""
    import subprocess
    import sys

    common = (REPO / "workflow" / "rules" / "common.smk").read_text()
    imports = re.findall(r"^\s*from (trainset[\w.]*) import", common, re.M)  # its functions' imports too
    assert len(imports) > 5  # (``from trainset.train import workflow_config`` reads as trainset.train)
    code = (f"import sys; import {', '.join(sorted(set(imports)))}, trainset.train.workflow_config; "
            "print([m for m in ('torch', 'pandas', 'xarray', 'matplotlib', 'h5py', 'zarr', 'trainset.io') "
            "if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def common_functions(*names: str) -> dict:
    """Functions of common.smk (plain Python between the Snakemake directives), run on their own."""
    import glob
    import hashlib

    common = (REPO / "workflow" / "rules" / "common.smk").read_text()
    space = {"glob": glob, "hashlib": hashlib, "Path": Path, "LIBRARY": REPO / "src" / "trainset",
             "_LIBRARY_CODE": {}, "_FILE_SHA256": {}}
    for name in names:
        exec(re.search(rf"^def {name}\(.*?(?=\n\n\n)", common, re.M | re.S).group(0), space)
    return space


def test_a_misspelt_library_part_is_named_at_parse_time():
    """library_code("evalute") is one line naming the part, not a FileNotFoundError traceback."""
    import pytest

    space = common_functions("library_files", "library_code", "_file_sha256")
    assert len(space["library_code"]("evaluate", "plots")) == 64
    with pytest.raises(ValueError, match=r"library_code\('evalute'\): no module or package .*evalute. Fix"):
        space["library_code"]("evalute")


def test_a_validation_job_gets_ten_minutes_per_copy_it_checks():
    from types import SimpleNamespace

    space = common_functions("validation_runtime", "validated_formats", "stored_formats", "named_config")
    space.update(CANONICAL_FORMAT="netcdf", config={"mixes": {"A": {"formats": ["hdf5", "zarr", "webdataset"]}},
                                                    "datasets": {"B": {}}})
    assert space["validation_runtime"](SimpleNamespace(name="A")) == 40  # netcdf, hdf5, zarr, webdataset
    assert space["validation_runtime"](SimpleNamespace(name="B")) == 10  # the canonical copy alone


def test_a_finished_rule_leaves_its_objects_out_of_the_exit_collection(tmp_path):
    """run_rule freezes the heap once main returns (the last collection of a job that imported
    torch walks every object for ~1 s); a failed rule still exits 1 with its message. In a
    subprocess, whose freeze count starts at 0."""
    probe = ("import gc, sys, types\n"
             "from trainset.workflow import run_rule\n"
             "job = types.SimpleNamespace(log=[sys.argv[1]])\n"
             "run_rule(lambda s: print('before', gc.get_freeze_count()), job)\n"
             "print('after', gc.get_freeze_count() > 0)\n"
             "from trainset.errors import TrainsetError\n"
             "def bad(s): raise TrainsetError('x.csv: column y missing. Fix: add it')\n"
             "run_rule(bad, job)\n")
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "rule.log")], capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert done.stdout.split() == ["before", "0", "after", "True"]
    assert "x.csv: column y missing" in (tmp_path / "rule.log").read_text()
