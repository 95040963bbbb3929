"""Benchmark the flu spine on the full demo table (~2.6M rows), the MIX_70S30M mix (3000 frames).

Each step runs in its own process so its peak memory (max RSS) is measured alone:

    python benchmarks/bench_frames.py [--rounds 5] [--workdir results/bench] [--compare OTHER_CHECKOUT]

Steps: ``ingest`` (demo table -> validated Parquet), ``frames`` (read the table, build the
frames), ``write_frames`` (build + write the frames Parquet), ``convert`` (frames Parquet ->
DataArray), ``netcdf`` (convert + write the NetCDF file). Mixing uses the mix's splits (the
schema's default, group splits), so fill sources are kept inside splits as in the workflow.
Targets (issue 2, 2 cores): frames < 4 s, convert < 1 s, peak memory < 600 MB. Old code: 351 s
and 3.4 GB.

``--compare`` runs every step of another checkout of trainset (e.g. a ``git worktree`` of the
previous commit) interleaved with this one, round by round (A, B, A, B, ...), each in its own
process with that checkout's ``src`` first on ``PYTHONPATH``, so both see the same machine load;
min and median of the rounds are reported for each.
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
    splits = mix_cfg.get("splits", {})
    start = time.perf_counter()
    if name == "ingest":
        ingest_table({"demo": "flu", "size": "full"}, cfg["season_axis"], cfg["seed"], table, workdir / "table.json")
    elif name == "frames":
        build_frames(read_table(table, columns=TABLE_COLUMNS_USED), mix_cfg, MIX, axis, cfg["seed"], splits)
    elif name == "write_frames":
        mix_frames(table, frames, workdir / "frames.json", MIX, mix_cfg, cfg["season_axis"], cfg["seed"],
                   splits_cfg=splits)
    elif name == "convert":
        values, table_frames = read_frame_values(frames, axis.weeks, axis.places)
        frames_to_dataarray(values, table_frames, axis.week_numbers, axis.places)
    elif name == "netcdf":
        write_mix_netcdf(frames, workdir / "TS.nc", MIX, mix_cfg, cfg["season_axis"], cfg["seed"])
    return time.perf_counter() - start


STEPS = ("ingest", "frames", "write_frames", "convert", "netcdf")


def measure(name: str, workdir: Path, repo: Path = REPO) -> tuple[float, float]:
    """Run a step of the checkout ``repo`` in a child process; return (seconds, peak RSS in MB)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo / "src"), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, str(repo / "benchmarks" / "bench_frames.py"), "--step", name,
                              "--workdir", str(workdir)], stdout=subprocess.PIPE, text=True, env=env)
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise SystemExit(f"step {name} of {repo} failed")
    return float(output.strip().splitlines()[-1]), usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", "--repeat", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=REPO / "results" / "bench")
    parser.add_argument("--compare", type=Path, help="another trainset checkout, measured interleaved")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        args.workdir.mkdir(parents=True, exist_ok=True)
        print(step(args.step, args.workdir))
        return
    checkouts = {"this": REPO, **({"compare": args.compare.resolve()} if args.compare else {})}
    workdirs = {label: args.workdir / label for label in checkouts}
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for name in STEPS:
        for round_ in range(args.rounds):
            for label, repo in checkouts.items():  # interleaved: A, B, A, B, ...
                runs.setdefault((label, name), []).append(measure(name, workdirs[label], repo))
    print(f"{'checkout':<10}{'step':<14}{'min s':>8}{'median s':>10}{'peak MB':>9}")
    for (label, name), results in runs.items():
        seconds = [s for s, _ in results]
        print(f"{label:<10}{name:<14}{min(seconds):>8.2f}{statistics.median(seconds):>10.2f}"
              f"{max(m for _, m in results):>9.0f}")


if __name__ == "__main__":
    main()
