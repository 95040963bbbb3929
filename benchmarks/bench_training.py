"""Training throughput (samples/s) of each domain's demo model, on CPU and, where present, on a GPU.

    PYTHONPATH=src python benchmarks/bench_training.py                    # CPU 1 and 2 threads (+ GPU)
    PYTHONPATH=src python benchmarks/bench_training.py --scale 0.1 --rounds 3 --models flu
    PYTHONPATH=src python benchmarks/bench_training.py --goal --json bench.json   # the flu GPU goal

Builds each demo dataset in a temporary folder (sequence pulses, flight site-days, macro
worlds, synthetic flu frames on the 53-week x 51-place grid), then times training epochs of its
model through the real trainer (loader, scalers, model, loss, optimiser step, autocast) after
one warm-up epoch. Each round is one epoch; the table gives the min and median samples/s of
``--rounds`` rounds (at least 3) per setting: CPU at 1 and 2 torch threads in fp32, and on the
GPU (when torch sees one) in fp32 and bf16. Every GPU figure is printed, and stored with
``--json``, beside the GPU's name and the torch and CUDA versions.

``--goal`` also checks issue 15's throughput goal: the flu diffusion U-Net on one GPU at least
20x its 2-thread CPU throughput (median vs median; meaningful on an H100-class GPU). The other
GPU goal (a 5-minute SURV_ONLY run reaching ks_peak_size < 0.3) needs the workflow:
benchmarks/gpu_check.sh runs both.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from trainset.collection import Collection
from trainset.io.base import get_format
from trainset.scalers import fit_dataset_scalers
from trainset.splits import make_splits, write_splits
from trainset.train.config import TrainingConfig
from trainset.train.run import prepare_run
from trainset.train.trainer import Trainer

GOAL_SPEEDUP = 20.0
"""Issue 15: flu diffusion on one H100-class GPU >= 20x its 2-thread CPU throughput."""
FLU = "flu (diffusion U-Net)"


def datasets(folder: Path, scale: float, only: list[str] | None) -> dict[str, tuple[Path, dict]]:
    """name -> (stored dataset, run config) of each demo model whose name contains one of ``only``."""
    builders = {
        "sequences (GRU)": _pulses, "sequences (TCN)": _pulses, "flights (ordinal)": _flights,
        "macro (world MLP)": _macro, FLU: _flu,
    }
    runs = {
        "sequences (GRU)": {"model": {"name": "sequence", "params": {"kind": "gru", "hidden": 64}},
                            "training": {"losses": [{"name": "cross_entropy"}], "batch_size": 64}},
        "sequences (TCN)": {"model": {"name": "sequence", "params": {"kind": "tcn", "hidden": 64}},
                            "training": {"losses": [{"name": "cross_entropy"}], "batch_size": 64}},
        "flights (ordinal)": {"model": {"name": "flight", "params": {"head": "ordinal"}},
                              "training": {"losses": [{"name": "bce"}, {"name": "monotonicity", "weight": 0.1}],
                                           "batch_size": 1024}},
        "macro (world MLP)": {"model": {"name": "world_mlp", "params": {"hidden": [128, 128]}},
                              "training": {"losses": [{"name": "horizon_mse"}], "batch_size": 64}},
        FLU: {"model": {"name": "diffusion", "params": {"base_channels": 16}},  # the demo flu_diffusion run
              "training": {"losses": [{"name": "mse"}], "batch_size": 32}},
    }
    out, built = {}, {}
    for name, build in builders.items():
        if only and not any(word.lower() in name.lower() for word in only):
            continue
        if build not in built:
            built[build] = build(folder, scale)
        out[name] = (built[build], runs[name])
    return out


def _pulses(folder: Path, scale: float) -> Path:
    from trainset.domains.sequences import frame_sequences, make_sequence_tables

    inputs, labels = make_sequence_tables("pulses", _n(4000, scale), seed=0, length=64)
    return _store(folder, "pulses", frame_sequences(inputs, labels, "seq2static_classification", "p"), "hdf5")


def _flights(folder: Path, scale: float) -> Path:
    from trainset.domains.flights import frame_flights, make_flight_table

    flights = frame_flights(make_flight_table(n_sites=_n(60, scale), years=2, seed=0), "f")
    return _store(folder, "flights", flights, "webdataset", samples_per_member=256)


def _macro(folder: Path, scale: float) -> Path:
    from trainset.domains.macro import extrapolation_splits, frame_worlds, simulate_worlds

    n = _n(1000, scale)
    theta, irfs, meta = simulate_worlds({"nk": n, "var": n, "var_us": n, "lss": n}, seed=0)
    worlds = frame_worlds(theta, irfs, meta)
    worlds.attrs["task"] = "irf"
    return _store(folder, "macro", worlds, "zarr", splits=extrapolation_splits(worlds, 0))


def _flu(folder: Path, scale: float) -> Path:
    """Synthetic flu frames (sample, feature, season_week, place) = (n, 1, 53, 51): one epidemic
    curve per place with random peak, width and size, plus noise; the shape of a mix's NetCDF."""
    n = _n(1024, scale)
    rng = np.random.default_rng(0)
    week = np.arange(53)[None, :, None]
    peak, width = rng.uniform(10, 35, size=(n, 1, 51)), rng.uniform(3, 8, size=(n, 1, 51))
    values = rng.lognormal(3.0, 1.0, size=(n, 1, 51)) * np.exp(-0.5 * ((week - peak) / width) ** 2)
    values += rng.gamma(1.0, 0.5, size=(n, 53, 51))
    ds = xr.Dataset({"frames": (("sample", "feature", "season_week", "place"), values[:, None].astype(np.float32))},
                    coords={"season_week": np.arange(1, 54), "place": [f"P{i:02d}" for i in range(51)]})
    return _store(folder, "flu", Collection.single(ds, "flu", {"task": "frames", "name": "flu"}), "netcdf")


def _n(full: int, scale: float) -> int:
    return max(8, int(round(full * scale)))


def _store(folder: Path, name: str, collection: Collection, fmt: str, splits=None, **options) -> Path:
    splits = splits or make_splits(len(collection), {"method": "random"}, seed=0)
    path = get_format(fmt).path_for(folder / name, name)
    path.parent.mkdir(parents=True)
    get_format(fmt).write(collection, path, splits, **options)
    write_splits(splits, path.parent / "splits.json")
    fit_dataset_scalers(path, path.parent / "scalers.json")
    return path


def gpu_context() -> dict[str, str | None]:
    """What every GPU figure is reported with: the GPU's name, torch's and CUDA's versions."""
    return {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda}


def throughput(path: Path, run: dict, device: str, precision: str, threads: int, rounds: int) -> list[float]:
    """Samples/s of ``rounds`` training epochs (after one warm-up epoch) of one setting."""
    torch.set_num_threads(threads)
    training = {**run["training"], "epochs": rounds + 1, "device": device, "precision": precision}
    cfg = TrainingConfig.from_dict({"name": "bench", **run, "training": training})
    on = torch.device(device)
    prepared = prepare_run(cfg, path, path.parent / "scalers.json", splits={"train": True}, device=on)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(prepared.model, prepared.objective, cfg, prepared.batches("train", True),
                          prepared.batches("train", False), out, prepare=prepared.prepare(),
                          optimizer=prepared.optimizer)
        trainer.train_epoch(1)  # warm-up: allocations, cuDNN/kernel selection, file caches
        speeds = []
        for epoch in range(2, rounds + 2):
            _sync(on)
            start = time.perf_counter()
            _, samples = trainer.train_epoch(epoch)
            _sync(on)
            speeds.append(samples / (time.perf_counter() - start))
    return speeds


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def settings(gpu: bool, cpu_threads: list[int], gpu_threads: int) -> list[tuple[str, str, int]]:
    """(device, precision, threads) to measure: CPU fp32 per thread count; GPU fp32 and bf16."""
    out = [("cpu", "fp32", threads) for threads in cpu_threads]
    if gpu:
        out += [("cuda", "fp32", gpu_threads)]
        if torch.cuda.is_bf16_supported():
            out += [("cuda", "bf16", gpu_threads)]
    return out


def measure(args: argparse.Namespace) -> list[dict]:
    gpu = torch.cuda.is_available() and not args.no_gpu
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (path, run) in datasets(Path(tmp), args.scale, args.models).items():
            for device, precision, threads in settings(gpu, args.threads, args.gpu_threads):
                speeds = throughput(path, run, device, precision, threads, args.rounds)
                record = {"model": name, "device": device, "precision": precision, "threads": threads,
                          "rounds": [round(s, 1) for s in speeds], "min": min(speeds),
                          "median": statistics.median(speeds), **(gpu_context() if device == "cuda" else {})}
                records.append(record)
                print(row(record), flush=True)
    return records


HEADER = f"{'model':<22}{'device':<7}{'precision':<10}{'threads':>7}{'min':>12}{'median':>12}  samples/s"


def row(record: dict) -> str:
    line = (f"{record['model']:<22}{record['device']:<7}{record['precision']:<10}{record['threads']:>7}"
            f"{record['min']:>12,.1f}{record['median']:>12,.1f}")
    if record["device"] == "cuda":
        line += f"  ({record['gpu']}; torch {record['torch']}, CUDA {record['cuda']})"
    return line


def goal(records: list[dict]) -> dict:
    """Issue 15's flu goal: GPU median >= 20x the 2-thread CPU median (None where not measured)."""
    flu = {(r["device"], r["precision"], r["threads"]): r for r in records if r["model"] == FLU}
    cpu = flu.get(("cpu", "fp32", 2))
    out = {"goal": f"{FLU} on one GPU >= {GOAL_SPEEDUP:g}x its 2-thread CPU samples/s", "measured": False}
    gpus = {precision: r for (device, precision, _), r in flu.items() if device == "cuda"}
    if cpu is None or not gpus:
        out["reason"] = ("no GPU: torch.cuda.is_available() is False" if not gpus
                         else "the 2-thread CPU figure is missing (run with --threads 1 2)")
        return out
    out.update(measured=True, cpu_2_threads=cpu["median"], **gpu_context())
    for precision, record in gpus.items():
        speedup = record["median"] / cpu["median"]
        out[f"speedup_{precision}"] = round(speedup, 2)
        out[f"met_{precision}"] = speedup >= GOAL_SPEEDUP
    return out


def environment() -> dict:
    return {"torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
            "machine": platform.machine(), "cpu_threads_available": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="CPU torch thread counts (default 1 2)")
    parser.add_argument("--gpu-threads", type=int, default=2, help="torch CPU threads during GPU runs (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs per setting, at least 3 (default 3)")
    parser.add_argument("--scale", type=float, default=1.0, help="dataset size factor (default 1; 0.1: quick)")
    parser.add_argument("--models", nargs="+", help="only models whose name contains one of these words (e.g. flu)")
    parser.add_argument("--no-gpu", action="store_true", help="CPU only, even where a GPU is present")
    parser.add_argument("--goal", action="store_true", help="also check the flu GPU goal (>= 20x 2-thread CPU)")
    parser.add_argument("--json", type=Path, help="write every figure, with its versions and GPU, to this file")
    args = parser.parse_args(argv)
    if args.rounds < 3:
        parser.error("--rounds: at least 3 (the table gives the min and median of the rounds)")
    if args.goal and args.models and not any(word.lower() in FLU.lower() for word in args.models):
        parser.error("--goal measures the flu model: add flu to --models")
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"GPU: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}")
    print(HEADER)
    records = measure(args)
    result = {"environment": environment(), "rounds": args.rounds, "scale": args.scale, "records": records}
    if args.goal:
        result["flu_goal"] = goal(records)
        print(json.dumps(result["flu_goal"], indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
