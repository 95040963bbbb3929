"""``python -m trainset validate``: a sound file passes, a broken one lists every problem and exits 1."""

from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
import xarray as xr

from trainset.collection import Collection
from trainset.io.base import get_format


def validate(path, *args):
    return subprocess.run([sys.executable, "-m", "trainset", "validate", str(path), *args],
                          capture_output=True, text=True)


def classification(n=60, t=12):
    rng = np.random.default_rng(0)
    data = xr.Dataset({"data": (("sample", "time", "feature"), rng.normal(size=(n, t, 2)).astype(np.float32)),
                       "labels": (("sample",), rng.integers(0, 3, n).astype(np.int64))})
    return Collection.single(data, attrs={"task": "seq2static_classification"})


def test_valid_datasets_pass_in_every_format(tmp_path):
    suffix = {"netcdf": ".nc", "hdf5": ".h5", "zarr": ".zarr", "webdataset": "-wds"}
    for name, ext in suffix.items():
        path = tmp_path / f"TS_ok{ext}"
        get_format(name).write(classification(), path)
        result = validate(path, "--num-classes", "3")
        assert result.returncode == 0, result.stderr
        assert "OK" in result.stdout and "seq2static_classification" in result.stdout


def test_wrong_task_shapes_are_listed_with_fixes(tmp_path):
    path = tmp_path / "TS_bad.h5"
    get_format("hdf5").write(classification(), path)
    result = validate(path, "--task", "seq2seq_classification")
    assert result.returncode == 1
    assert "labels" in result.stderr and "Fix" in result.stderr and "Traceback" not in result.stderr


def test_out_of_range_labels_and_damaged_file(tmp_path):
    path = tmp_path / "TS_bad.h5"
    get_format("hdf5").write(classification(), path)
    assert validate(path, "--num-classes", "2").returncode == 1
    with h5py.File(path, "r+") as handle:
        del handle["labels"]
    result = validate(path)
    assert result.returncode == 1 and "labels" in result.stderr and "Traceback" not in result.stderr


def test_value_checks_cover_webdataset_too(tmp_path):
    """NaN features and non-binary targets are found in every format, streamed ones included."""
    from trainset.validate import validate_dataset

    n = 120
    features = np.random.default_rng(1).random((n, 4)).astype(np.float32)
    features[7, 2], features[n - 1, 0] = np.nan, np.inf
    targets = np.ones((n, 11), dtype=np.float32)
    targets[3, 1] = 0.5
    data = xr.Dataset({"features": (("sample", "feature"), features),
                       "site": (("sample",), np.zeros(n, np.int64)),
                       "targets": (("sample", "threshold"), targets),
                       "date": (("sample",), np.arange(n))})
    collection = Collection.single(data, attrs={"task": "thresholds"})
    for name, ext, options in (("webdataset", "-wds", {"samples_per_member": 7, "samples_per_shard": 50}),
                               ("zarr", ".zarr", {}), ("hdf5", ".h5", {})):
        path = tmp_path / f"TS_v{ext}"
        get_format(name).write(collection, path, **options)
        report = validate_dataset(path)
        assert not report["valid"], name
        text = " ".join(report["problems"])
        assert "2 value(s) are NaN or infinite" in text and "neither 0 nor 1" in text, (name, text)
