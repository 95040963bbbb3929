"""Bigger-than-memory writing: WebDataset shards, Zarr and HDF5 chunks written by several jobs and
gathered, and conversions that read the NetCDF source lazily, slab by slab."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import stored_sequences
from trainset.datasets import convert_dataset, gather_dataset, write_dataset_job
from trainset.errors import TrainsetError
from trainset.io.base import get_format
from trainset.io.netcdf import NetCDFFormat
from trainset.io.wds.jobs import JOB_SHARDS

OPTIONS = {"samples_per_shard": 40, "samples_per_member": 8}


def folder_digest(folder: Path) -> dict[str, str]:
    return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(folder.rglob("*")) if f.is_file()}


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return stored_sequences(tmp_path_factory.mktemp("src"), "forecast", 250, seed=4, length=24, fmt="netcdf")


@pytest.mark.parametrize("jobs", [1, 3, 9])
def test_jobs_then_gather_equal_one_writer_byte_for_byte(source, tmp_path, jobs):
    single = tmp_path / "single-wds"
    convert_dataset(source, source.parent / "splits.json", "webdataset", single, OPTIONS)
    folders = [tmp_path / "jobs" / str(job) for job in range(jobs)]
    for job, folder in enumerate(folders):
        write_dataset_job(source, None, "webdataset", folder, OPTIONS, job, jobs)
    gathered = tmp_path / "gathered-wds"
    gather_dataset(source, source.parent / "splits.json", "webdataset", folders, gathered, OPTIONS)
    assert folder_digest(gathered) == folder_digest(single)
    written = sorted(f.name for folder in folders for f in folder.glob("shard-*.tar"))
    assert written == [f"shard-{n:06d}.tar" for n in range(7)]  # 250 samples / 40 per shard
    assert get_format("webdataset").check(gathered) == []
    # shards are hard links to the jobs' files, not copies (with 9 jobs for 7 shards, some write none)
    first = next(folder / "shard-000000.tar" for folder in folders if (folder / "shard-000000.tar").exists())
    assert (gathered / "shard-000000.tar").stat().st_ino == first.stat().st_ino


def test_gather_refuses_missing_job(source, tmp_path):
    folders = [tmp_path / str(job) for job in range(2)]
    for job, folder in enumerate(folders):
        write_dataset_job(source, None, "webdataset", folder, OPTIONS, job, 2)
    with pytest.raises(TrainsetError, match="not the 7 the layout asks for"):
        gather_dataset(source, None, "webdataset", folders[:1], tmp_path / "out-wds", OPTIONS)
    assert not (tmp_path / "out-wds").exists()
    assert (folders[1] / JOB_SHARDS).is_file()


@pytest.mark.parametrize("fmt, options", [("webdataset", OPTIONS), ("zarr", {"chunk": 16}), ("hdf5", {"chunk": 16})])
def test_job_number_out_of_range_is_refused(source, tmp_path, fmt, options):
    with pytest.raises(TrainsetError, match="job 2 is not in 0..1"):
        write_dataset_job(source, None, fmt, tmp_path / "j", options, 2, 2)
    assert not (tmp_path / "j").exists()


@pytest.mark.parametrize("jobs", [1, 4, 40])
def test_zarr_jobs_then_gather_equal_one_writer_file_for_file(source, tmp_path, jobs):
    options = {"chunk": 16, "compression": "zstd"}
    single = tmp_path / "single.zarr"
    convert_dataset(source, source.parent / "splits.json", "zarr", single, options)
    folders = [tmp_path / "jobs" / str(job) for job in range(jobs)]
    for job, folder in enumerate(folders):
        write_dataset_job(source, None, "zarr", folder, options, job, jobs)
    data_chunks = [f.relative_to(folder) for folder in folders for f in sorted(folder.rglob("*"))
                   if f.is_file() and "c" in f.relative_to(folder).parts and "coords" not in f.parts]
    variables = {f.parts[:2] for f in data_chunks}  # (part, variable)
    assert len(data_chunks) == len(set(data_chunks)) == 16 * len(variables)  # 250 samples / 16: each chunk once
    gathered = tmp_path / "gathered.zarr"
    gather_dataset(source, source.parent / "splits.json", "zarr", folders, gathered, options)
    assert folder_digest(gathered) == folder_digest(single)
    assert get_format("zarr").check(gathered) == []


def test_zarr_gather_refuses_a_missing_job(source, tmp_path):
    folders = [tmp_path / str(job) for job in range(3)]
    for job, folder in enumerate(folders):
        write_dataset_job(source, None, "zarr", folder, {"chunk": 16}, job, 3)
    with pytest.raises(TrainsetError, match="chunks of .* came from the jobs"):
        gather_dataset(source, None, "zarr", folders[:2], tmp_path / "out.zarr", {"chunk": 16})
    assert not (tmp_path / "out.zarr").exists()


def test_open_netcdf_reads_lazily_and_load_equals_it(source):
    fmt = NetCDFFormat()
    loaded, splits = fmt.load(source)
    with fmt.open(source) as (lazy, lazy_splits):
        part = next(iter(lazy.parts.values()))
        var = next(iter(part.data_vars))
        assert not part[var].variable._in_memory  # nothing read yet
        np.testing.assert_array_equal(part[var][10:20].values, next(iter(loaded.parts.values()))[var][10:20].values)
        assert not part[var].variable._in_memory  # a slice read only that slice
    assert splits.keys() == lazy_splits.keys()
    for name, rows in splits.items():
        np.testing.assert_array_equal(rows, lazy_splits[name])


@pytest.mark.parametrize("fmt, suffix", [("hdf5", ".h5"), ("zarr", ".zarr")])
def test_conversions_from_the_lazy_source_keep_every_sample(source, tmp_path, fmt, suffix):
    out = tmp_path / f"TS_x{suffix}"
    convert_dataset(source, source.parent / "splits.json", fmt, out, {"chunk": 16})
    original, _ = NetCDFFormat().load(source)
    back, _ = get_format(fmt).load(out)
    for name, part in original.parts.items():
        for var in part.data_vars:
            np.testing.assert_array_equal(back.parts[name][var].values, part[var].values)


@pytest.mark.parametrize("layout", ["single", "presplit"])
def test_hdf5_jobs_give_the_same_file_for_any_count_and_the_same_samples(source, tmp_path, layout):
    options = {"chunk": 16, "compression": "gzip", "layout": layout}
    splits = source.parent / "splits.json"
    gathered = {}
    for jobs in (1, 3, 20):
        folders = [tmp_path / f"jobs{jobs}" / str(job) for job in range(jobs)]
        for job, folder in enumerate(folders):
            write_dataset_job(source, splits, "hdf5", folder, options, job, jobs)
        gathered[jobs] = tmp_path / f"TS_{jobs}.h5"
        gather_dataset(source, splits, "hdf5", folders, gathered[jobs], options)
    assert gathered[1].read_bytes() == gathered[3].read_bytes() == gathered[20].read_bytes()
    assert get_format("hdf5").check(gathered[3]) == []
    single = tmp_path / "single.h5"
    convert_dataset(source, splits, "hdf5", single, options)
    one, one_splits = get_format("hdf5").load(single)
    other, other_splits = get_format("hdf5").load(gathered[3])
    for name, part in one.parts.items():
        for var in part.data_vars:
            np.testing.assert_array_equal(other.parts[name][var].values, part[var].values)
    for split, rows in one_splits.items():
        np.testing.assert_array_equal(other_splits[split], rows)


def test_hdf5_gather_refuses_a_missing_job(source, tmp_path):
    folders = [tmp_path / str(job) for job in range(2)]
    for job, folder in enumerate(folders):
        write_dataset_job(source, None, "hdf5", folder, {"chunk": 16}, job, 2)
    with pytest.raises(TrainsetError, match="chunks of /.* came from the jobs"):
        gather_dataset(source, None, "hdf5", folders[1:], tmp_path / "out.h5", {"chunk": 16})
    assert not (tmp_path / "out.h5").exists()


@pytest.mark.parametrize("fmt, options", [("zarr", {"chunk": 16}), ("hdf5", {"chunk": 16})])
def test_gather_refuses_a_chunk_written_by_two_jobs(source, tmp_path, fmt, options):
    folders = [tmp_path / str(job) for job in range(2)]
    for job, folder in enumerate(folders):
        write_dataset_job(source, None, fmt, folder, options, job, 2)
    with pytest.raises(TrainsetError, match="written by two jobs"):
        gather_dataset(source, None, fmt, [*folders, folders[0]], tmp_path / "out", options)
    assert not (tmp_path / "out").exists()
