"""Benchmark the flu spine on the full demo table (~2.6M rows), the MIX_70S30M mix (3000 frames).

Each step runs in its own process so its peak memory (max RSS) is measured alone:

    python benchmarks/bench_frames.py [--repeat 3] [--workdir results/bench]

Steps: ``ingest`` (demo table -> validated Parquet), ``frames`` (read the table, build the
frames), ``write_frames`` (build + write the frames Parquet), ``convert`` (frames Parquet ->
DataArray), ``netcdf`` (convert + write the NetCDF file). Targets (issue 2, 2 cores): frames
< 4 s, convert < 1 s, peak memory < 600 MB. Old code: 351 s and 3.4 GB.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
MIX = "MIX_70S30M"


def _config() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def step(name: str, workdir: Path) -> float:
    """Run one step in this process; return its wall time in seconds."""
    from trainset.arrays import frames_to_dataarray
    from trainset.datasets import write_mix_netcdf
    from trainset.mixing.build import build_frames
    from trainset.mixing.stage import TABLE_COLUMNS_USED, mix_frames
    from trainset.mixing.store import read_frame_values
    from trainset.seasons import SeasonAxis
    from trainset.table.ingest import ingest_table
    from trainset.table.io import read_table

    cfg = _config()
    axis = SeasonAxis.from_config(cfg["season_axis"])
    mix_cfg, table, frames = cfg["mixes"][MIX], workdir / "table.parquet", workdir / "frames.parquet"
    start = time.perf_counter()
    if name == "ingest":
        ingest_table({"demo": "flu", "size": "full"}, cfg["season_axis"], cfg["seed"], table, workdir / "table.json")
    elif name == "frames":
        build_frames(read_table(table, columns=TABLE_COLUMNS_USED), mix_cfg, MIX, axis, cfg["seed"])
    elif name == "write_frames":
        mix_frames(table, frames, workdir / "frames.json", MIX, mix_cfg, cfg["season_axis"], cfg["seed"])
    elif name == "convert":
        values, table_frames = read_frame_values(frames, axis.weeks, axis.places)
        frames_to_dataarray(values, table_frames, axis.week_numbers, axis.places)
    elif name == "netcdf":
        write_mix_netcdf(frames, workdir / "TS.nc", MIX, mix_cfg, cfg["season_axis"], cfg["seed"])
    return time.perf_counter() - start


def measure(name: str, workdir: Path) -> tuple[float, float]:
    """Run a step in a child process; return (seconds, peak RSS in MB)."""
    child = subprocess.Popen([sys.executable, __file__, "--step", name, "--workdir", str(workdir)],
                             stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    output = child.stdout.read()
    if status != 0:
        raise SystemExit(f"step {name} failed")
    return float(output.strip().splitlines()[-1]), usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=REPO / "results" / "bench")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.step:
        print(step(args.step, args.workdir))
        return
    print(f"{'step':<14}{'median s':>10}{'min s':>8}{'peak MB':>9}")
    for name in ("ingest", "frames", "write_frames", "convert", "netcdf"):
        runs = [measure(name, args.workdir) for _ in range(1 if name == "ingest" else args.repeat)]
        seconds = [s for s, _ in runs]
        print(f"{name:<14}{statistics.median(seconds):>10.2f}{min(seconds):>8.2f}{max(m for _, m in runs):>9.0f}")


if __name__ == "__main__":
    main()
