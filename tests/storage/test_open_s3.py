"""``trainset.open_dataset("s3://...", storage_options=...)`` against the moto server of test_s3.

The datasets are written locally, uploaded with boto3, and read back through s3fs: HDF5 (h5py
over fsspec file objects), Zarr (zarr's FsspecStore) and WebDataset (shards verified, then
walked) give the local samples; NetCDF is refused with its reason; the integrity checks hold
remotely (a tampered manifest, a missing chunk, a tampered shard).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import trainset
from tests.io.test_roundtrip import one_part, write_all
from tests.storage.test_s3 import CREDENTIALS, client, s3_server  # noqa: F401  (the moto fixture)

pytest.importorskip("s3fs", reason="needs s3fs (pip install -e '.[s3]')")
BUCKET = "trainset-open"
SPLITS = {"train": np.arange(0, 240), "val": np.arange(240, 270), "test": np.arange(270, 300)}


@pytest.fixture(scope="module")
def bucket(s3_server, tmp_path_factory):
    """Every format of one dataset, uploaded under s3://BUCKET/d/; returns (local paths, options)."""
    local = write_all(one_part(), tmp_path_factory.mktemp("s3open"), SPLITS)
    s3 = client(s3_server)
    s3.create_bucket(Bucket=BUCKET)
    for path in local.values():
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            s3.upload_file(str(file), BUCKET, f"d/{file.relative_to(path.parent).as_posix()}")
    options = {"key": CREDENTIALS["AWS_ACCESS_KEY_ID"], "secret": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
               "endpoint_url": s3_server, "client_kwargs": {"region_name": CREDENTIALS["AWS_DEFAULT_REGION"]}}
    return local, options, s3


def url(local: Path) -> str:
    return f"s3://{BUCKET}/d/{local.name}"


@pytest.mark.parametrize("fmt", ["hdf5", "zarr"])
def test_hdf5_and_zarr_read_from_s3_like_local_files(bucket, fmt):
    local, options, _ = bucket
    remote = trainset.open_dataset(url(local[fmt]), split="all", storage_options=options)
    assert {name: len(ds) for name, ds in remote.items()} == {"train": 240, "val": 30, "test": 30}
    here = trainset.open_dataset(local[fmt], split="val")
    rows = [0, 3, 29]
    got, want = remote["val"][rows], here[rows]
    for key in ("data", "labels", "klass", "index"):
        np.testing.assert_array_equal(got[key].numpy(), want[key].numpy())
    assert repr(remote["val"]).startswith(f"MappedDataset(format={fmt}, path={url(local[fmt])}, split=val")


def test_webdataset_streams_from_s3_and_refuses_a_tampered_shard(bucket):
    local, options, s3 = bucket
    path = local["webdataset"]
    remote = trainset.open_dataset(url(path), split="test", storage_options=options)
    assert repr(remote).startswith(f"WdsDataset(format=webdataset, path={url(path)}, split=test, length=30")
    got = [s["labels"].numpy() for s in remote]
    want = [s["labels"].numpy() for s in trainset.open_dataset(path, split="test")]
    np.testing.assert_array_equal(np.stack(got), np.stack(want))
    key = f"d/{path.name}/shard-000000.tar"
    data = bytearray(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    data[len(data) // 2] ^= 1
    s3.put_object(Bucket=BUCKET, Key=key, Body=bytes(data))
    with pytest.raises(trainset.TrainsetError, match="shard-000000.tar: sha256 mismatch"):
        next(iter(trainset.open_dataset(url(path), storage_options=options)))


def test_netcdf_is_refused_with_the_reason(bucket):
    local, options, _ = bucket
    with pytest.raises(trainset.TrainsetError, match="not read from object storage: .*netCDF4 engine.*Fix"):
        trainset.open_dataset(url(local["netcdf"]), storage_options=options)


def test_checks_hold_remotely(bucket):
    local, options, s3 = bucket
    store = local["zarr"]
    s3.delete_object(Bucket=BUCKET, Key=f"d/{store.name}/demo/data/c/1/0/0")
    dataset = trainset.open_dataset(url(store), storage_options=options)
    assert dataset[[0]]["data"].shape == (1, 20, 3)  # chunk 0 is there
    with pytest.raises(trainset.TrainsetError, match="chunk file missing"):
        dataset[[300 - 1]]
    s3.put_object(Bucket=BUCKET, Key=f"d/{store.name}/manifest.json", Body=b'{"format": "trainset-zarr"}')
    with pytest.raises(trainset.TrainsetError, match="manifest"):
        trainset.open_dataset(url(store), storage_options=options)
    with pytest.raises(trainset.TrainsetError, match="storage_options are for fsspec URLs"):
        trainset.open_dataset(local["hdf5"], storage_options=options)
    with pytest.raises(trainset.TrainsetError, match="protocol 'sftp' is not read remotely"):
        trainset.open_dataset("sftp://host/TS_x.h5")
    assert len(trainset.open_dataset(f"file://{local['hdf5']}")) == 300
