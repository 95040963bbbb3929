"""The Snakemake workflow end to end on a tiny config, run from a temporary folder the way
users of a deployed workflow run it (-s path/to/Snakefile --directory DIR --configfile ...).

The workflow is copied to a temporary folder first, so tests can edit its library files to
check what reruns without touching the checkout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import pytest
import xarray as xr
import yaml

pytestmark = pytest.mark.workflow

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
TINY = yaml.safe_load((REPO / "config/test/config.yaml").read_text())
OUTPUTS = [
    "results/tables/tiny.parquet",
    "results/frames/TINY_A.parquet",
    "results/frames/TINY_A.summary.json",
    "results/datasets/TINY_A/TS_TINY_A.nc",
    "results/datasets/TINY_B/TS_TINY_B.nc",
    "results/plots/TINY_A_us_grid.png",
    "results/plots/TINY_B_us_grid.png",
    "results/datasets/TINY_B/splits.json",
    "results/datasets/TINY_B/TS_TINY_B.h5",
    "results/datasets/TINY_B/TS_TINY_B.zarr",
    "results/datasets/TINY_B/TS_TINY_B-wds",
    "results/datasets/TINY_B/validation/webdataset.json",
    "results/datasets/T_PULSES/TS_T_PULSES.h5",
    "results/datasets/T_PULSES/TS_T_PULSES.presplit.h5",
    "results/datasets/T_FLIGHTS/TS_T_FLIGHTS-wds",
    "results/datasets/T_MACRO/TS_T_MACRO.zarr",
    "results/datasets/T_MACRO/validation/zarr.json",
    "results/scalers/T_MACRO.json",
    "results/models/t_pulses/final.pt",
    "results/models/t_pulses/epoch_2.pt",
    "results/models/t_flights/history.json",
    "results/models/t_diffusion/final.pt",
]


def copy_workflow(target: Path) -> Path:
    target.mkdir(parents=True)
    for name in ("Snakefile", "workflow", "config", "src", "profiles"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, target / name)
    return target / "Snakefile"


def snakemake(snakefile: Path, workdir: Path, configfile: Path, *args: str, env: dict | None = None):
    command = [*SNAKEMAKE, "-s", str(snakefile), "--directory", str(workdir), "--configfile", str(configfile),
               "--cores", "2", *args]
    environment = {**os.environ, "SOURCE_DATE_EPOCH": "1764000000", **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)


def data_files(path: Path) -> list[Path]:
    """The file itself, or every file below a folder except Snakemake's directory marker."""
    if path.is_file():
        return [path]
    return [p for p in sorted(path.rglob("*")) if p.is_file() and p.name != ".snakemake_timestamp"]


def any_bytes(path: Path) -> bool:
    files = data_files(path)
    return bool(files) and all(p.stat().st_size > 0 for p in files)


def tree_bytes(path: Path) -> dict[str, bytes]:
    """Every file below ``path`` (or the file itself) by relative name."""
    return {str(p.relative_to(path)) if p != path else "": p.read_bytes() for p in data_files(path)}


def planned_jobs(result) -> dict[str, int]:
    """Rule -> job count from a dry run's 'Job stats' table."""
    assert result.returncode == 0, result.stdout + result.stderr
    text = result.stdout + result.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One full run of the tiny config; returns (snakefile, workdir, configfile)."""
    root = tmp_path_factory.mktemp("workflow")
    snakefile = copy_workflow(root / "repo")
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY, sort_keys=False))
    workdir = root / "work"
    result = snakemake(snakefile, workdir, config, env={"PYTHONHASHSEED": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return snakefile, workdir, config


def test_outputs_exist_in_the_working_directory(run):
    _, workdir, _ = run
    for output in OUTPUTS:
        assert (workdir / output).exists() and any_bytes(workdir / output), output
    assert not (workdir / "results/datasets/SURV_ONLY").exists()


def test_dataset_layout_and_attributes(run):
    _, workdir, _ = run
    with xr.open_dataset(workdir / "results/datasets/TINY_A/TS_TINY_A.nc") as ds:
        frames = ds["frames"]
        assert frames.dims == ("sample", "feature", "season_week", "place")
        assert frames.dtype == np.float32
        assert frames.shape[1:] == (1, 53, 51)
        assert list(frames["place"].values[:3]) == ["01", "02", "04"]
        attrs = frames.attrs
        assert json.loads(attrs["mix_cfg"])["families"]["fluview"]["multiplier"] == 1
        assert attrs["seed"] == 3 and len(attrs["input_table_sha256"]) == 64
        assert attrs["creation_date"] == "2025-11-24" and attrs["trainset_version"]
        assert len(attrs["main_origins"]) == frames.sizes["sample"]
        assert str(frames["origin"].values[0]).startswith("fluview/fluview/2010/0#0")
        assert np.isfinite(frames.values).all() and (frames.values >= 0).all()
    with xr.open_dataset(workdir / "results/datasets/TINY_B/TS_TINY_B.nc") as ds:
        assert ds["frames"].shape == (20, 1, 64, 64)
        assert (ds["frames"].values[:, :, 53:, :] == 0).all()
        assert ds["frames"].encoding["chunksizes"][0] == 5  # format_options.netcdf of the mix
    with xr.open_dataset(workdir / "results/datasets/T_SUMMARY/TS_T_SUMMARY.nc") as ds:
        assert ds["data"].encoding["chunksizes"][0] == 7 and ds["data"].encoding["complevel"] == 4


def test_summary_reports_realised_shares(run):
    _, workdir, _ = run
    summary = json.loads((workdir / "results/frames/TINY_B.summary.json").read_text())
    assert summary["frames"] == 20
    for family in ("flepiR1", "SMH_R4-R5"):
        assert summary["families"][family]["frames"] == 10
        assert summary["families"][family]["share_realised"] == summary["families"][family]["share_target"] == 0.5
    assert summary["table"]["dropped_places"]["US"] > 0


def test_noop_rerun_does_nothing(run):
    assert planned_jobs(snakemake(*run, "-n")) == {}


def test_changing_one_mix_reruns_only_that_mix(run, tmp_path):
    snakefile, workdir, _ = run
    changed = yaml.safe_load(yaml.safe_dump(TINY, sort_keys=False))
    changed["mixes"]["TINY_B"]["families"]["flepiR1"]["proportion"] = 0.25
    changed["mixes"]["TINY_B"]["families"]["SMH_R4-R5"]["proportion"] = 0.75
    config = tmp_path / "changed.yaml"
    config.write_text(yaml.safe_dump(changed, sort_keys=False))
    jobs = planned_jobs(snakemake(snakefile, workdir, config, "-n"))
    downstream = {"make_splits": 1, "write_hdf5": 1, "write_zarr": 1, "write_dataset_job": 6, "write_webdataset": 1,
                  "validate_dataset": 1,  # one job checks every stored copy of TINY_B
                  "fit_scalers": 1, "train_model": 1, "evaluate_model": 1, "report_index": 1}
    assert jobs == {"build_frames": 1, "write_netcdf": 1, "plot_frames": 1, **downstream, "all": 1}


def test_editing_a_stage_module_reruns_that_stage_and_downstream(run):
    snakefile, workdir, config = run
    module = snakefile.parent / "src/trainset/mixing/build.py"
    original = module.read_text()
    try:
        module.write_text(original + "\n# an edit\n")
        jobs = planned_jobs(snakemake(snakefile, workdir, config, "-n"))
        formats = {"write_hdf5": 1, "write_zarr": 1, "write_dataset_job": 6, "write_webdataset": 1}
        assert jobs == {"build_frames": 2, "write_netcdf": 2, "plot_frames": 2, "make_splits": 2, **formats,
                        "validate_dataset": 2, "fit_scalers": 1, "train_model": 1, "evaluate_model": 1,
                        "report_index": 1, "all": 1}
    finally:
        module.write_text(original)
    assert planned_jobs(snakemake(snakefile, workdir, config, "-n")) == {}


@pytest.fixture(scope="module")
def single_core_run(run, tmp_path_factory):
    """The tiny config again on one core, with another hash seed: (workdir, Snakemake's log)."""
    snakefile, _, config = run
    other = tmp_path_factory.mktemp("again")
    result = snakemake(snakefile, other, config, "--cores", "1", env={"PYTHONHASHSEED": "4242"})
    assert result.returncode == 0, result.stderr[-3000:]
    return other, result.stdout + result.stderr


def test_byte_identical_across_runs_hash_seeds_and_cores(run, single_core_run):
    workdir, other = run[1], single_core_run[0]
    for output in OUTPUTS:
        assert tree_bytes(workdir / output) == tree_bytes(other / output), output


def test_the_heaviest_run_is_started_first(single_core_run):
    """Priorities (workflow/rules/common.smk) under the default profile's greedy scheduler: on one
    core the generative run's data chain, training and evaluation are the first seven jobs, before
    the other runs' data and jobs and before every leaf (validation, plots)."""
    assert "workflow specific profile" in single_core_run[1] and "profiles/default" in single_core_run[1]
    started = re.findall(r"^Job \d+: (.+)$", single_core_run[1], re.M)
    assert started[:7] == ["Validating table tiny", "Mixing frames of TINY_B", "Writing the NetCDF dataset of TINY_B",
                           "Splitting TINY_B into train/val/test", "Fitting the scalers of TINY_B on its training split",
                           "Training run t_diffusion", "Evaluating run t_diffusion"]


def test_every_format_yields_the_same_samples_and_splits(run):
    import json as _json

    import trainset

    _, workdir, _ = run
    folder = workdir / "results/datasets/TINY_B"
    splits = _json.loads((folder / "splits.json").read_text())["splits"]
    assert sorted(splits) == ["test", "train"] and all(splits.values())
    reference = trainset.open_dataset(folder / "TS_TINY_B.nc", split="test")
    want = [reference[i] for i in range(len(reference))]
    for name in ("TS_TINY_B.h5", "TS_TINY_B.zarr", "TS_TINY_B-wds"):
        dataset = trainset.open_dataset(folder / name, split="test")
        iterable = isinstance(dataset, torch.utils.data.IterableDataset)
        got = list(dataset) if iterable else [dataset[i] for i in range(len(dataset))]
        assert [int(s["index"]) for s in got] == splits["test"]
        for a, b in zip(want, got):
            assert set(a) == set(b)
            assert all(np.array_equal(np.asarray(a[k]), np.asarray(b[k])) for k in a)
    report = _json.loads((folder / "validation/zarr.json").read_text())
    assert report["valid"] and report["task"] == "frames"


def test_every_domain_dataset_is_built_and_valid(run):
    import json as _json

    import trainset

    _, workdir, _ = run
    for name, cfg in TINY["datasets"].items():
        if cfg is None:
            continue
        folder = workdir / "results/datasets" / name
        for fmt in ["netcdf", *cfg["formats"]]:
            report = _json.loads((folder / "validation" / f"{fmt}.json").read_text())
            assert report["valid"], (name, fmt, report)
    pulses = trainset.open_dataset(workdir / "results/datasets/T_PULSES/TS_T_PULSES.presplit.h5", split="train")
    assert pulses[0]["data"].shape == (32, 1) and pulses[0]["labels"].dtype == torch.int64
    splits = _json.loads((workdir / "results/datasets/T_MACRO/splits.json").read_text())["splits"]
    assert all(splits[k] for k in ("test_extrapolation_slice", "test_extrapolation_corner"))
    flights = trainset.open_dataset(workdir / "results/datasets/T_FLIGHTS/TS_T_FLIGHTS-wds", split="val")
    days = {int(sample["date"]) for sample in flights}
    train = trainset.open_dataset(workdir / "results/datasets/T_FLIGHTS/TS_T_FLIGHTS-wds", split="train")
    assert days and not days & {int(sample["date"]) for sample in train}


def test_training_runs_write_checkpoints_with_hashes(run):
    import json as _json

    from trainset.train.trainer import checkpoint_meta, load_checkpoint

    _, workdir, _ = run
    for name in ("t_pulses", "t_flights", "t_macro", "t_diffusion"):
        folder = workdir / "results/models" / name
        history = _json.loads((folder / "history.json").read_text())
        assert history and all(np.isfinite(h["val_loss"]) for h in history), name
        meta = checkpoint_meta(load_checkpoint(folder / "final.pt"))
        assert len(meta["dataset_sha256"]) == 64 and len(meta["scaler_sha256"]) == 64, name
    macro = checkpoint_meta(load_checkpoint(workdir / "results/models/t_macro/final.pt"))
    assert sorted(macro["worlds"]) == ["lss", "nk", "var", "var_us"]
    lr = _json.loads((workdir / "results/tuning/t_pulses/lr.json").read_text())["suggested_lr"]
    assert _json.loads((workdir / "results/models/t_pulses/config.json").read_text())["training"]["lr"] == lr
    io = _json.loads((workdir / "results/tuning/t_macro/io.json").read_text())["best"]
    assert _json.loads((workdir / "results/models/t_macro/config.json").read_text())["training"]["batch_size"] == io["batch_size"]
    search = _json.loads((workdir / "results/search/t_search/summary.json").read_text())
    assert search["n_trials"] == 2 and search["best_trial"] in {"t000", "t001"}


def test_every_run_has_a_report_and_the_index_links_them(run):
    import json as _json
    import zipfile

    snakefile, workdir, config = run
    runs = [name for name, cfg in TINY["runs"].items() if cfg is not None]
    index = (workdir / "results/reports/index.html").read_text()
    for name in runs:
        metrics = _json.loads((workdir / "results/reports" / name / "metrics.json").read_text())
        assert metrics["split"] in ("test", "val") and metrics["metrics"]["headline"], name
        page = (workdir / "results/reports" / name / "report.html").read_text()
        assert "data:image/png;base64," in page and "<table" in page, name
        assert f"{name}/report.html" in index
    result = snakemake(snakefile, workdir, config, "--report", str(workdir / "report.zip"))
    assert result.returncode == 0, result.stderr[-2000:]
    names = zipfile.ZipFile(workdir / "report.zip").namelist()
    assert any(n.endswith("report.html") for n in names)


def test_export_copies_to_the_dated_name(run):
    snakefile, workdir, config = run
    result = snakemake(snakefile, workdir, config, "export")
    assert result.returncode == 0, result.stderr[-3000:]
    exported = workdir / "results/export/TS_TINY_A_2025-11-24.nc"
    assert exported.read_bytes() == (workdir / "results/datasets/TINY_A/TS_TINY_A.nc").read_bytes()


def test_bad_table_fails_cleanly_without_outputs(tmp_path):
    raw = tmp_path / "work" / "data" / "bad.csv"
    raw.parent.mkdir(parents=True)
    raw.write_text(
        "datasetH1,datasetH2,sample,fluseason,location_code,season_week,value,week_enddate\n"
        "fluview,fluview,0,2015,06,1,-3.0,2015-08-01\n"
    )
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({
        "tables": {"flu_demo": None, "mine": {"path": "data/bad.csv"}},
        "datasets": {name: None for name in yaml.safe_load((REPO / "config/config.yaml").read_text())["datasets"]},
        "runs": {name: None for name in yaml.safe_load((REPO / "config/config.yaml").read_text())["runs"]},
        "searches": {name: None for name in yaml.safe_load((REPO / "config/config.yaml").read_text())["searches"]},
        "mixes": {"SURV_ONLY": None, "MIX_70S30M": None,
                  "M": {"table": "mine", "families": {"fluview": {"multiplier": 1}}}},
    }))  # fmt: skip
    result = snakemake(REPO / "Snakefile", tmp_path / "work", config)
    assert result.returncode != 0
    log = (tmp_path / "work/results/logs/ingest_table/mine.log").read_text()
    assert "data/bad.csv" in log and "column 'value'" in log and "negative" in log
    assert "Traceback" not in log
    assert not (tmp_path / "work/results/tables").exists() or not any((tmp_path / "work/results/tables").iterdir())


def test_wrong_config_key_is_refused_with_its_name(tmp_path):
    config = tmp_path / "typo.yaml"
    config.write_text(yaml.safe_dump({"mixes": {"SURV_ONLY": {"pad_too": [64, 64]}}}))
    result = snakemake(REPO / "Snakefile", tmp_path / "work", config, "-n")
    assert result.returncode != 0
    output = result.stderr + result.stdout
    assert "mixes.SURV_ONLY.pad_too: unknown key (value [64, 64]) (did you mean 'pad_to'?)" in output
    assert "Failed validating" not in output  # one line, not Snakemake's dump of the schema (trainset.config_errors)


def refused_at_start_up(tmp_path: Path, user_config: dict) -> str:
    """Snakemake's output for a dry run of ``user_config``, checked to have failed before any
    job wrote anything."""
    config = tmp_path / "user.yaml"
    config.write_text(yaml.safe_dump(user_config))
    result = snakemake(REPO / "Snakefile", tmp_path / "work", config, "-n")
    assert result.returncode != 0
    assert not (tmp_path / "work/results").exists()
    return result.stderr + result.stdout


def test_mix_arithmetic_is_refused_at_start_up(tmp_path):
    """Proportions over 1 are refused before any job runs, naming the mix and the numbers."""
    output = refused_at_start_up(tmp_path, {"mixes": {"MIX_70S30M": {"families": {"fluview": {"proportion": 0.8}}}}})
    assert "mixes.MIX_70S30M: proportions" in output and "sum to 1.43, more than 1" in output


def test_past_family_without_past_seasons_is_refused_at_start_up(tmp_path):
    """plots.past_family with plots.past_seasons 0 (no overlay) would be ignored: refused, naming both."""
    output = refused_at_start_up(tmp_path, {"plots": {"past_family": "fluview"}})
    assert "plots.past_family: 'fluview' is set but plots.past_seasons is 0" in output


def test_sample_steps_above_a_diffusion_runs_steps_are_refused_at_start_up(tmp_path):
    """evaluate_model would refuse them only after training: the run and the fix are named first."""
    output = refused_at_start_up(tmp_path, {"runs": {"flu_diffusion": {"model": {"params": {"steps": 8}}}}})
    assert ("runs.flu_diffusion.model.params.steps: 8 diffusion steps, fewer than evaluation.sample_steps (25)"
            in output) and "Fix: set evaluation.sample_steps to at most 8" in output


def test_changing_sample_steps_reruns_only_the_generative_evaluation(run, tmp_path):
    """Runs that draw no frames get None for the sampling settings, so their params stay."""
    snakefile, workdir, _ = run
    changed = yaml.safe_load(yaml.safe_dump(TINY, sort_keys=False))
    changed["evaluation"] = {**changed.get("evaluation", {}), "sample_steps": 10, "generated_frames": 4}
    config = tmp_path / "steps.yaml"
    config.write_text(yaml.safe_dump(changed, sort_keys=False))
    result = snakemake(snakefile, workdir, config, "-n")
    assert planned_jobs(result) == {"evaluate_model": 1, "report_index": 1, "all": 1}
    assert "Evaluating run t_diffusion" in result.stdout + result.stderr


def reordered(value, key=None):
    """``value`` with the keys of every mapping reversed, except where order is meaning
    (trainset.workflow.ORDERED_MAPPINGS, e.g. families)."""
    from trainset.workflow import ORDERED_MAPPINGS

    if isinstance(value, dict):
        items = list(value.items()) if key in ORDERED_MAPPINGS else list(reversed(value.items()))
        return {k: reordered(v, k) for k, v in items}
    return [reordered(v) for v in value] if isinstance(value, list) else value


def test_reordered_config_keys_rerun_nothing(run, tmp_path):
    """Params compare in a canonical form: key order that changes no output reruns nothing."""
    snakefile, workdir, _ = run
    config = tmp_path / "reordered.yaml"
    config.write_text(yaml.safe_dump(reordered(TINY), sort_keys=False))
    assert planned_jobs(snakemake(snakefile, workdir, config, "-n")) == {}


def test_changing_zarr_options_reruns_only_the_zarr_writer(run, tmp_path):
    snakefile, workdir, _ = run
    changed = yaml.safe_load(yaml.safe_dump(TINY, sort_keys=False))
    changed["mixes"]["TINY_B"]["format_options"]["zarr"]["chunk"] = 4
    config = tmp_path / "zarr.yaml"
    config.write_text(yaml.safe_dump(changed, sort_keys=False))
    jobs = planned_jobs(snakemake(snakefile, workdir, config, "-n"))
    assert jobs == {"write_dataset_job": 2, "write_zarr": 1, "validate_dataset": 1, "all": 1}


def test_one_job_is_written_by_the_gather_rule_with_the_same_bytes(run, tmp_path):
    """With ``jobs: 1`` (the default) the gather rule writes the one job itself, in a scratch
    folder it removes: no write_dataset_job, and the bytes of two jobs. A scratch folder a
    killed one-job writer left is removed by the next writer of that output, one job or several."""
    snakefile, workdir, _ = run
    changed = yaml.safe_load(yaml.safe_dump(TINY, sort_keys=False))
    for fmt in ("hdf5", "zarr", "webdataset"):
        changed["mixes"]["TINY_B"]["format_options"][fmt]["jobs"] = 1
    config = tmp_path / "one_job.yaml"
    config.write_text(yaml.safe_dump(changed, sort_keys=False))
    jobs = planned_jobs(snakemake(snakefile, workdir, config, "-n"))
    assert jobs == {"write_hdf5": 1, "write_zarr": 1, "write_webdataset": 1, "validate_dataset": 1, "all": 1}
    other = tmp_path / "work"
    shutil.copytree(workdir, other, symlinks=True)  # copy2 keeps the mtimes: only the writers rerun
    names = ["TS_TINY_B.h5", "TS_TINY_B.zarr", "TS_TINY_B-wds"]
    targets = [f"results/datasets/TINY_B/{name}" for name in names]
    folder = other / "results/datasets/TINY_B"
    killed = [folder / f".{name}.job-killed" / "0" for name in names]
    for stale in killed:
        stale.mkdir(parents=True)
    result = snakemake(snakefile, other, config, *targets)
    assert result.returncode == 0, result.stderr[-3000:]
    for target in targets:
        assert tree_bytes(other / target) == tree_bytes(workdir / target), target
    assert not [p for p in folder.iterdir() if ".job-" in p.name]
    killed[1].mkdir(parents=True)  # left before jobs was raised back to 2: gathering removes it too
    result = snakemake(snakefile, other, run[2], targets[1])
    assert result.returncode == 0, result.stderr[-3000:]
    assert tree_bytes(other / targets[1]) == tree_bytes(workdir / targets[1])
    assert not [p for p in folder.iterdir() if ".job-" in p.name]


def test_reordering_families_reruns_the_mix(run, tmp_path):
    """The families order sets the frame order, so it is a change."""
    snakefile, workdir, _ = run
    changed = yaml.safe_load(yaml.safe_dump(TINY, sort_keys=False))
    families = changed["mixes"]["TINY_B"]["families"]
    changed["mixes"]["TINY_B"]["families"] = dict(reversed(families.items()))
    config = tmp_path / "families.yaml"
    config.write_text(yaml.safe_dump(changed, sort_keys=False))
    result = snakemake(snakefile, workdir, config, "-n", "--list-params-changes")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "results/frames/TINY_B.parquet" in result.stdout
    assert "results/frames/TINY_A.parquet" not in result.stdout


RESUME_FILES = re.compile(r"(last|epoch_\d+)\.pt$|/tensorboard/")
"""Written beside a run's outputs, never declared: Snakemake deletes the outputs of a job before
it runs, and these must survive a failed or interrupted job for the next one to resume from.
(metrics.csv, continued across a resumed run too, is declared as a log, which Snakemake keeps.)"""
LOGS_BESIDE_OUTPUTS = re.compile(r"^results/(models/[^/]+|search/[^/]+/[^/]+)/metrics\.csv$")
"""Logs declared next to the outputs rather than under results/logs/ (the rules' named logs)."""


def test_every_file_a_rule_writes_is_declared(run):
    """Every file under results/ is an output (or inside a directory output), a log, a benchmark
    or a resume file, so the report, --delete-all-output and remote storage see all of them."""
    snakefile, workdir, config = run
    declared = set()
    for target in ("all", "export"):  # another test of this module builds the export target here
        result = snakemake(snakefile, workdir, config, "--summary", target)
        assert result.returncode == 0, result.stderr[-3000:]
        declared |= {line.split("\t")[0] for line in result.stdout.splitlines()[1:] if line.strip()}
    undeclared = []
    for path in sorted((workdir / "results").rglob("*")):
        name = str(path.relative_to(workdir))
        if path.is_dir() or name.startswith(("results/logs/", "results/benchmarks/")) or RESUME_FILES.search(name):
            continue
        if not any(name == out or name.startswith(f"{out}/") for out in declared):
            undeclared.append(name)
    assert [name for name in undeclared if not LOGS_BESIDE_OUTPUTS.match(name)] == []
    assert "results/tuning/t_pulses/lr.png" in declared
    rules = (Path(snakefile).parent / "workflow/rules/train.smk").read_text()
    assert 'metrics="results/models/{run}/metrics.csv"' in rules  # named logs of train_model and train_trial
    assert 'metrics="results/search/{search}/{trial}/metrics.csv"' in rules


def test_report_zip_builds_from_the_test_run(run, tmp_path):
    """`snakemake --report report.zip` works with the project's dependencies (pygments among them)."""
    import zipfile

    report = tmp_path / "report.zip"
    result = snakemake(*run, "--report", str(report))
    assert result.returncode == 0, result.stderr[-3000:]
    names = zipfile.ZipFile(report).namelist()
    assert any(n.endswith("report.html") for n in names)
    assert any(n.endswith("lr.png") for n in names) and any(n.endswith("index.html") for n in names)
