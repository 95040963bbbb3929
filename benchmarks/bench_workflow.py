"""Time the default workflow: a clean run and a no-op rerun, against a trivial one-rule Snakefile.

    python benchmarks/bench_workflow.py [--rounds 5] [--cores 2] [--workdir DIR] [--no-clean]

The default config (the bundled demo) is built into ``DIR/results`` (``--directory DIR``, a
temporary folder by default), never into this checkout. Steps:

- ``clean``: ``snakemake --cores N`` from an empty folder (once; skipped with ``--no-clean``,
  which reuses the results already in ``DIR``);
- ``noop``: the same command again, which finds nothing to do (checked: it must print
  "Nothing to be done"), ``--rounds`` times;
- ``trivial``: a no-op rerun of a one-rule Snakefile (one ``touch``): Snakemake's own start-up,
  the floor a no-op rerun of any workflow pays. Interleaved with ``noop`` round by round
  (A, B, A, B, ...), so both see the same machine load.

Min and median of the rounds are reported, with their ratio, and the load average
(``os.getloadavg``, 1 min) before and after each step, since other processes on the machine
slow every figure. The no-op rows also give the CPU seconds (user + system) of each rerun,
which other processes disturb far less than the wall clock. Issue 17's goals: no-op <= 1.3x
trivial (min of 5), clean < 90 s on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

TRIVIAL = """rule all:
    output:
        "done.txt",
    shell:
        "touch {output}"
"""


def snakemake(snakefile: Path, workdir: Path, cores: int, expect_noop: bool = False,
              cpu: list[float] | None = None) -> float:
    """Seconds one ``snakemake --cores N`` takes (wall clock, start-up included); its CPU seconds
    (user + system, jobs included) are appended to ``cpu`` when given."""
    command = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "--directory", str(workdir),
               "--cores", str(cores)]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu is not None:
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    if expect_noop and "Nothing to be done" not in done.stderr + done.stdout:
        sys.exit(f"expected a no-op rerun in {workdir}, but jobs ran:\n{done.stderr[-3000:]}")
    return seconds


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def summary(name: str, times: list[float]) -> str:
    return f"| {name} | {min(times):.2f} | {statistics.median(times):.2f} | {len(times)} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", type=Path, help="folder for the default run (default: a temporary one)")
    parser.add_argument("--no-clean", action="store_true", help="reuse DIR's results: time the no-op only")
    args = parser.parse_args()
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="trainset-bench-"))).resolve()
    if workdir == REPO:
        sys.exit("--workdir: not the checkout itself (its results/ would be rebuilt); give another folder")
    trivial = Path(tempfile.mkdtemp(prefix="trainset-trivial-"))
    (trivial / "Snakefile").write_text(TRIVIAL)
    snakefile = REPO / "Snakefile"
    print(f"workdir {workdir}, cores {args.cores}, load before {load()}")
    rows = []
    if not args.no_clean:
        for stale in ("results", ".snakemake"):
            shutil.rmtree(workdir / stale, ignore_errors=True)
        before = load()
        clean = snakemake(snakefile, workdir, args.cores)
        rows.append(summary("default workflow, clean", [clean]) + f" {before} -> {load()} |")
        print(rows[-1], flush=True)
    snakemake(trivial / "Snakefile", trivial, args.cores)  # builds done.txt once
    snakemake(snakefile, workdir, args.cores, expect_noop=True)  # warm the file cache
    noop, floor, noop_cpu, floor_cpu = [], [], [], []
    before = load()
    for _ in range(args.rounds):
        floor.append(snakemake(trivial / "Snakefile", trivial, args.cores, expect_noop=True, cpu=floor_cpu))
        noop.append(snakemake(snakefile, workdir, args.cores, expect_noop=True, cpu=noop_cpu))
    after = load()
    rows.append(summary("trivial one-rule Snakefile, no-op", floor) + f" {before} -> {after} |")
    rows.append(summary("default workflow, no-op rerun", noop) + f" {before} -> {after} |")
    rows.append(summary("trivial one-rule Snakefile, no-op (CPU s)", floor_cpu) + f" {before} -> {after} |")
    rows.append(summary("default workflow, no-op rerun (CPU s)", noop_cpu) + f" {before} -> {after} |")
    print("| step | min s | median s | rounds | load (1 min) |\n|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"no-op / trivial: {min(noop) / min(floor):.2f}x (min), "
          f"{statistics.median(noop) / statistics.median(floor):.2f}x (median); CPU "
          f"{min(noop_cpu) / min(floor_cpu):.2f}x (min), "
          f"{statistics.median(noop_cpu) / statistics.median(floor_cpu):.2f}x (median)")  # fmt: skip
    shutil.rmtree(trivial)


if __name__ == "__main__":
    main()
