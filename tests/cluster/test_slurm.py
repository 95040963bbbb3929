"""The SLURM profile (profiles/slurm) on a real single-node SLURM started on this machine.

`tests/cluster/slurm.sh start` installs Debian's slurm-wlm and munge if missing and starts
munged, slurmctld and slurmd; the module's finalizer always runs `slurm.sh stop`, which also
removes /etc/slurm/slurm.conf. Skipped, saying why, only when this machine cannot do that (not
root, or the packages cannot be installed).

Four Snakemake runs go at once (each job in a chain costs the plugin's status polling, ~12 s):
a slice of the workflow (ingest -> mix -> NetCDF -> splits -> scalers -> one training epoch)
through SLURM, the same targets locally for a byte-for-byte comparison, and a tiny Snakefile
with a job that fails on its first attempt and one that always fails. Then, in a copy of the
SLURM run's folder, two more runs train on its dataset to check GPU requests on the cluster's
two fake GPUs: ``device: cuda`` (its job is submitted with ``--gpus=1`` and then fails, since
nothing here runs CUDA) and ``device: auto`` listed in ``gpu_runs`` (gets a GPU, trains on the
CPU); the slice's own run (``auto``, not listed) asks for none.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.workflow

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "cluster" / "slurm.sh"
PROFILE = REPO / "profiles" / "slurm"
SLURM_CONF = Path("/etc/slurm/slurm.conf")
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
# The plugin's first status check 1 s after a submission (the profile's 20 s suits real clusters)
FAST_POLLING = ["--slurm-init-seconds-before-status-checks", "1"]
ENV = {**os.environ, "SOURCE_DATE_EPOCH": "1764000000", "PYTHONHASHSEED": "1"}
SLICE_RULES = ["ingest_table", "build_frames", "write_netcdf", "make_splits", "fit_scalers", "train_model"]
TARGET = "results/models/t_slurm/final.pt"
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+?)\)")

# One rule fails unless it got the second attempt's memory (1000 * attempt from the profile's
# default-resources); the other always fails.
RETRY_SNAKEFILE = """
rule flaky:
    output: "flaky.txt"
    shell: "echo mem_mb={resources.mem_mb}; test {resources.mem_mb} -ge 2000 || {{ echo 'flaky fails on purpose at mem_mb={resources.mem_mb}' >&2; exit 1; }}; echo ok > {output}"

rule broken:
    output: "broken.txt"
    shell: "echo 'broken fails on purpose' >&2; exit 3"
"""


def slice_config() -> dict:
    """Every default table/mix/dataset/run/search removed; one tiny table, mix and run."""
    defaults = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config = {section: {name: None for name in defaults.get(section) or {}}
              for section in ("tables", "mixes", "datasets", "runs", "searches")}
    config["seed"] = 3
    config["tables"]["tiny"] = {"demo": "flu", "size": "small"}
    config["mixes"]["TINY_A"] = {
        "table": "tiny",
        "families": {"fluview": {"multiplier": 1, "to_scale": True}, "flusurv": {"multiplier": 1}},
        "scaling_distribution": {"from_families": ["SMH_R4-R5"]},
    }
    config["runs"]["t_slurm"] = {
        "dataset": "TINY_A",
        "model": {"name": "diffusion", "params": {"base_channels": 8}},
        "training": {"losses": [{"name": "mse"}], "epochs": 1, "batch_size": 8, "lr": 0.002},
    }
    return config


def scontrol_job(jobid: str) -> dict[str, str]:
    """`scontrol show job` of a (possibly finished: MinJobAge=900 in slurm.sh) job as key -> value."""
    out = subprocess.run(["timeout", "10", "scontrol", "-o", "show", "job", jobid],
                         capture_output=True, text=True).stdout
    return dict(item.split("=", 1) for item in out.split() if "=" in item)


def memory_mb(job: dict[str, str]) -> int:
    return int(re.search(r"mem=(\d+)M", job["TRES"]).group(1))


def gpus_requested(job: dict[str, str]) -> int:
    """The GPUs a job asked for: sbatch --gpus=N shows as TresPerJob=gres:gpu:N (absent: none)."""
    found = re.fullmatch(r"gres:gpu:(\d+)", job.get("TresPerJob", "gres:gpu:0"))
    assert found, job.get("TresPerJob")
    return int(found.group(1))


def submissions(log: str) -> list[tuple[str, str]]:
    """(rule, SLURM job id) of every submission, in order (the plugin's log path names the rule)."""
    return [(re.search(r"rule_(\w+)", path).group(1), jobid) for jobid, path in SUBMITTED.findall(log)]


# --- the profile itself (no cluster needed) --------------------------------------------------


def test_profile_keeps_its_settings_and_repeats_no_rules_memory():
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["retries"] >= 1 and profile["scheduler"] == "greedy"
    assert profile["slurm-status-command"] == "squeue"
    assert profile["default-resources"]["slurm_partition"] == "debug"
    assert str(profile["default-resources"]["mem_mb"]).replace(" ", "") == "1000*attempt"
    overrides = profile.get("set-resources") or {}
    assert not [rule for rule, resources in overrides.items() if "mem_mb" in resources], \
        "the rules' memory lives in MEM_MB (workflow/rules/common.smk) only"


def test_every_rule_asks_its_tables_memory_times_the_attempt(tmp_path):
    """Each job's mem_mb is MEM_MB[rule] * attempt, as Snakemake evaluates it (retries double it)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import OutputSettings, ResourceSettings

    with SnakemakeApi(OutputSettings()) as api:
        workflow = api.workflow(resource_settings=ResourceSettings(cores=1), snakefile=REPO / "Snakefile",
                                workdir=tmp_path)._workflow
        table = workflow.globals["MEM_MB"]
        jobs = {rule.name: rule for rule in workflow.rules if not rule.norun}  # aggregate targets run nothing
        assert {"ingest_table", "train_model", "train_trial", "find_lr"} <= set(jobs)
        assert set(jobs) == set(table), "MEM_MB must list exactly the rules that run something"
        for name, rule in jobs.items():
            for attempt in (1, 2):
                got = rule.resources["mem_mb"].evaluate(None, attempt=attempt, rulename=name).value
                assert got == table[name] * attempt, (name, attempt)


# --- the cluster ------------------------------------------------------------------------------


def stop_cluster():
    result = subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not SLURM_CONF.exists(), "slurm.sh stop left /etc/slurm/slurm.conf behind"


@pytest.fixture(scope="module")
def cluster(request):
    """A running single-node SLURM; returns the seconds `slurm.sh start` took."""
    if os.geteuid() != 0:
        pytest.skip("needs root: tests/cluster/slurm.sh installs slurm-wlm/munge and starts munged, slurmctld, slurmd")
    if SLURM_CONF.exists() and "tests/cluster/slurm.sh" not in SLURM_CONF.read_text():
        pytest.skip(f"{SLURM_CONF} belongs to a real SLURM installation; not starting a test cluster over it")
    request.addfinalizer(stop_cluster)  # registered first: runs even if start fails half-way
    start = time.monotonic()
    result = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - start
    if result.returncode in (2, 3):
        reason = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        pytest.skip(f"cannot bring up SLURM on this machine: {reason}")
    assert result.returncode == 0, f"slurm.sh start failed:\n{result.stdout}\n{result.stderr}"
    return seconds


def launch(command: list[str], cwd: Path, log: Path) -> tuple[subprocess.Popen, Path]:
    with open(log, "w") as out:
        return subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, text=True, env=ENV), log


def finish(process: subprocess.Popen, log: Path, timeout: float) -> tuple[int, str]:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.terminate()  # SIGTERM: Snakemake cancels its SLURM jobs (SIGKILL would orphan them)
        process.wait(timeout=60)
    return process.returncode, log.read_text()


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """The four Snakemake runs, started together; name -> (returncode, log, folder)."""
    root = tmp_path_factory.mktemp("slurm")
    config = root / "slice.yaml"
    config.write_text(yaml.safe_dump(slice_config(), sort_keys=False))
    for name in ("flaky", "broken"):
        (root / name).mkdir()
        (root / name / "Snakefile").write_text(RETRY_SNAKEFILE)
    workflow = [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--configfile", str(config)]
    slurm = ["--profile", str(PROFILE), *FAST_POLLING]
    commands = {
        "slurm": [*workflow, "--directory", str(root / "slurm"), *slurm, TARGET],
        "local": [*workflow, "--directory", str(root / "local"), "--cores", "2", TARGET],
        "flaky": [*SNAKEMAKE, "--directory", str(root / "flaky"), *slurm, "flaky.txt"],
        "broken": [*SNAKEMAKE, "--directory", str(root / "broken"), *slurm, "broken.txt"],
    }
    started = {}
    for name, command in commands.items():
        cwd = root / name if name in ("flaky", "broken") else root
        started[name] = launch(command, cwd, root / f"{name}.log")
    deadline = time.monotonic() + 480
    return {name: (*finish(process, log, max(60.0, deadline - time.monotonic())), root / name)
            for name, (process, log) in started.items()}


def test_cluster_comes_up_in_seconds(cluster):
    assert cluster < 120, cluster  # ~1 s here; apt-get install on a fresh machine adds ~15 s
    info = subprocess.run(["timeout", "10", "sinfo", "-h", "-o", "%P %a %T"], capture_output=True, text=True)
    assert info.stdout.split() == ["debug*", "up", "idle"], info.stdout + info.stderr


def test_workflow_slice_runs_as_slurm_jobs(runs):
    code, log, _ = runs["slurm"]
    assert code == 0, log[-6000:]
    jobs = submissions(log)
    assert sorted(rule for rule, _ in jobs) == sorted(SLICE_RULES), log[-6000:]
    for rule, jobid in jobs:
        job = scontrol_job(jobid)
        assert job["JobState"] == "COMPLETED" and job["Partition"] == "debug", (rule, job)
        if rule in ("ingest_table", "train_model"):  # 4000 MB in the rules, on the first attempt
            assert memory_mb(job) == 4000, (rule, job)
    assert scontrol_job(dict(jobs)["train_model"])["TimeLimit"] == "01:00:00"  # the rule's runtime: 60
    # t_slurm's device is the default, auto, and gpu_runs does not list it: no job asks for a GPU
    assert [gpus_requested(scontrol_job(jobid)) for _, jobid in jobs] == [0] * len(jobs)


def test_slurm_outputs_are_byte_identical_to_a_local_run(runs):
    code, log, local = runs["local"]
    assert code == 0, log[-6000:]
    assert runs["slurm"][0] == 0, runs["slurm"][1][-6000:]
    slurm = runs["slurm"][2]

    def outputs(folder: Path) -> dict[str, bytes]:
        results = folder / "results"
        return {str(p.relative_to(results)): p.read_bytes() for p in sorted(results.rglob("*"))
                if p.is_file() and p.relative_to(results).parts[0] not in ("logs", "benchmarks")}

    expected, got = outputs(local), outputs(slurm)
    for name in ("datasets/TINY_A/TS_TINY_A.nc", "datasets/TINY_A/splits.json", "scalers/TINY_A.json",
                 "models/t_slurm/final.pt", "tables/tiny.parquet", "frames/TINY_A.parquet"):
        assert name in expected and expected[name], name
    assert sorted(got) == sorted(expected)
    differing = [name for name in expected if got[name] != expected[name]]
    assert not differing, f"differ between the SLURM and the local run: {differing}"


def test_job_failing_once_is_retried_with_doubled_memory(runs):
    code, log, folder = runs["flaky"]
    assert code == 0, log[-6000:]
    assert (folder / "flaky.txt").read_text() == "ok\n"
    assert "flaky fails on purpose at mem_mb=1000" in log  # the failed attempt's log is shown
    assert "Trying to restart job" in log
    jobs = submissions(log)
    assert [rule for rule, _ in jobs] == ["flaky", "flaky"], log[-6000:]
    first, second = (scontrol_job(jobid) for _, jobid in jobs)
    assert (first["JobState"], memory_mb(first)) == ("FAILED", 1000)
    assert (second["JobState"], memory_mb(second)) == ("COMPLETED", 2000)


def test_job_that_always_fails_is_reported_and_fails_the_run(runs):
    code, log, folder = runs["broken"]
    assert code != 0
    assert not (folder / "broken.txt").exists()
    jobs = submissions(log)
    assert [rule for rule, _ in jobs] == ["broken", "broken"], log[-6000:]  # retried once (retries: 1)
    assert "Error in rule broken" in log and "broken fails on purpose" in log
    for _, jobid in jobs:
        assert f"SLURM-job '{jobid}' failed" in log
        assert scontrol_job(jobid)["JobState"] == "FAILED"
    assert "did not complete successfully" in log


# --- GPU requests -----------------------------------------------------------------------------

GPU_RUNS = {"t_cuda": "cuda", "t_auto_gpu": "auto"}
"""Runs trained in a copy of the SLURM run's folder: name -> training.device."""
SUBMITTED_RUN = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: \S*?/rule_(\w+?)/(\w+)/")


@pytest.fixture(scope="module")
def gpu_jobs(runs, tmp_path_factory):
    """The cuda and the listed auto run, trained through SLURM on the slice's dataset (a copy of
    the SLURM run's folder: only their two training jobs run); (returncode, log, folder)."""
    assert runs["slurm"][0] == 0, runs["slurm"][1][-6000:]
    root = tmp_path_factory.mktemp("slurm_gpu")
    folder = root / "gpu"
    shutil.copytree(runs["slurm"][2], folder, symlinks=True,
                    ignore=shutil.ignore_patterns("locks", "incomplete", "slurm_logs"))
    config = slice_config()
    for name, device in GPU_RUNS.items():
        run = config["runs"]["t_slurm"]
        config["runs"][name] = {**run, "training": {**run["training"], "device": device}}
    config["gpu_runs"] = ["t_auto_gpu"]
    (root / "gpu.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    targets = [f"results/models/{name}/final.pt" for name in GPU_RUNS]
    command = [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--configfile", str(root / "gpu.yaml"),
               "--directory", str(folder), "--profile", str(PROFILE), *FAST_POLLING, "--retries", "0", *targets]
    process, log = launch(command, root, root / "gpu.log")
    return (*finish(process, log, 300), folder)


def test_jobs_ask_slurm_for_a_gpu_exactly_when_their_run_uses_one(gpu_jobs):
    code, log, folder = gpu_jobs
    jobs = {run: (rule, jobid) for jobid, rule, run in SUBMITTED_RUN.findall(log) if rule == "train_model"}
    assert sorted(jobs) == sorted(GPU_RUNS), log[-6000:]
    for run, (rule, jobid) in jobs.items():
        assert gpus_requested(scontrol_job(jobid)) == 1, (run, scontrol_job(jobid))
    # auto with a GPU given but no CUDA here trains on the CPU; cuda is refused in the job
    assert scontrol_job(jobs["t_auto_gpu"][1])["JobState"] == "COMPLETED"
    assert (folder / "results/models/t_auto_gpu/final.pt").is_file()
    assert scontrol_job(jobs["t_cuda"][1])["JobState"] == "FAILED" and code != 0
    assert "training.device: cuda asked for, but torch sees no CUDA GPU" in log
    assert not (folder / "results/models/t_cuda/final.pt").exists()
