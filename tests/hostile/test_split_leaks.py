"""Leaking splits are refused where the data is read, not only by ``validate``.

Each case builds a real dataset in the test, then a ``splits.json`` (beside a NetCDF, inside a
Zarr world, inside a WebDataset folder) or stored splits (HDF5, NetCDF) that would serve a
sample twice, a sample of another split, a wrapped-around negative index, a sample beyond the
dataset or JSON ``true`` as sample 1. ``open_dataset``, ``validate`` and training must refuse
each, naming the file, the split and the fix.
"""

from __future__ import annotations

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest
import xarray as xr
import yaml

from tests.conftest import stored_sequences
from trainset import open_dataset
from trainset.errors import TrainsetError
from trainset.splits import check_splits
from trainset.train.config import TrainingConfig
from trainset.train.run import train_run
from trainset.validate import validate_dataset

N = 40
FIX = "make_splits"
RUN = {
    "name": "leak",
    "model": {"name": "sequence", "params": {"kind": "gru", "hidden": 8, "layers": 1}},
    "training": {"losses": [{"name": "cross_entropy"}], "epochs": 1, "batch_size": 16, "lr": 0.01},
}


def _leak(kind: str, splits: dict[str, list], n: int) -> tuple[dict[str, list], str]:
    """``splits`` made to leak in one way, and the words the refusal must hold."""
    train, val, test = (list(splits[k]) for k in ("train", "val", "test"))
    cases = {
        "duplicate": ({**splits, "train": train + [train[0]]}, "more than once"),
        "overlap": ({**splits, "val": val + [train[0]]}, "overlaps split 'train'"),
        "out of range": ({**splits, "test": test + [n]}, f"outside 0..{n - 1}"),
        "negative": ({**splits, "test": test + [-1]}, "wrap around"),
        "true": ({**splits, "test": [True] + [i for i in test if i != 1]}, "not integers (e.g. true)"),
        "float": ({**splits, "test": test[:-1] + [test[-1] + 0.5]}, "not integers"),
        "string": ({**splits, "test": test[:-1] + [str(test[-1])]}, "not integers"),
        "not a list": ({**splits, "test": test[0]}, "not a list of sample indices"),
    }
    return cases[kind]


KINDS = ["duplicate", "overlap", "out of range", "negative", "true", "float", "string", "not a list"]


def _rewrite(file, kind: str, n: int, key: str = "splits") -> str:
    """Rewrite the JSON split file ``file`` with leak ``kind``; return the expected words."""
    obj = json.loads(file.read_text())
    obj[key], words = _leak(kind, obj[key], n)
    file.write_text(json.dumps(obj))
    return words


def _refused(call, *words):
    with pytest.raises(TrainsetError) as info:
        call()
    message = str(info.value)
    assert all(w in message for w in words), message
    return message


def _invalid(path, *words):
    report = validate_dataset(path)
    assert not report["valid"], report
    assert any(all(w in p for w in words) for p in report["problems"]), report["problems"]


@pytest.fixture(scope="module")
def netcdf(tmp_path_factory):
    """A NetCDF without stored splits; its splits are the ``splits.json`` beside it."""
    folder = tmp_path_factory.mktemp("nc")
    path = stored_sequences(folder, "pulses", N, seed=3, length=20, fmt="netcdf")
    with h5py.File(path, "r") as f:
        assert "trainset_splits" in f  # stored_sequences stores them; drop to read the file beside
    plain = folder / "plain" / path.name
    plain.parent.mkdir()
    from trainset.io.base import get_format

    collection, _ = get_format("netcdf").load(path)
    get_format("netcdf").write(collection, plain)
    (plain.parent / "splits.json").write_bytes((folder / "splits.json").read_bytes())
    return plain


@pytest.mark.parametrize("kind", KINDS)
def test_splits_json_beside_a_netcdf(netcdf, tmp_path, kind):
    folder = tmp_path / "ds"
    folder.mkdir()
    path = folder / netcdf.name
    path.write_bytes(netcdf.read_bytes())
    file = folder / "splits.json"
    file.write_bytes((netcdf.parent / "splits.json").read_bytes())
    words = _rewrite(file, kind, N)
    for split in ("train", "val", "test"):
        _refused(lambda: open_dataset(path, split=split), str(file), words, FIX)
    _invalid(path, str(file), words, FIX)
    out = tmp_path / "run"
    _refused(lambda: train_run(TrainingConfig.from_dict(RUN), path, out), str(file), words)
    assert not out.exists() or not any(out.glob("*.pt"))


def test_true_is_not_sample_one(netcdf):
    """JSON ``true`` used to become index 1: a test sample would be trained on."""
    with pytest.raises(TrainsetError, match="not integers"):
        check_splits({"train": [0, True], "test": [2]}, 3, "x.json")
    with pytest.raises(TrainsetError, match="bool array"):
        check_splits({"train": np.array([True, False])}, 3, "x.json")


def test_command_line_refuses_with_exit_status(netcdf, tmp_path):
    folder = tmp_path / "ds"
    folder.mkdir()
    path = folder / netcdf.name
    path.write_bytes(netcdf.read_bytes())
    file = folder / "splits.json"
    file.write_bytes((netcdf.parent / "splits.json").read_bytes())
    _rewrite(file, "overlap", N)
    result = subprocess.run([sys.executable, "-m", "trainset", "validate", str(path)], capture_output=True, text=True)
    assert result.returncode != 0 and str(file) in result.stderr and FIX in result.stderr
    assert "Traceback" not in result.stderr
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({**RUN, "dataset": str(path)}))
    result = subprocess.run([sys.executable, "-m", "trainset", "train", "--config", str(config),
                             "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert result.returncode != 0 and "overlaps" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("*.pt"))


@pytest.mark.parametrize("kind", ["duplicate", "overlap", "out of range", "negative", "true", "float"])
def test_zarr_per_world_splits(tmp_path, kind):
    path = stored_sequences(tmp_path, "pulses", N, seed=3, length=20, fmt="zarr")
    (tmp_path / "splits.json").unlink()  # only the store's own splits
    (world,) = [p for p in path.iterdir() if (p / "splits.json").is_file()]
    file = world / "splits.json"
    words = _rewrite(file, kind, N)
    _refused(lambda: open_dataset(path, split="train"), str(file), words, FIX)
    _invalid(path, str(file), words, FIX)
    _refused(lambda: train_run(TrainingConfig.from_dict(RUN), path, tmp_path / "run"), str(file), words)


@pytest.mark.parametrize("kind", ["duplicate", "overlap", "out of range", "negative", "true", "float"])
def test_webdataset_internal_splits(tmp_path, kind):
    """The WebDataset loader used to serve internal splits its own validator refused
    (a negative index wrapped around to the last sample)."""
    path = stored_sequences(tmp_path, "pulses", N, seed=3, length=20, fmt="webdataset")
    (tmp_path / "splits.json").unlink()
    file = path / "splits.json"
    words = _rewrite(file, kind, N)
    _refused(lambda: list(open_dataset(path, split="test")), str(file), words, FIX)
    _invalid(path, str(file), words, FIX)
    _refused(lambda: train_run(TrainingConfig.from_dict(RUN), path, tmp_path / "run"), str(file), words)


def test_hdf5_stored_split_with_a_duplicate(tmp_path):
    path = stored_sequences(tmp_path, "pulses", N, seed=3, length=20, fmt="hdf5")
    with h5py.File(path, "r+") as f:
        train = f["splits/train"][()]
        del f["splits/train"]
        f.create_dataset("splits/train", data=np.sort(np.append(train, train[0])))
    _refused(lambda: open_dataset(path, split="train"), str(path), "/splits", "more than once", FIX)
    _invalid(path, str(path), "more than once", FIX)


def test_netcdf_stored_float_split(tmp_path):
    """A float split in the NetCDF splits group was cast to int64 without a word."""
    path = stored_sequences(tmp_path, "pulses", N, seed=3, length=20, fmt="netcdf")
    with h5py.File(path, "r") as f:
        assert "trainset_splits" in f
    from trainset.io.base import get_format

    collection, splits = get_format("netcdf").load(path)
    plain = tmp_path / "forged" / path.name
    plain.parent.mkdir()
    get_format("netcdf").write(collection, plain)
    xr.Dataset({"train": ("train_n", splits["train"] + 0.5), "test": ("test_n", splits["test"])}).to_netcdf(
        plain, mode="a", engine="netcdf4", group="trainset_splits")
    _refused(lambda: open_dataset(plain, split="train"), str(plain), "trainset_splits", "'train'", FIX)
    _invalid(plain, str(plain), "trainset_splits", FIX)


def test_duplicate_split_name_in_json_is_refused(netcdf, tmp_path):
    folder = tmp_path / "ds"
    folder.mkdir()
    path = folder / netcdf.name
    path.write_bytes(netcdf.read_bytes())
    text = (netcdf.parent / "splits.json").read_text()
    obj = json.loads(text)
    (folder / "splits.json").write_text(text.replace('"splits": {', '"splits": {"test": [0], ', 1))
    assert '"test": [0], ' in (folder / "splits.json").read_text()  # a reader keeping the last one sees:
    assert json.loads((folder / "splits.json").read_text())["splits"]["test"] == obj["splits"]["test"]
    _refused(lambda: open_dataset(path, split="train"), str(folder / "splits.json"), "more than once")


def test_good_splits_still_open(netcdf):
    sizes = {s: len(open_dataset(netcdf, split=s)) for s in ("train", "val", "test")}
    assert sum(sizes.values()) == N and validate_dataset(netcdf)["valid"]
