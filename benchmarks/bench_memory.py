"""Peak memory and time of every mixing and writing step at 1x and 10x the sample count.

The same dataset is built twice from the full demo table (~2.6M rows): the MIX_70S30M mix
(3000 frames) and the same mix with its ``total`` times 10 (30000 frames, 324 MB of
float32 frames). Each step runs in its own process, so its peak memory (max RSS) is its own:

    python benchmarks/bench_memory.py [--scales 1 10] [--jobs 2] [--workdir results/bench_memory]

Steps: ``frames`` (table -> frames Parquet), ``netcdf`` (frames -> NetCDF), ``splits``,
``hdf5_job``, ``zarr_job`` and ``wds_job`` (one of ``--jobs`` jobs writing HDF5 or Zarr chunks
or WebDataset shards from the NetCDF file; the largest peak and the slowest job are reported)
and ``hdf5_gather``, ``zarr_gather``, ``wds_gather`` (assemble the jobs' files into one dataset). Goal (issue 7): the 10x peak within 1.5x of the 1x peak, and time growing no worse
than linearly (10x time <= 10x the 1x time). A table of both and a JSON file are written.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
MIX = "MIX_70S30M"
STEPS = ("frames", "netcdf", "splits", "hdf5_job", "hdf5_gather", "zarr_job", "zarr_gather", "wds_job", "wds_gather")
JOB_STEPS = {"hdf5_job": "hdf5", "zarr_job": "zarr", "wds_job": "webdataset"}
GATHER_STEPS = {"hdf5_gather": "hdf5", "zarr_gather": "zarr", "wds_gather": "webdataset"}
OPTIONS = {"webdataset": {"samples_per_shard": 2048, "samples_per_member": 256}, "zarr": {"chunk": 256},
           "hdf5": {"chunk": 256}}
SPLITS = {"method": "group", "by": "group", "fractions": {"train": 0.8, "val": 0.1, "test": 0.1}}


def _config(scale: int) -> tuple[dict, dict]:
    """(the repo config, MIX_70S30M with every total and multiplier times ``scale``)."""
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    mix = {k: v for k, v in cfg["mixes"][MIX].items() if k not in ("formats", "format_options", "splits", "scalers")}
    families = {}
    for family, spec in mix["families"].items():
        spec = dict(spec)
        for key in ("total", "multiplier"):
            if key in spec:
                spec[key] = int(spec[key]) * scale
        families[family] = spec
    total = {"total": int(mix["total"]) * scale} if "total" in mix else {}
    return cfg, {**mix, **total, "families": families}


def step(name: str, workdir: Path, scale: int, job: int, jobs: int) -> float:
    """Run one step in this process; return its wall time in seconds."""
    from trainset.datasets import gather_dataset, split_dataset, write_dataset_job, write_mix_netcdf
    from trainset.io.base import get_format
    from trainset.mixing.stage import mix_frames
    from trainset.table.ingest import ingest_table

    cfg, mix = _config(scale)
    table, out = workdir / "table.parquet", workdir / f"x{scale}"
    frames, netcdf, splits = out / "frames.parquet", get_format("netcdf").path_for(out, MIX), out / "splits.json"
    start = time.perf_counter()
    if name == "table":
        ingest_table({"demo": "flu", "size": "full"}, cfg["season_axis"], cfg["seed"], table, workdir / "table.json")
    elif name == "frames":
        mix_frames(table, frames, out / "frames.json", MIX, mix, cfg["season_axis"], cfg["seed"], splits_cfg=SPLITS)
    elif name == "netcdf":
        write_mix_netcdf(frames, netcdf, MIX, mix, cfg["season_axis"], cfg["seed"])
    elif name == "splits":
        split_dataset(netcdf, splits, SPLITS, cfg["seed"])
    elif name in JOB_STEPS:
        fmt = JOB_STEPS[name]
        write_dataset_job(netcdf, splits, fmt, out / "jobs" / fmt / str(job), OPTIONS[fmt], job, jobs)
    elif name in GATHER_STEPS:
        fmt = GATHER_STEPS[name]
        folders = [out / "jobs" / fmt / str(j) for j in range(jobs)]
        gather_dataset(netcdf, splits, fmt, folders, get_format(fmt).path_for(out, MIX), OPTIONS[fmt])
    return time.perf_counter() - start


def measure(name: str, workdir: Path, scale: int, job: int = 0, jobs: int = 1) -> tuple[float, float]:
    """Run a step in a child process; return (seconds, peak RSS in MB)."""
    command = [sys.executable, __file__, "--step", name, "--workdir", str(workdir), "--scales", str(scale),
               "--job", str(job), "--jobs", str(jobs)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise SystemExit(f"step {name} at {scale}x failed")
    return float(output.strip().splitlines()[-1]), usage.ru_maxrss / 1024


def run_scale(workdir: Path, scale: int, jobs: int) -> dict[str, tuple[float, float]]:
    """Every step at one scale (the WebDataset jobs one after another: peaks stay separate)."""
    (workdir / f"x{scale}").mkdir(parents=True, exist_ok=True)
    results = {}
    for name in STEPS:
        if name in JOB_STEPS:
            runs = [measure(name, workdir, scale, job, jobs) for job in range(jobs)]
            results[name] = (max(s for s, _ in runs), max(m for _, m in runs))
        else:
            results[name] = measure(name, workdir, scale, jobs=jobs)
        print(f"  {scale}x {name:<11}{results[name][0]:>8.2f} s{results[name][1]:>8.0f} MB", flush=True)
    return results


def report(results: dict[int, dict[str, tuple[float, float]]]) -> str:
    """A markdown table: per step, time and peak at each scale, and the ratios to the first."""
    scales = sorted(results)
    base, top = scales[0], scales[-1]
    head = "| step | " + " | ".join(f"{s}x time | {s}x peak" for s in scales) + " | peak ratio | time ratio |"
    lines = [head, "|" + "---|" * (2 * len(scales) + 3)]
    for name in STEPS:
        cells = " | ".join(f"{results[s][name][0]:.1f} s | {results[s][name][1]:.0f} MB" for s in scales)
        peak = results[top][name][1] / results[base][name][1]
        ratio = results[top][name][0] / max(results[base][name][0], 1e-9)
        lines.append(f"| {name} | {cells} | {peak:.2f} | {ratio:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--jobs", type=int, default=2, help="WebDataset shard jobs")
    parser.add_argument("--job", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, default=REPO / "results" / "bench_memory")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.step:
        print(step(args.step, args.workdir, args.scales[0], args.job, args.jobs))
        return
    if not (args.workdir / "table.parquet").exists():
        print(f"demo table: {measure('table', args.workdir, 1)[0]:.1f} s", flush=True)
    results = {scale: run_scale(args.workdir, scale, args.jobs) for scale in args.scales}
    table = report(results)
    print(table)
    (args.workdir / "memory.md").write_text(table + "\n")
    (args.workdir / "memory.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
