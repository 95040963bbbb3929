"""Datasets that point outside themselves are refused by the validator and every reader.

Each hostile file is a dataset written by trainset, then edited with h5py (or, for Zarr, the
file system) so that one variable's bytes come from outside it: HDF5 external raw storage, an
external link, a soft link, a virtual dataset, a symbolic link inside a Zarr store. The outside
bytes are a marker value; before the fix, ``validate`` said OK and ``open_dataset`` served them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr
from torch.utils.data import IterableDataset

import trainset
from trainset.collection import Collection
from trainset.errors import TrainsetError
from trainset.io.base import get_format
from trainset.io.netcdf import write_netcdf
from trainset.validate import validate_dataset

MARK = np.float32(4242.5)
N, T = 60, 12
KINDS = {"external": "external raw storage", "elink": "external link", "slink": "soft link",
         "vds": "virtual dataset"}


def collection(parts: int = 1) -> Collection:
    rng = np.random.default_rng(0)
    data = xr.Dataset({"data": (("sample", "time", "feature"), rng.normal(size=(N, T, 2)).astype(np.float32)),
                       "labels": (("sample",), rng.integers(0, 3, N).astype(np.int64))})
    if parts == 1:
        return Collection.single(data, attrs={"task": "seq2static_classification"})
    return Collection({"a": data, "b": data.isel(sample=slice(0, 20))}, {"task": "seq2static_classification"})


def cli_validate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trainset", "validate", str(path), "--num-classes", "3"],
                          capture_output=True, text=True)


def outside_payload(folder: Path, shape: tuple[int, ...]) -> tuple[Path, Path]:
    """Raw marker bytes and an HDF5 file whose /data holds the marker, both outside the dataset folder."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = folder / "outside.bin"
    np.full(shape, MARK, np.float32).tofile(raw)
    other = folder / "other.h5"
    with h5py.File(other, "w") as f:
        f["data"] = np.full(shape, MARK, np.float32)
    return raw, other


def replace(f: h5py.File, name: str, make) -> None:
    """Replace dataset ``name`` by ``make(f, name, shape, dtype)``, keeping its NetCDF attributes
    and dimension scales, so netCDF-C still reads the file as before."""
    old = f[name]
    shape, dtype = old.shape, old.dtype
    attrs = {k: v for k, v in old.attrs.items() if k not in ("DIMENSION_LIST", "REFERENCE_LIST")}
    scales = [list(old.dims[i].values()) for i in range(old.ndim)]
    for i, found in enumerate(scales):
        for scale in found:
            old.dims[i].detach_scale(scale)
    del f[name]
    make(f, name, shape, dtype)
    new = f.get(name)
    if isinstance(new, h5py.Dataset) and not new.is_virtual:
        new.attrs.update(attrs)
        for i, found in enumerate(scales):
            for scale in found:
                new.dims[i].attach_scale(scale)


def point_outside(path: Path, kind: str, outside: Path, name: str = "data") -> None:
    """Make variable ``name`` of the file at ``path`` read its bytes from ``outside`` (kind of reference)."""
    with h5py.File(path, "r") as f:
        shape = f[name].shape
    raw, other = outside_payload(outside, shape)

    def external(f, n, s, d):
        f.create_dataset(n, shape=s, dtype=d, external=[(str(raw.resolve()), 0, raw.stat().st_size)])

    def elink(f, n, s, d):
        f[n] = h5py.ExternalLink(str(other.resolve()), "/data")

    def slink(f, n, s, d):
        f.create_group("stash")["data"] = np.full(s, MARK, d)
        f[n] = h5py.SoftLink("/stash/data")

    def vds(f, n, s, d):
        layout = h5py.VirtualLayout(shape=s, dtype=d)
        layout[:] = h5py.VirtualSource(str(other.resolve()), "data", shape=s)
        f.create_virtual_dataset(n, layout)

    with h5py.File(path, "r+") as f:
        replace(f, name, {"external": external, "elink": elink, "slink": slink, "vds": vds}[kind])


def assert_refused(path: Path, key: str, kind: str) -> None:
    """open_dataset, the validator and the CLI all refuse, naming the variable and the kind."""
    with pytest.raises(TrainsetError) as error:
        trainset.open_dataset(path)
    assert key in str(error.value) and kind in str(error.value) and "Fix:" in str(error.value)
    assert str(MARK) not in str(error.value)
    report = validate_dataset(path)
    assert not report["valid"]
    assert any(key in p and kind in p for p in report["problems"]), report["problems"]
    result = cli_validate(path)
    assert result.returncode != 0
    assert key in result.stderr and kind in result.stderr and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("fmt", ["netcdf", "hdf5"])
def test_hdf5_and_netcdf_pointing_outside_are_refused(tmp_path, fmt, kind):
    path = tmp_path / "dataset" / f"TS_x{get_format(fmt).suffix}"
    path.parent.mkdir()
    get_format(fmt).write(collection(), path)
    point_outside(path, kind, tmp_path / "elsewhere")
    assert_refused(path, "/data", KINDS[kind])
    with pytest.raises(TrainsetError, match="/data"):
        get_format(fmt).load(path)
    if fmt == "netcdf":
        with pytest.raises(TrainsetError, match=KINDS[kind]), get_format(fmt).open(path):
            pass


def test_without_the_check_the_outside_bytes_would_be_served(tmp_path):
    """The hostile file is real: read with plain h5py, /data is the marker from the other file."""
    path = tmp_path / "TS_x.h5"
    get_format("hdf5").write(collection(), path)
    point_outside(path, "external", tmp_path / "elsewhere")
    with h5py.File(path, "r") as f:
        assert f["data"][0, 0, 0] == MARK


def test_links_in_a_part_group_are_refused(tmp_path):
    path = tmp_path / "TS_x.h5"
    get_format("hdf5").write(collection(parts=2), path)
    with h5py.File(path, "r+") as f:
        del f["parts/b/labels"]
        f["parts/b/labels"] = h5py.SoftLink("/parts/a/labels")
    assert_refused(path, "/parts/b/labels", "soft link")


def test_a_file_swapped_after_the_reader_was_made_is_refused_on_read(tmp_path):
    """Each process checks the file again when it opens it (DataLoader workers included)."""
    for fmt in ("netcdf", "hdf5"):
        path, hostile = (tmp_path / f"{name}{get_format(fmt).suffix}" for name in ("TS_x", "hostile"))
        get_format(fmt).write(collection(), path)
        get_format(fmt).write(collection(), hostile)
        point_outside(hostile, "external", tmp_path / "elsewhere")
        reader = get_format(fmt).reader(path)
        os.replace(hostile, path)
        with pytest.raises(TrainsetError, match="external raw storage"):
            reader.read(0, np.arange(4))


def test_flu_netcdf_loader_refuses_outside_storage(tmp_path):
    from trainset.loaders import FluDataset

    frames = xr.DataArray(np.ones((6, 1, 53, 3), np.float32), dims=("sample", "feature", "season_week", "place"),
                          coords={"sample": np.arange(6), "feature": ["value"]}, name="frames")
    path = tmp_path / "TS_flu.nc"
    write_netcdf(frames, path)
    point_outside(path, "external", tmp_path / "elsewhere", name="frames")
    with pytest.raises(TrainsetError, match="/frames: external raw storage"):
        FluDataset.from_netcdf(path)


def zarr_store(folder: Path) -> Path:
    path = folder / "TS_x.zarr"
    get_format("zarr").write(collection(), path, chunk=16)
    return path


def test_zarr_chunk_symlink_to_outside_is_refused(tmp_path):
    path = zarr_store(tmp_path / "dataset")
    chunk = path / "all" / "data" / "c" / "0" / "0" / "0"
    raw, _ = outside_payload(tmp_path / "elsewhere", (16, T, 2))
    assert raw.stat().st_size == chunk.stat().st_size  # the same bytes count: it would decode
    chunk.unlink()
    chunk.symlink_to(raw)
    assert_refused(path, "all/data/c/0/0/0", "symbolic link")


def test_zarr_folder_symlink_is_refused(tmp_path):
    path = zarr_store(tmp_path / "dataset")
    moved = tmp_path / "elsewhere" / "labels"
    moved.parent.mkdir()
    shutil.move(path / "all" / "labels", moved)
    (path / "all" / "labels").symlink_to(moved, target_is_directory=True)
    assert_refused(path, "all/labels", "symbolic link")


def test_zarr_chunk_replaced_by_a_link_after_opening_is_refused_on_read(tmp_path):
    path = zarr_store(tmp_path / "dataset")
    reader = get_format("zarr").reader(path)
    reader.read(0, np.arange(4))
    chunk = path / "all" / "data" / "c" / "0" / "0" / "0"
    raw, _ = outside_payload(tmp_path / "elsewhere", (16, T, 2))
    chunk.unlink()
    chunk.symlink_to(raw)
    with pytest.raises(TrainsetError, match="symbolic link"):
        reader.read(0, np.arange(4))


def test_zarr_manifest_names_leading_out_of_the_store_are_refused(tmp_path):
    path = zarr_store(tmp_path / "dataset")
    shutil.copytree(path / "all", tmp_path / "dataset" / "escape")
    manifest = (path / "manifest.json").read_text().replace('"name": "all"', '"name": "../escape"')
    (path / "manifest.json").write_text(manifest)
    with pytest.raises(TrainsetError, match=r"\.\./escape"):
        trainset.open_dataset(path)
    assert not validate_dataset(path)["valid"]


def test_zarr_hard_links_are_kept(tmp_path):
    """trainset's gather assembles stores from hard links: a hard-linked chunk is a file of the store."""
    path = zarr_store(tmp_path / "dataset")
    chunk = path / "all" / "data" / "c" / "0" / "0" / "0"
    copy = tmp_path / "elsewhere" / "chunk"
    copy.parent.mkdir()
    shutil.copyfile(chunk, copy)
    chunk.unlink()
    os.link(copy, chunk)
    assert validate_dataset(path, num_classes=3)["valid"]
    expected = collection().parts["all"]["data"].values[:4]
    np.testing.assert_array_equal(trainset.open_dataset(path).reader.read(0, np.arange(4))["data"], expected)


def own_datasets(folder: Path) -> list[Path]:
    """Every format (and layout) as the library writes it, jobs and gathers included."""
    splits = {"train": np.arange(40), "test": np.arange(40, N)}
    paths = []
    for fmt in ("netcdf", "hdf5", "zarr", "webdataset"):
        for parts in (1, 2):
            path = folder / f"TS_{fmt}{parts}{get_format(fmt).suffix}"
            get_format(fmt).write(collection(parts), path, splits=splits if parts == 1 else None)
            paths.append(path)
    paths.append(folder / "TS_pre.h5")
    get_format("hdf5").write(collection(), paths[-1], splits=splits, layout="presplit")
    for fmt in ("hdf5", "zarr"):
        jobs = [folder / f"job{fmt}{j}" for j in range(2)]
        for number, job in enumerate(jobs):
            get_format(fmt).write_job(collection(), job, number, 2, splits)
        paths.append(folder / f"TS_gathered{get_format(fmt).suffix}")
        get_format(fmt).gather(collection(), jobs, paths[-1], splits)
    return paths


def test_trainset_own_files_still_open_and_validate(tmp_path):
    paths = own_datasets(tmp_path)
    for path in paths:
        report = validate_dataset(path, num_classes=3)
        assert report["valid"], report["problems"]
        dataset = trainset.open_dataset(path)
        sample = next(iter(dataset)) if isinstance(dataset, IterableDataset) else dataset[0]
        assert MARK not in np.asarray(sample["data"])
    assert cli_validate(paths[0]).returncode == 0
