"""The S3 profile (profiles/s3, snakemake-storage-plugin-s3) against a local S3 server.

moto's server mode (`python -m moto.server`, from PyPI) is started on 127.0.0.1 on a free port
for this module and stopped by its finalizer, even when a test fails; nothing leaves loopback
(AWS config files, the instance-metadata lookup and proxies are switched off for the runs).

The input table is uploaded to the bucket; a slice of the workflow (ingest -> mix -> NetCDF and
Zarr datasets -> splits -> scalers -> one training epoch) runs through the profile, and the same
targets run locally at the same time for a byte-for-byte comparison.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.workflow

boto3 = pytest.importorskip("boto3", reason="needs boto3 (pip install -e '.[test]')")
pytest.importorskip("moto.server", reason="needs moto[server] (pip install -e '.[test]')")
pytest.importorskip("snakemake_storage_plugin_s3", reason="needs snakemake-storage-plugin-s3 (pip install -e '.[s3]')")
Config = pytest.importorskip("botocore.config").Config

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "profiles" / "s3"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
BUCKET = "trainset-test"
PREFIX = "run1"
TABLE = "data/tiny.parquet"  # the input table, relative to the working directory / the prefix
PEAKS = "data/peaks.txt"  # target national peaks for rescaling, also an input object
TARGETS = ["results/models/t_s3/final.pt", "results/datasets/TINY_A/TS_TINY_A.zarr"]
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "trainset-test", "AWS_SECRET_ACCESS_KEY": "trainset-test-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}
# Files that record the path their input was read from: a job reads Snakemake's local copy of a
# storage object, .snakemake/storage/s3/BUCKET/PREFIX/results/..., so they differ from a local
# run there and only there (README "Object storage (S3)").
RECORD_INPUT_PATHS = {"scalers/TINY_A.json", "models/t_s3/best.pt", "models/t_s3/final.pt"}
LOCAL_COPY = f".snakemake/storage/s3/{BUCKET}/{PREFIX}/"
# Written beside the declared outputs but not declared (training's resume point): only declared
# outputs are uploaded, so it stays in the local copy folder.
UNDECLARED = {"models/t_s3/last.pt"}
# Holds a timing column (samples_per_s) that differs between any two runs: compared without it.
TIMED = {"models/t_s3/metrics.csv"}


def slice_config() -> dict:
    """Every default table/mix/dataset/run/search removed; one table read from a file, one mix
    (NetCDF + Zarr) and a one-epoch run."""
    defaults = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config = {section: {name: None for name in defaults.get(section) or {}}
              for section in ("tables", "mixes", "datasets", "runs", "searches")}
    config["seed"] = 3
    config["tables"]["tiny"] = {"path": TABLE}
    config["mixes"]["TINY_A"] = {
        "table": "tiny",
        "families": {"fluview": {"multiplier": 1, "to_scale": True}, "flusurv": {"multiplier": 1}},
        "scaling_distribution": {"path": PEAKS},  # a second input read from the bucket
        "formats": ["netcdf", "zarr"],
    }
    config["runs"]["t_s3"] = {
        "dataset": "TINY_A",
        "model": {"name": "diffusion", "params": {"base_channels": 8}},
        "training": {"losses": [{"name": "mse"}], "epochs": 1, "batch_size": 8, "lr": 0.002},
    }
    return config


def isolated_env() -> dict[str, str]:
    """This environment without the user's AWS settings or proxies, with test credentials."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "SNAKEMAKE_STORAGE_S3_")) and k.lower() not in ("http_proxy", "https_proxy")}
    env.update(CREDENTIALS, AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
               AWS_EC2_METADATA_DISABLED="true", NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
               SOURCE_DATE_EPOCH="1764000000", PYTHONHASHSEED="1")
    return env


ENV = isolated_env()


# --- the S3 server ----------------------------------------------------------------------------


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def s3_server(request, tmp_path_factory) -> str:
    """moto's S3 server on 127.0.0.1 (a free port chosen by the OS); returns its endpoint URL."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "w") as out:  # a file, not a pipe: the server logs every request
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
                                   stdout=out, stderr=subprocess.STDOUT, env=ENV)
    request.addfinalizer(lambda: stop_server(process))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"moto's server exited with {process.returncode}:\n{log.read_text()}")
        found = re.search(r"Running on (http://127\.0\.0\.1:\d+)", log.read_text())
        if found:
            try:
                with urllib.request.urlopen(found.group(1), timeout=2):  # loopback only
                    return found.group(1)
            except urllib.error.HTTPError:  # an S3 error reply (no credentials sent): it answers
                return found.group(1)
            except OSError:
                pass
        time.sleep(0.1)
    pytest.fail(f"moto's server did not answer within 30 s:\n{log.read_text()}")


def client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
                        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                        config=Config(request_checksum_calculation="when_required",
                                      response_checksum_validation="when_required"))


def objects(s3, prefix: str) -> dict[str, dict]:
    """Key (relative to ``prefix``) -> the object's listing entry."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return {item["Key"][len(prefix):]: item for page in pages for item in page.get("Contents", [])}


# --- the runs ---------------------------------------------------------------------------------


def s3_command(workdir: Path, config: Path, endpoint: str, *targets: str) -> list[str]:
    """The profile, with the bucket and endpoint given on the command line (targets before the
    storage options: plugin settings take several values each)."""
    return [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--configfile", str(config),
            "--profile", str(PROFILE), "--cores", "1", *targets,
            "--default-storage-prefix", f"s3://{BUCKET}/{PREFIX}", "--storage-s3-endpoint-url", endpoint]


def finish(process: subprocess.Popen, log: Path, timeout: float = 240) -> tuple[int, str]:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.terminate()
        process.wait(timeout=30)
    return process.returncode, log.read_text()


@pytest.fixture(scope="module")
def runs(s3_server, tmp_path_factory):
    """The slice through the S3 profile and locally, at once; then the S3 run again.

    Returns name -> (returncode, log) and the folders and endpoint.
    """
    root = tmp_path_factory.mktemp("s3")
    config = root / "slice.yaml"
    config.write_text(yaml.safe_dump(slice_config(), sort_keys=False))
    local, remote = root / "local", root / "s3"
    remote.mkdir()
    (local / "data").mkdir(parents=True)
    demo = subprocess.run([sys.executable, "-m", "trainset", "demo", str(local / TABLE), "--size", "small",
                           "--seed", "3"], check=False, capture_output=True, text=True, env=ENV, timeout=120)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    s3 = client(s3_server)
    s3.create_bucket(Bucket=BUCKET)
    (local / PEAKS).write_text("1500\n2500\n4000\n")
    for key in (TABLE, PEAKS):
        s3.upload_file(str(local / key), BUCKET, f"{PREFIX}/{key}")

    started = {}
    for name, command, cwd in (
        ("s3", s3_command(remote, config, s3_server, *TARGETS), remote),
        ("local", [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(local), "--configfile", str(config),
                   "--cores", "1", *TARGETS], local),
    ):
        log = root / f"{name}.log"
        with open(log, "w") as out:
            started[name] = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, text=True,
                                             env=ENV), log
    results = {name: finish(process, log) for name, (process, log) in started.items()}
    before = objects(s3, f"{PREFIX}/")
    again = subprocess.run(s3_command(remote, config, s3_server, *TARGETS), check=False, capture_output=True,
                           text=True, env=ENV, timeout=240)
    results["again"] = (again.returncode, again.stdout + again.stderr)
    return {"results": results, "local": local, "remote": remote, "endpoint": s3_server, "config": config,
            "before_rerun": before}


def result_files(folder: Path) -> dict[str, bytes]:
    """Every file below results/ (relative to it), without logs and benchmarks."""
    results = folder / "results"
    return {str(p.relative_to(results)): p.read_bytes() for p in sorted(results.rglob("*"))
            if p.is_file() and p.relative_to(results).parts[0] not in ("logs", "benchmarks")}


def without_local_copy(value):
    """``value`` (a JSON or checkpoint tree) with the local-copy folder cut out of every string."""
    if isinstance(value, str):
        return value.replace(LOCAL_COPY, "")
    if isinstance(value, dict):
        return {key: without_local_copy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_local_copy(item) for item in value]
    return value


def same_tree(a, b) -> bool:
    import torch

    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_tree(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same_tree(x, y) for x, y in zip(a, b))
    return a == b


def load(name: str, data: bytes, folder: Path):
    if name.endswith(".json"):
        return json.loads(data)
    import torch

    path = folder / "checkpoint.pt"
    path.write_bytes(data)
    return torch.load(path, weights_only=True)


# --- tests --------------------------------------------------------------------------------------


def test_profile_sets_s3_as_default_storage_with_a_placeholder_bucket():
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    assert profile["default-storage-provider"] == "s3"
    assert profile["default-storage-prefix"] == "s3://<your-bucket>/trainset"
    assert profile["keep-storage-local-copies"] is False and profile["storage-s3-retries"] >= 1
    text = (PROFILE / "config.yaml").read_text()
    assert "# storage-s3-endpoint-url:" in text and "AWS_ACCESS_KEY_ID" in text
    assert not re.search(r"^\s*storage-s3-(access|secret)-key:", text, re.MULTILINE), "no credentials in the profile"


def test_placeholder_bucket_stops_the_run_before_any_request(s3_server, tmp_path):
    """Without --default-storage-prefix the profile's placeholder is refused by boto3 itself."""
    command = [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--profile", str(PROFILE),
               "-n", "--storage-s3-endpoint-url", s3_server]
    result = subprocess.run(command, check=False, capture_output=True, text=True, env=ENV, timeout=120)
    assert result.returncode != 0
    assert 'Invalid bucket name "<your-bucket>"' in result.stdout + result.stderr, result.stderr[-3000:]


def test_every_rule_keeps_its_code_local(s3_server, tmp_path):
    """A dry run of the whole test config (every rule) against an empty prefix: had any code or
    bundled-data input been left to the storage provider, it would be missing from the bucket."""
    s3 = client(s3_server)
    if "empty" not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket="empty")
    command = [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
               "--configfile", str(REPO / "config/test/config.yaml"), "--profile", str(PROFILE), "-n",
               "--default-storage-prefix", "s3://empty/dry", "--storage-s3-endpoint-url", s3_server]
    result = subprocess.run(command, check=False, capture_output=True, text=True, env=ENV, timeout=180)
    text = result.stdout + result.stderr
    assert result.returncode == 0, text[-4000:]
    stats = text.split("Job stats:")[1]
    for rule in ("ingest_table", "ingest_domain", "build_frames", "write_zarr", "write_webdataset", "train_model",
                 "evaluate_model", "train_trial", "report_index"):
        assert re.search(rf"^{rule}\s+\d+$", stats, re.MULTILINE), rule


def test_slice_runs_against_the_bucket(runs):
    code, log = runs["results"]["s3"]
    assert code == 0, log[-6000:]
    queries = re.findall(r"(?:Retrieving from|Storing in) storage: (\S+)", log)
    assert f"s3://{BUCKET}/{PREFIX}/{TABLE}" in queries  # the input came from the bucket
    assert f"s3://{BUCKET}/{PREFIX}/results/models/t_s3/final.pt" in queries
    outside = [q for q in queries if not q.startswith((f"s3://{BUCKET}/{PREFIX}/results/",
                                                       f"s3://{BUCKET}/{PREFIX}/data/"))]
    assert not outside, outside  # code and bundled data never went to or came from the bucket
    assert not (runs["remote"] / "results").exists(), "results were written outside the bucket"


def test_bucket_holds_the_local_runs_results_byte_for_byte(runs, tmp_path):
    code, log = runs["results"]["local"]
    assert code == 0, log[-6000:]
    assert runs["results"]["s3"][0] == 0, runs["results"]["s3"][1][-6000:]
    expected = result_files(runs["local"])
    for name in ("tables/tiny.parquet", "frames/TINY_A.parquet", "datasets/TINY_A/TS_TINY_A.nc",
                 "datasets/TINY_A/splits.json", "datasets/TINY_A/TS_TINY_A.zarr/manifest.json",
                 "scalers/TINY_A.json", "models/t_s3/final.pt", "models/t_s3/history.json"):
        assert expected.get(name), name
    s3 = client(runs["endpoint"])
    stored = {key: item for key, item in objects(s3, f"{PREFIX}/results/").items()
              if key.split("/")[0] not in ("logs", "benchmarks")}
    assert not set(stored) - set(expected), sorted(set(stored) - set(expected))
    assert set(expected) - set(stored) == UNDECLARED
    differing = []
    for name, data in expected.items():
        if name in UNDECLARED:
            continue
        got = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/results/{name}")["Body"].read()
        if hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest():
            continue
        if name in TIMED and untimed(got) == untimed(data):
            continue
        if name in RECORD_INPUT_PATHS and same_tree(without_local_copy(load(name, got, tmp_path)),
                                                    without_local_copy(load(name, data, tmp_path))):
            continue  # identical but for the recorded path of the input
        differing.append(name)
    assert not differing, f"differ between the bucket and the local run: {differing}"


def untimed(csv: bytes) -> list[bytes]:
    """metrics.csv's lines without their last column (samples_per_s)."""
    return [line.rsplit(b",", 1)[0] for line in csv.splitlines()]


def test_rerun_against_the_bucket_does_nothing(runs):
    code, log = runs["results"]["again"]
    assert code == 0, log[-4000:]
    assert "Nothing to be done" in log, log[-4000:]
    after = objects(client(runs["endpoint"]), f"{PREFIX}/")
    before = runs["before_rerun"]
    assert {k: (v["ETag"], v["LastModified"]) for k, v in after.items()} == \
        {k: (v["ETag"], v["LastModified"]) for k, v in before.items()}
