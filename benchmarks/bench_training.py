"""Training throughput (samples/s) of each domain's demo model on this machine.

    python benchmarks/bench_training.py [--threads 1]

Builds each demo dataset in a temporary folder (sequence pulses, flight site-days, macro
worlds, flu frames), then times one training epoch of its model through the real trainer
(loader, scalers, model, loss, optimiser step), after one warm-up epoch.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from trainset.collection import Collection
from trainset.domains.flights import frame_flights, make_flight_table
from trainset.domains.macro import extrapolation_splits, frame_worlds, simulate_worlds
from trainset.domains.sequences import frame_sequences, make_sequence_tables
from trainset.io.base import get_format
from trainset.scalers import fit_dataset_scalers
from trainset.splits import make_splits, write_splits
from trainset.train.config import TrainingConfig
from trainset.train.run import prepare_run
from trainset.train.trainer import Trainer


def datasets(folder: Path) -> dict[str, tuple[Path, dict]]:
    """name -> (stored dataset, run config)."""
    out = {}
    inputs, labels = make_sequence_tables("pulses", 4000, seed=0, length=64)
    out["sequences (GRU)"] = (_store(folder, "pulses", frame_sequences(inputs, labels, "seq2static_classification", "p"), "hdf5"),
                              {"model": {"name": "sequence", "params": {"kind": "gru", "hidden": 64}},
                               "training": {"losses": [{"name": "cross_entropy"}], "batch_size": 64}})
    out["sequences (TCN)"] = (out["sequences (GRU)"][0],
                              {"model": {"name": "sequence", "params": {"kind": "tcn", "hidden": 64}},
                               "training": {"losses": [{"name": "cross_entropy"}], "batch_size": 64}})
    flights = frame_flights(make_flight_table(n_sites=60, years=2, seed=0), "f")
    out["flights (ordinal)"] = (_store(folder, "flights", flights, "webdataset", samples_per_member=256),
                                {"model": {"name": "flight", "params": {"head": "ordinal"}},
                                 "training": {"losses": [{"name": "bce"}, {"name": "monotonicity", "weight": 0.1}],
                                              "batch_size": 1024}})
    theta, irfs, meta = simulate_worlds({"nk": 1000, "var": 1000, "var_us": 1000, "lss": 1000}, seed=0)
    worlds = frame_worlds(theta, irfs, meta)
    worlds.attrs["task"] = "irf"
    out["macro (world MLP)"] = (_store(folder, "macro", worlds, "zarr", splits=extrapolation_splits(worlds, 0)),
                                {"model": {"name": "world_mlp", "params": {"hidden": [128, 128]}},
                                 "training": {"losses": [{"name": "horizon_mse"}], "batch_size": 64}})
    return out


def _store(folder: Path, name: str, collection: Collection, fmt: str, splits=None, **options) -> Path:
    splits = splits or make_splits(len(collection), {"method": "random"}, seed=0)
    path = get_format(fmt).path_for(folder / name, name)
    path.parent.mkdir(parents=True)
    get_format(fmt).write(collection, path, splits, **options)
    write_splits(splits, path.parent / "splits.json")
    fit_dataset_scalers(path, path.parent / "scalers.json")
    return path


def throughput(path: Path, run: dict, threads: int) -> float:
    torch.set_num_threads(threads)
    cfg = TrainingConfig.from_dict({"name": "bench", **run, "training": {**run["training"], "epochs": 3}})
    prepared = prepare_run(cfg, path, path.parent / "scalers.json", splits={"train": True})  # as a run prepares
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(prepared.model, prepared.objective, cfg, prepared.batches("train", True),
                          prepared.batches("train", False), out, prepare=prepared.prepare(),
                          optimizer=prepared.optimizer)
        trainer.train_epoch(1)
        start = time.perf_counter()
        _, samples = trainer.train_epoch(2)
        return samples / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'model':<20}{'samples/s':>12}  (torch threads: {args.threads})")
        for name, (path, run) in datasets(Path(tmp)).items():
            print(f"{name:<20}{throughput(path, run, args.threads):>12,.0f}")


if __name__ == "__main__":
    main()
