"""Snakemake's conventions and the start-up messages, on dry runs (no job runs): the linter and
snakefmt pass, your own data without the demo is a handful of jobs, nulling a default mix or
dataset removes what was built on it, and a run outside the repository without --configfile
says it is building the bundled demo."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.workflow

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--cores", "1", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=workdir.parent, timeout=300,
                          env={**os.environ, "SOURCE_DATE_EPOCH": "1764000000"})


def planned_jobs(result: subprocess.CompletedProcess) -> dict[str, int]:
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    table = (result.stdout + result.stderr).split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_snakemake_lint_is_clean():
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "--cores", "1"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


def test_snakefmt_check_is_clean():
    result = subprocess.run([str(BIN / "snakefmt"), "--check", "Snakefile", "workflow/"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_minimal_config_builds_only_your_mix(tmp_path):
    """config/minimal.yaml (demo: false): one table and one mix are 7 jobs, no demo entry."""
    workdir = tmp_path / "work"
    (workdir / "data").mkdir(parents=True)
    (workdir / "data" / "combined.csv").write_text(  # a dry run reads no table, it only needs one there
        "datasetH1,datasetH2,sample,fluseason,location_code,season_week,value,week_enddate\n")
    jobs = planned_jobs(snakemake(workdir, "--configfile", str(REPO / "config/minimal.yaml"), "-n"))
    assert jobs == {"ingest_table": 1, "build_frames": 1, "write_netcdf": 1, "make_splits": 1, "plot_frames": 1,
                    "validate_dataset": 1, "all": 1}


def test_nulling_a_default_dataset_removes_its_runs_and_searches(tmp_path):
    config = tmp_path / "null.yaml"
    config.write_text(yaml.safe_dump({"datasets": {"SEQ_PULSES": None}, "mixes": {"SURV_ONLY": None}}))
    result = snakemake(tmp_path / "work", "--configfile", str(config), "-n")
    jobs = planned_jobs(result)
    assert "runs ['pulses_gru', 'flu_diffusion'], searches ['pulses_search']" in result.stderr
    assert "train_trial" not in jobs and jobs["train_model"] == 3


def test_a_run_of_yours_on_a_nulled_dataset_is_refused_by_name(tmp_path):
    config = tmp_path / "null.yaml"
    config.write_text(yaml.safe_dump({"datasets": {"SEQ_PULSES": None},
                                      "runs": {"mine": {"dataset": "SEQ_PULSES", "model": {"name": "sequence"}}}}))
    result = snakemake(tmp_path / "work", "--configfile", str(config), "-n")
    assert result.returncode != 0
    assert "runs.mine.dataset: 'SEQ_PULSES' is not a mix or dataset" in result.stdout + result.stderr


def test_outside_the_repository_without_configfile_says_it_builds_the_demo(tmp_path):
    result = snakemake(tmp_path / "work", "-n", "results/tables/flu_demo.parquet")
    assert result.returncode == 0, result.stderr[-3000:]
    ours = [line for line in result.stderr.splitlines() if not line.startswith("Using workflow specific profile")]
    assert ours[0].startswith("trainset: no --configfile given: building the bundled demo")
