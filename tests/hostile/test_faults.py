"""Faults without a kill: temporaries of an interrupted write are swept by the next one, a full
disk is reported as such and leaves nothing behind (Zarr's pending writes included), a
checkpoint that cannot be read falls back to the newest readable one, a checkpoint whose meta is
not JSON is refused naming it, and a lock whose run is gone is released at start-up.

The kill tests (a real SIGKILL inside a running workflow) are in test_kill_recovery.py.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
import yaml
from zarr.storage import LocalStore

from tests.conftest import stored_sequences
from trainset.collection import Collection
from trainset.errors import TrainsetError
from trainset.io.base import get_format
from trainset.io.netcdf import ArraySpec, write_netcdf_blocks
from trainset.scalers import fit_dataset_scalers
from trainset.train.config import TrainingConfig
from trainset.train.run import train_run
from trainset.train.trainer import load_checkpoint
from trainset.versions import KEY, current
from trainset.workflow import LOCK_DIR, OWNER_FILE, record_lock_owner, release_stale_lock

REPO = Path(__file__).resolve().parents[2]


def collection(n: int = 40) -> Collection:
    rng = np.random.default_rng(0)
    return Collection.single(xr.Dataset({"data": (("sample", "time"), rng.normal(size=(n, 64)).astype(np.float32))}))


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.tmp"))


# --- stale temporaries -------------------------------------------------------------------------


def test_stale_temporaries_of_an_output_are_removed_by_its_next_write(tmp_path):
    (tmp_path / ".TS_x.nc.abc.tmp").write_bytes(b"half a NetCDF file")
    stale_store = tmp_path / ".TS_x.zarr.k2j4x9_q.tmp"
    (stale_store / "all" / "data" / "c").mkdir(parents=True)
    (stale_store / "all" / "data" / "c" / "0").write_bytes(b"chunk")
    others = [".TS_x.nc.extra.nc.abc.tmp", ".TS_x.ncx.abc.tmp", ".TS_y.nc.abc.tmp"]  # other outputs' names
    for name in others:
        (tmp_path / name).write_bytes(b"not ours")
    get_format("netcdf").write(collection(), tmp_path / "TS_x.nc")
    get_format("zarr").write(collection(), tmp_path / "TS_x.zarr", chunk=8)
    assert temporaries(tmp_path) == sorted(others)
    assert get_format("zarr").load(tmp_path / "TS_x.zarr")[0].parts["all"]["data"].shape == (40, 64)


# --- a full disk -------------------------------------------------------------------------------


def blocks_until_the_disk_is_full(data: np.ndarray):
    yield 0, data[:10]
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_during_a_netcdf_block_write_names_the_file_and_leaves_nothing(tmp_path):
    data = collection().parts["all"]["data"].values
    spec = ArraySpec("data", ("sample", "time"), data.shape, np.dtype(np.float32), {})
    target = tmp_path / "TS_x.nc"
    with pytest.raises(TrainsetError) as caught:
        template = xr.Dataset(coords={"sample": np.arange(len(data)), "time": np.arange(data.shape[1])})
        write_netcdf_blocks(target, template, spec, blocks_until_the_disk_is_full(data), {}, chunk=10)
    message = str(caught.value)
    assert message.startswith(f"{target}: no space left on device while writing it") and "Fix: free space" in message
    assert list(tmp_path.iterdir()) == []


def test_disk_full_during_a_netcdf_write_names_the_file_and_leaves_nothing(tmp_path, monkeypatch):
    written = []
    original = xr.Dataset.to_netcdf

    def fills_the_disk(self, path, *args, **kwargs):
        original(self, path, *args, **kwargs)
        written.append(Path(path).name)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(xr.Dataset, "to_netcdf", fills_the_disk)
    with pytest.raises(TrainsetError, match=r"TS_x\.nc: no space left on device while writing it"):
        get_format("netcdf").write(collection(), tmp_path / "TS_x.nc")
    assert written and written[0].startswith(".TS_x.nc.")  # a temporary existed, and is gone
    assert list(tmp_path.iterdir()) == []


def test_disk_full_during_zarr_writes_waits_for_pending_writes_before_cleaning_up(tmp_path, monkeypatch):
    """One chunk write fails at once, the writes started with it finish later (zarr's I/O thread):
    without waiting, they recreate files in the temporary folder after its cleanup."""
    original = LocalStore.set

    async def slow_then_full(self, key, value):
        if key.endswith("data/c/0/0"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if "/c/" in key:
            await asyncio.sleep(0.3)
        return await original(self, key, value)

    monkeypatch.setattr(LocalStore, "set", slow_then_full)
    target = tmp_path / "TS_x.zarr"
    with pytest.raises(TrainsetError, match=r"TS_x\.zarr: no space left on device"):
        get_format("zarr").write(collection(), target, chunk=4)
    time.sleep(0.6)  # longer than any pending write
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MiB tmpfs (root only): a real ENOSPC, which netCDF-C reports without its errno."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a small tmpfs")
    yield folder
    subprocess.run(["umount", "--lazy", str(folder)], check=True)  # netCDF-C may keep the failed file open


_WRITE_BIG = """
import os, sys
import numpy as np, xarray as xr
from trainset.collection import Collection
from trainset.errors import TrainsetError
from trainset.io.base import get_format
big = Collection.single(xr.Dataset({"data": (("sample", "time"), np.ones((400, 2048), np.float32))}))
try:
    get_format(sys.argv[1]).write(big, sys.argv[2])
except TrainsetError as error:
    print(error, flush=True)
    os._exit(1)  # skip teardown: h5py may crash freeing the objects of the failed file
"""


@pytest.mark.parametrize("fmt", ["netcdf", "hdf5", "zarr"])
def test_a_really_full_disk_names_the_file_and_leaves_nothing(full_disk, fmt):
    """In a child process: a failed write can leave the HDF5 library's state behind (netCDF-C
    keeps the failed file open, h5py may crash freeing its objects at exit), which must not
    reach the other tests of this process."""
    target = full_disk / {"netcdf": "TS_x.nc", "hdf5": "TS_x.h5", "zarr": "TS_x.zarr"}[fmt]
    result = subprocess.run([sys.executable, "-c", _WRITE_BIG, fmt, str(target)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1, result.stderr[-2000:]
    assert f"{target}: no space left on device" in result.stdout
    time.sleep(0.5)
    assert list(full_disk.iterdir()) == []


# --- checkpoints -------------------------------------------------------------------------------

RUN = {
    "name": "pulses",
    "model": {"name": "sequence", "params": {"kind": "gru", "hidden": 16, "layers": 1}},
    "training": {"losses": [{"name": "cross_entropy"}], "epochs": 4, "batch_size": 32, "lr": 0.01,
                 "save_every_n_epochs": 1, "patience": 10},
}


@pytest.fixture(scope="module")
def pulses(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pulses")
    path = stored_sequences(folder, "pulses", 160, seed=1, length=24)
    fit_dataset_scalers(path, folder / "scalers.json")
    return path, folder / "scalers.json"


def test_a_truncated_last_checkpoint_resumes_from_the_newest_readable_epoch(pulses, tmp_path, caplog):
    path, scalers = pulses
    cfg = TrainingConfig.from_dict(RUN)
    train_run(cfg, path, tmp_path / "straight", scalers)
    run = tmp_path / "run"
    train_run(cfg, path, run, scalers, max_epochs=3)
    for name in ("last.pt", "epoch_3.pt"):  # a crash while both were copied
        (run / name).write_bytes((run / name).read_bytes()[:1000])
    for name in ("best.pt", "history.json", "config.json"):  # as Snakemake does before a rerun
        (run / name).unlink()
    with caplog.at_level("WARNING"):
        history = train_run(cfg, path, run, scalers)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert f"{run / 'last.pt'}: cannot load checkpoint" in caplog.text
    assert f"{run / 'epoch_3.pt'}: cannot load checkpoint" in caplog.text
    assert f"{run}: resumed from epoch_2.pt (epoch 2)" in caplog.text
    for name in ("final.pt", "best.pt", "last.pt", "epoch_3.pt", "epoch_4.pt", "history.json"):
        assert (run / name).read_bytes() == (tmp_path / "straight" / name).read_bytes(), name


def test_a_checkpoint_whose_meta_is_not_json_is_refused_naming_it(tmp_path):
    for meta in ("{not json", "[1, 2]"):
        path = tmp_path / "best.pt"
        torch.save({KEY: current("checkpoint"), "model": {}, "meta": meta}, path)
        with pytest.raises(TrainsetError, match=rf"{path}: its 'meta' entry is not a JSON object.*Fix: retrain"):
            load_checkpoint(path)


# --- the lock and the default profile ----------------------------------------------------------


def locked(folder: Path, owner: dict | None) -> Path:
    locks = folder / LOCK_DIR
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text("results/x\n")
    if owner is not None:
        (locks / OWNER_FILE).write_text(json.dumps(owner))
    return locks


def gone_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_lock_whose_run_is_gone_is_released_and_a_live_or_unknown_one_kept(tmp_path):
    host = socket.gethostname()
    locks = locked(tmp_path / "gone", {"host": host, "pid": gone_pid(), "started": "1"})
    assert release_stale_lock(tmp_path / "gone") and not locks.exists()
    record_lock_owner(tmp_path / "live")  # this process: alive
    (tmp_path / "live" / LOCK_DIR / "0.output.lock").write_text("results/x\n")
    kept = {"live": None, "other-host": {"host": f"not-{host}", "pid": gone_pid()}, "no-owner": None}
    locked(tmp_path / "other-host", kept["other-host"])
    locked(tmp_path / "no-owner", None)
    for name in kept:
        assert not release_stale_lock(tmp_path / name), name
        assert any((tmp_path / name / LOCK_DIR).glob("*.lock")), name


def test_a_reused_pid_does_not_keep_a_lock(tmp_path):
    locks = locked(tmp_path, {"host": socket.gethostname(), "pid": os.getpid(), "started": "-1"})
    assert release_stale_lock(tmp_path) and not locks.exists()


def test_the_default_profile_reruns_incomplete_jobs_and_snakemake_applies_it(tmp_path):
    profile = yaml.safe_load((REPO / "profiles/default/config.yaml").read_text())
    assert profile == {"rerun-incomplete": True, "scheduler": "greedy"}
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
                             str(tmp_path), "--configfile", str(REPO / "config/test/config.yaml"), "--cores", "1",
                             "-n", "results/tables/tiny.parquet"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"workflow specific profile {REPO / 'profiles/default'}" in result.stdout + result.stderr
