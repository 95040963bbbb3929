"""Benchmark the four dataset formats on a [20000, 64, 16] float32 dataset (+ int64 labels).

    python benchmarks/bench_formats.py [--samples 20000] [--rounds 7] [--workdir results/bench_formats]
                                       [--only ROW ...]

For each format: write speed (MB/s of raw array bytes), size on disk, and one full sequential
read as a ratio to copying the in-RAM array. Then the loaders (batch 256, workers 0, one shuffled
epoch per round): every ratio is to a fixed reference, the bare numpy gather of the same shuffled
batches from the arrays in memory, measured interleaved with each row (A, B, A, B, ...) for
``--rounds`` rounds; min and median samples/s of both are printed, with the load average, since
the machine may be shared. Reference rows: the numpy gather itself and a hand-written zarr loop
reading whole chunks. Goals (issue 17): in-memory make_loader >= 0.9, HDF5/NetCDF >= 0.55,
Zarr >= 0.35 (and faster than the hand-written loop), WebDataset >= 0.45 with sha256 checking on.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
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
from trainset.loaders.sampler import BlockShuffleSampler

REPO = Path(__file__).resolve().parents[1]
BATCH = 256
FORMAT_NAMES = ("netcdf", "hdf5", "zarr", "webdataset")
OPTIONS = {"webdataset": {"samples_per_member": 256, "samples_per_shard": 5120}}


def collection(n: int) -> Collection:
    rng = np.random.default_rng(0)
    data = xr.Dataset({"data": (("sample", "time", "feature"), rng.normal(size=(n, 64, 16)).astype(np.float32)),
                       "labels": (("sample",), rng.integers(0, 10, size=n).astype(np.int64))})
    return Collection.single(data, attrs={"task": "seq2static_classification"})


def epoch_rate(dataset, epoch: int = 0) -> float:
    """Samples per second for one shuffled epoch through make_loader."""
    loader = make_loader(dataset, BATCH, shuffle=True, seed=0, epoch=epoch)
    start, count = time.perf_counter(), 0
    for batch in loader:
        count += len(batch["index"])
    return count / (time.perf_counter() - start)


def gather_rate(arrays: list[np.ndarray], n: int, epoch: int = 0) -> float:
    """The reference: the same shuffled batches gathered from the arrays in RAM (one fancy index each)."""
    order = BlockShuffleSampler(n, BATCH, BATCH, True, seed=0)
    order.set_epoch(epoch)
    positions = order.order()
    start = time.perf_counter()
    for begin in range(0, n, BATCH):
        rows = positions[begin:begin + BATCH]
        for array in arrays:
            array[rows]
    return n / (time.perf_counter() - start)


def zarr_loop_rate(path: Path, n: int, epoch: int = 0) -> float:
    """A hand-written loop: each shuffled chunk-aligned batch read as whole chunks with zarr's sync API."""
    import zarr

    group = zarr.open_group(path, mode="r")
    arrays = [group["all"]["data"], group["all"]["labels"]]
    order = BlockShuffleSampler(n, BATCH, BATCH, True, seed=0)
    order.set_epoch(epoch)
    positions = order.order()
    start = time.perf_counter()
    for begin in range(0, n, BATCH):
        rows = positions[begin:begin + BATCH]
        lo = rows.min() // BATCH * BATCH
        hi = min(n, (rows.max() // BATCH + 1) * BATCH)
        for array in arrays:
            torch.from_numpy(array[lo:hi][rows - lo])
    return n / (time.perf_counter() - start)


def interleaved(row, reference, rounds: int) -> tuple[list[float], list[float]]:
    """Samples/s of ``row`` and ``reference``, alternating A, B, A, B, ... (one warm-up each)."""
    row(0), reference(0)
    a, b = [], []
    for epoch in range(1, rounds + 1):
        a.append(row(epoch))
        b.append(reference(epoch))
    return a, b


def per_batch_us(rates: list[float]) -> float:
    """Median microseconds per batch of ``BATCH`` samples, from samples/s."""
    return BATCH / statistics.median(rates) * 1e6


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
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=REPO / "results" / "bench_formats")
    parser.add_argument("--only", action="append", default=[], metavar="ROW",
                        help="run only the loader rows whose name contains ROW (repeatable; e.g. in-memory, "
                             "hdf5); formats no chosen row reads are not written")
    args = parser.parse_args()
    wanted = lambda label: not args.only or any(o in label for o in args.only)  # noqa: E731
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    torch.set_num_threads(1)
    data = collection(args.samples)
    raw_mb = data.parts["all"]["data"].nbytes / 1e6
    arrays = [data.parts["all"][v].values for v in ("data", "labels")]
    start = time.perf_counter()
    arrays[0].copy()
    copy_seconds = time.perf_counter() - start
    print(f"in-RAM copy of {raw_mb:.0f} MB: {copy_seconds * 1000:.0f} ms")
    print(f"{'format':<11}{'write MB/s':>11}{'size MB':>9}{'seq ratio':>10}")
    rows = {"in-memory make_loader": lambda e: epoch_rate(memory, e)}
    memory = MappedDataset(MemoryReader(data))
    for name in FORMAT_NAMES:
        if not wanted(f"{name} loader") and not (name == "zarr" and wanted("hand-written zarr loop")):
            continue
        fmt = get_format(name)
        path = fmt.path_for(args.workdir, "bench")
        start = time.perf_counter()
        fmt.write(data, path, None, **OPTIONS.get(name, {}))
        write = raw_mb / (time.perf_counter() - start)
        sequential = copy_seconds / sequential_seconds(name, path)
        print(f"{name:<11}{write:>11.0f}{size_mb(path):>9.1f}{sequential:>10.2f}")
        streamed = {"shuffle": True, "batch_size": BATCH, "shuffle_buffer": 4096}  # a streamed dataset batches itself
        dataset = trainset.open_dataset(path, **({} if fmt.random_access else streamed))
        rows[f"{name} loader"] = lambda e, d=dataset: epoch_rate(d, e)
        if name == "zarr":
            rows["hand-written zarr loop"] = lambda e, p=path: zarr_loop_rate(p, args.samples, e)
    rows = {label: row for label, row in rows.items() if wanted(label)}
    reference = lambda e: gather_rate(arrays, args.samples, e)  # noqa: E731
    gc.collect()
    gc.freeze()  # the ~200k objects of the set-up are never rescanned: a full collection (~100 ms)
    # landing inside one timed epoch would otherwise halve that round's figure, for any row
    print(f"\nloaders: batch {BATCH}, workers 0, {args.rounds} interleaved rounds; samples/s min / median; "
          f"ratio = row / numpy gather of the same round; us/batch = median time per batch of {BATCH}")
    print(f"{'row':<24}{'min/s':>11}{'median/s':>11}{'us/batch':>9}{'gather med':>12}{'ratio min':>10}"
          f"{'ratio med':>10}{'load':>6}")
    a, _ = interleaved(reference, reference, args.rounds)
    print(f"{'numpy gather':<24}{min(a):>11,.0f}{statistics.median(a):>11,.0f}{per_batch_us(a):>9.1f}"
          f"{statistics.median(a):>12,.0f}{1.0:>10.2f}{1.0:>10.2f}{os.getloadavg()[0]:>6.1f}")
    for label, row in rows.items():
        a, b = interleaved(row, reference, args.rounds)
        ratios = [x / y for x, y in zip(a, b)]
        print(f"{label:<24}{min(a):>11,.0f}{statistics.median(a):>11,.0f}{per_batch_us(a):>9.1f}"
              f"{statistics.median(b):>12,.0f}{min(ratios):>10.2f}{statistics.median(ratios):>10.2f}"
              f"{os.getloadavg()[0]:>6.1f}")


if __name__ == "__main__":
    main()
