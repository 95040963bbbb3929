"""A run killed with SIGKILL recovers with the README's plain command alone, and leaves nothing.

Each test copies one clean run of config/test/config.yaml (limited to three targets), removes
one artifact, and rebuilds it with ``TRAINSET_FAULT`` set (trainset.faults): the whole run
(Snakemake and the job) is killed inside the NetCDF block write, inside the Zarr gather, or
right after epoch 2's checkpoint while last.pt is written. The test checks the run died with a
temporary and Snakemake's lock left behind, runs the plain command again (no --unlock, no
--rerun-incomplete: the lock of a dead run is released at start-up and profiles/default reruns
incomplete jobs), and compares the artifact with the clean run's byte for byte.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.workflow

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config/test/config.yaml"
NETCDF = "results/datasets/TINY_A/TS_TINY_A.nc"
ZARR = "results/datasets/T_MACRO/TS_T_MACRO.zarr"
MODEL = "results/models/t_pulses"


def snakemake(workdir: Path, *targets: str, fault: str | None = None) -> subprocess.CompletedProcess:
    """The README's plain command on the test config (in a session of its own: a fault kills
    the run's whole process group, never pytest)."""
    environment = {k: v for k, v in os.environ.items() if k != "TRAINSET_FAULT"}
    environment["SOURCE_DATE_EPOCH"] = "1764000000"
    if fault:
        environment["TRAINSET_FAULT"] = fault
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(CONFIG), "--cores", "2", *targets]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600,
                          start_new_session=True)


def files(path: Path) -> dict[str, bytes]:
    """Every file of an artifact (a file or a folder) by relative name."""
    if path.is_file():
        return {"": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def untimed(tree: dict[str, bytes]) -> dict[str, bytes]:
    """``tree`` with metrics.csv's timing column (samples_per_s, different in every run) cut off."""
    return {name: b"\n".join(line.rsplit(b",", 1)[0] for line in data.split(b"\n"))
            if name.endswith("metrics.csv") else data for name, data in tree.items()}


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("clean") / "work"
    result = snakemake(workdir, NETCDF, ZARR, f"{MODEL}/final.pt")
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


@pytest.mark.parametrize(("fault", "artifact", "temporary"), [
    ("netcdf_block:1", NETCDF, ".TS_TINY_A.nc.*.tmp"),
    ("zarr_gather:1", ZARR, ".TS_T_MACRO.zarr.*.tmp"),
    ("checkpoint:2", MODEL, ".last.pt.*.tmp"),
])  # fmt: skip
def test_a_killed_run_recovers_with_the_plain_command(clean, tmp_path, fault, artifact, temporary):
    workdir = tmp_path / "work"
    shutil.copytree(clean, workdir, symlinks=True)  # mtimes kept: only the removed artifact is rebuilt
    (shutil.rmtree if (workdir / artifact).is_dir() else os.remove)(workdir / artifact)
    target = f"{MODEL}/final.pt" if artifact == MODEL else artifact

    killed = snakemake(workdir, target, fault=fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    folder = (workdir / artifact).parent if artifact != MODEL else workdir / artifact
    assert list(folder.glob(temporary)), f"no temporary at kill time in {folder}"
    assert any((workdir / ".snakemake/locks").glob("*.lock")), "the killed run left no lock"

    again = snakemake(workdir, target)
    assert again.returncode == 0, again.stderr[-4000:]
    assert untimed(files(workdir / artifact)) == untimed(files(clean / artifact))
    assert sorted(str(p.relative_to(workdir)) for p in (workdir / "results").rglob("*.tmp")) == []
    assert not (workdir / ".snakemake/locks").exists()


def test_ctrl_c_during_training_recovers_with_the_plain_command(clean, tmp_path):
    """SIGINT to the run's group (a Ctrl-C in its terminal) right after epoch 1's checkpoint: the
    plain command then finishes the run (profiles/default: rerun-incomplete), no
    IncompleteFilesException, and the model matches the clean run's."""
    workdir = tmp_path / "work"
    shutil.copytree(clean, workdir, symlinks=True)
    shutil.rmtree(workdir / MODEL)

    stopped = snakemake(workdir, f"{MODEL}/final.pt", fault="checkpoint:1:SIGINT")
    assert stopped.returncode != 0, stopped.stderr[-3000:]
    assert not (workdir / MODEL / "final.pt").exists()

    again = snakemake(workdir, f"{MODEL}/final.pt")
    assert again.returncode == 0, again.stderr[-4000:]
    assert "IncompleteFilesException" not in again.stderr
    assert untimed(files(workdir / MODEL)) == untimed(files(clean / MODEL))
