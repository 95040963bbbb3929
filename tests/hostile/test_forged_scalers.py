"""Forged or foreign scalers are refused on load and at training start.

The scaler file's ``scaler_hash`` is recomputed in every forged case, so what refuses the file
is the check of its values (scale 0, NaN, inf, strings, wrong counts), not the hash. A scaler
fitted on another dataset is refused at training start by the dataset identity every stored
copy carries (the sha256 of the NetCDF it was converted from), while the copies of the dataset
the scaler was fitted on are accepted.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from tests.conftest import stored_sequences
from trainset.datasets import convert_dataset, gather_dataset, write_dataset_job
from trainset.errors import TrainsetError
from trainset.io.base import guess_format
from trainset.open import SOURCE_ATTR, dataset_identity
from trainset.provenance import file_sha256, json_sha256
from trainset.scalers import ScalerSet, fit_dataset_scalers
from trainset.train.config import TrainingConfig
from trainset.train.run import train_run

FIX = "fit_scalers"
RUN = {
    "name": "forged",
    "model": {"name": "sequence", "params": {"kind": "gru", "hidden": 8, "layers": 1}},
    "training": {"losses": [{"name": "cross_entropy"}], "epochs": 1, "batch_size": 16, "lr": 0.01},
}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """Dataset A (a NetCDF, its HDF5/Zarr/WebDataset copies and its scalers) and dataset B."""
    root = tmp_path_factory.mktemp("scalers")
    a = stored_sequences(root / "a", "pulses", 48, seed=1, length=20, fmt="netcdf")
    b = stored_sequences(root / "b", "pulses", 48, seed=2, length=20, fmt="netcdf")
    scalers = root / "a" / "scalers.json"
    fit_dataset_scalers(a, scalers)
    copies = {"hdf5": root / "a" / "TS_pulses.h5", "webdataset": root / "a" / "TS_pulses-wds"}
    for name, out in copies.items():
        convert_dataset(a, root / "a" / "splits.json", name, out)
    jobs = [root / "a" / "jobs" / str(job) for job in range(2)]
    for job, folder in enumerate(jobs):  # the Zarr copy as the workflow writes it: jobs, then a gather
        write_dataset_job(a, root / "a" / "splits.json", "zarr", folder, {}, job, 2)
    copies["zarr"] = root / "a" / "TS_pulses.zarr"
    gather_dataset(a, root / "a" / "splits.json", "zarr", jobs, copies["zarr"], {})
    return a, b, scalers, copies


def test_every_copy_records_the_identity_of_its_netcdf(datasets):
    a, _, scalers, copies = datasets
    digest = file_sha256(a)
    assert dataset_identity(a, guess_format(a).reader(a).attrs) == digest  # the NetCDF is its own source
    for name, path in copies.items():
        attrs = guess_format(path).reader(path).attrs
        assert attrs[SOURCE_ATTR] == digest, name
        assert dataset_identity(path, attrs) == digest and file_sha256(path) != digest
    assert json.loads(scalers.read_text())["dataset"]["identity"] == digest


def test_identity_is_deterministic(datasets, tmp_path):
    a, _, _, copies = datasets
    again = tmp_path / "again.h5"
    convert_dataset(a, a.parent / "splits.json", "hdf5", again)
    assert again.read_bytes() == copies["hdf5"].read_bytes()


@pytest.mark.parametrize("copy", ["netcdf", "hdf5", "zarr", "webdataset"])
def test_scalers_of_the_same_dataset_train_on_every_copy(datasets, tmp_path, copy):
    a, _, scalers, copies = datasets
    path = a if copy == "netcdf" else copies[copy]
    history = train_run(TrainingConfig.from_dict(RUN), path, tmp_path / "run", scalers)
    assert len(history) == 1


def test_scalers_of_another_dataset_are_refused(datasets, tmp_path):
    a, b, scalers, _ = datasets
    out = tmp_path / "run"
    with pytest.raises(TrainsetError) as info:
        train_run(TrainingConfig.from_dict(RUN), b, out, scalers)
    message = str(info.value)
    assert str(scalers) in message and file_sha256(a) in message and file_sha256(b) in message and FIX in message
    assert not out.exists() or not any(out.glob("*.pt"))
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({**RUN, "dataset": str(b)}))
    result = subprocess.run([sys.executable, "-m", "trainset", "train", "--config", str(config), "--scalers",
                             str(scalers), "--out", str(tmp_path / "cli")], capture_output=True, text=True)
    assert result.returncode != 0 and "scalers fitted on dataset" in result.stderr and FIX in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "cli").exists()


def _forge(scalers, tmp_path, edit) -> str:
    """A copy of the scaler file with ``edit`` applied to its statistics of ``data`` and a
    recomputed (matching) ``scaler_hash``."""
    obj = json.loads(scalers.read_text())
    stats = obj["statistics"]["data"]["pulses"]
    edit(stats)
    obj["scaler_hash"] = json_sha256({"scalers": obj["scalers"], "statistics": obj["statistics"]})
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(obj))  # NaN and Infinity as Python's json writes them
    return forged


def _set(key, value):
    return lambda stats: stats.__setitem__(key, value)


FORGED = {
    "scale 0": (_set("scale", [0.0]), "statistics.data.pulses.scale must be > 0"),
    "scale negative": (_set("scale", [-1.0]), "must be > 0"),
    "NaN mean": (_set("mean", [float("nan")]), "statistics.data.pulses.mean holds 1 NaN/inf"),
    "inf scale": (_set("scale", [float("inf")]), "NaN/inf"),
    "string": (_set("scale", ["0.9"]), "not numbers (e.g. '0.9')"),
    "boolean": (_set("mean", [True]), "not numbers"),
    "scalar": (_set("scale", 0.9), "not a list"),
    "wrong count": (_set("scale", [0.9, 0.9]), "has 2 values, but the variable has 1 features"),
    "wrong shape": (_set("shape", "24x1"), "statistics.data.pulses.shape"),
    "missing": (lambda stats: stats.pop("mean"), "statistics.data.pulses.mean is None"),
}


@pytest.mark.parametrize("case", list(FORGED))
def test_forged_statistics_are_refused_on_load(datasets, tmp_path, case):
    a, _, scalers, _ = datasets
    edit, words = FORGED[case]
    forged = _forge(scalers, tmp_path, edit)
    with pytest.raises(TrainsetError) as info:
        ScalerSet.from_json(forged)
    assert str(forged) in str(info.value) and words in str(info.value) and FIX in str(info.value), str(info.value)
    with pytest.raises(TrainsetError, match=FIX):
        train_run(TrainingConfig.from_dict(RUN), a, tmp_path / "run", forged)


def test_forged_transform_statistics_are_refused(datasets, tmp_path):
    a, _, _, _ = datasets
    fitted = tmp_path / "zscore.json"
    fit_dataset_scalers(a, fitted, spec={"data": "zscore"})
    ScalerSet.from_json(fitted)
    obj = json.loads(fitted.read_text())
    for edit, words in ((lambda s: s["state"]["std"].__setitem__(3, -1.0), "state.std must be >= 0"),
                        (lambda s: s["state"]["mean"].__setitem__(0, float("inf")), "state.mean holds 1 NaN/inf"),
                        (lambda s: s["state"]["mean"].pop(), "state.mean has 19 values"),
                        (lambda s: s["state"].__setitem__("n_trailing", 0), "n_trailing is 0"),
                        (lambda s: s["params"].__setitem__("eps", 0.0), "transform 'zscore' with params")):
        forged = json.loads(json.dumps(obj))
        edit(forged["statistics"]["data"]["pulses"])
        forged["scaler_hash"] = json_sha256({"scalers": forged["scalers"], "statistics": forged["statistics"]})
        fitted.write_text(json.dumps(forged))
        with pytest.raises(TrainsetError, match=words):
            ScalerSet.from_json(fitted)


def test_scalers_fitted_on_other_shapes_are_refused(datasets, tmp_path):
    """A scaler whose recorded per-sample shape is not the dataset's (a same-named variable of
    another layout) is refused at training start, even with the dataset's identity."""
    a, _, scalers, _ = datasets
    forged = _forge(scalers, tmp_path, _set("shape", [30, 1]))
    with pytest.raises(TrainsetError, match=r"fitted on per-sample shape \[30, 1\].*stores \[20, 1\].*fit_scalers"):
        train_run(TrainingConfig.from_dict(RUN), a, tmp_path / "run", forged)


def test_command_line_refuses_forged_scalers(datasets, tmp_path):
    a, _, scalers, _ = datasets
    forged = _forge(scalers, tmp_path, _set("scale", [float("inf")]))
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({**RUN, "dataset": str(a)}))
    result = subprocess.run([sys.executable, "-m", "trainset", "train", "--config", str(config), "--scalers",
                             str(forged), "--out", str(tmp_path / "cli")], capture_output=True, text=True)
    assert result.returncode != 0 and str(forged) in result.stderr and "NaN/inf" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "cli").exists()
