"""Benchmark the four dataset formats on a [20000, 64, 16] float32 dataset (+ int64 labels).

    python benchmarks/bench_formats.py [--samples 20000] [--workdir results/bench_formats]

For each format: write speed (MB/s of raw array bytes), size on disk, loader samples/s for one
shuffled epoch as a ratio to the same loader over the array in memory, and one full sequential
read as a ratio to copying the in-RAM array. Goals (issue 3, 2 cores): HDF5 and NetCDF >= 0.5 of
the in-memory loader, Zarr >= 0.3, WebDataset >= 0.3; full sequential reads >= 0.5.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr

import trainset
from trainset.collection import Collection
from trainset.io.base import get_format
from trainset.loaders.mapped import MappedDataset, make_loader
from trainset.loaders.memory import MemoryReader

REPO = Path(__file__).resolve().parents[1]
BATCH = 256
FORMAT_NAMES = ("netcdf", "hdf5", "zarr", "webdataset")
OPTIONS = {"webdataset": {"samples_per_member": 256, "samples_per_shard": 5120}}


def collection(n: int) -> Collection:
    rng = np.random.default_rng(0)
    data = xr.Dataset({"data": (("sample", "time", "feature"), rng.normal(size=(n, 64, 16)).astype(np.float32)),
                       "labels": (("sample",), rng.integers(0, 10, size=n).astype(np.int64))})
    return Collection.single(data, attrs={"task": "seq2static_classification"})


def epoch_rate(dataset, shuffle: bool = True) -> float:
    """Samples per second for one epoch through make_loader (best of two runs)."""
    best = 0.0
    for epoch in range(2):
        loader = make_loader(dataset, BATCH, shuffle=shuffle, seed=0, epoch=epoch)
        start, count = time.perf_counter(), 0
        for batch in loader:
            count += len(batch["index"])
        best = max(best, count / (time.perf_counter() - start))
    return best


def sequential_seconds(name: str, path: Path) -> float:
    """Time to read every sample once, in stored order, in blocks of 4096 (the same call for every format)."""
    start = time.perf_counter()
    for _ in get_format(name).reader(path).iter_blocks(None, ["data"], rows=4096):
        pass
    return time.perf_counter() - start


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--workdir", type=Path, default=REPO / "results" / "bench_formats")
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    torch.set_num_threads(1)
    data = collection(args.samples)
    raw_mb = data.parts["all"]["data"].nbytes / 1e6
    array = data.parts["all"]["data"].values
    start = time.perf_counter()
    array.copy()
    copy_seconds = time.perf_counter() - start
    memory = epoch_rate(MappedDataset(MemoryReader(data)))
    print(f"in-memory loader: {memory:,.0f} samples/s; in-RAM copy of {raw_mb:.0f} MB: {copy_seconds * 1000:.0f} ms")
    print(f"{'format':<11}{'write MB/s':>11}{'size MB':>9}{'loader/s':>11}{'ratio':>7}{'seq ratio':>10}")
    for name in FORMAT_NAMES:
        fmt = get_format(name)
        path = fmt.path_for(args.workdir, "bench")
        start = time.perf_counter()
        fmt.write(data, path, None, **OPTIONS.get(name, {}))
        write = raw_mb / (time.perf_counter() - start)
        streamed = {"shuffle": True, "batch_size": BATCH, "shuffle_buffer": 4096}  # a streamed dataset batches itself
        dataset = trainset.open_dataset(path, **({} if fmt.random_access else streamed))
        rate = epoch_rate(dataset)
        sequential = copy_seconds / sequential_seconds(name, path)
        print(f"{name:<11}{write:>11.0f}{size_mb(path):>9.1f}{rate:>11,.0f}{rate / memory:>7.2f}{sequential:>10.2f}")


if __name__ == "__main__":
    main()
