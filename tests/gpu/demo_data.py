"""Tiny stand-ins for the datasets of the demo runs in config/config.yaml, built in memory.

The GPU tests train every demo run's model and losses on CUDA; what is under test is the
device, not the data pipeline, so each dataset is a few hundred samples of the same domain
generator the workflow uses (the flu frames are synthetic epidemic curves on the 53-week x
51-place grid), stored as NetCDF (formats have their own tests), with scalers fitted on the
training split as the workflow does. Needs only the packages trainset itself needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import yaml

from trainset.collection import Collection

REPO = Path(__file__).resolve().parents[2]
FORMAT = "netcdf"
WEEKS, PLACES = 53, 51


def demo_runs() -> dict[str, dict[str, Any]]:
    """The demo runs of config/config.yaml (name -> run config), made tiny: 2 epochs, fixed
    lr/batch size in place of ``auto``, no workers, stored as NetCDF, on CUDA."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    runs = {}
    for name, run in config["runs"].items():
        training = {**run.get("training", {}), "epochs": 2, "device": "cuda", "num_workers": 0,
                    "batch_size": 32, "warmup_epochs": 0, "save_every_n_epochs": 1}
        if training.get("lr") == "auto":
            training["lr"] = 3e-3
        runs[name] = {**run, "name": name, "format": FORMAT, "training": training}
    return runs


def dataset_spec(name: str) -> dict[str, Any]:
    """The workflow config entry (mix or dataset) of dataset ``name``."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    if name in config.get("mixes", {}):
        return {"domain": "flu"}
    return dict(config["datasets"][name])


def collection(name: str) -> tuple[Collection, dict | None]:
    """A tiny collection of dataset ``name`` and its splits (None: random)."""
    spec = dataset_spec(name)
    if spec["domain"] == "sequences":
        from trainset.domains.sequences import RECIPES, frame_sequences, make_sequence_tables

        inputs, labels = make_sequence_tables(spec["recipe"], 256, seed=0, length=32)
        return frame_sequences(inputs, labels, RECIPES[spec["recipe"]], name), None
    if spec["domain"] == "flights":
        from trainset.domains.flights import frame_flights, make_flight_table

        return frame_flights(make_flight_table(n_sites=6, years=1, seed=0), name), None
    if spec["domain"] == "macro":
        from trainset.domains.macro import extrapolation_splits, frame_worlds, simulate_worlds

        theta, irfs, meta = simulate_worlds({world: 40 for world in spec["worlds"]}, seed=0)
        worlds = frame_worlds(theta, irfs, meta)
        worlds.attrs["task"] = "irf"
        return worlds, extrapolation_splits(worlds, 0)
    return flu_frames(name, 128), None


def flu_frames(name: str, n: int, seed: int = 0) -> Collection:
    """``n`` synthetic flu frames (sample, feature, season_week, place): one epidemic curve per
    place with random peak week, width and size, plus noise; the shape of a mix's NetCDF."""
    rng = np.random.default_rng(seed)
    week = np.arange(WEEKS)[None, :, None]
    peak = rng.uniform(10, 35, size=(n, 1, PLACES))
    width = rng.uniform(3, 8, size=(n, 1, PLACES))
    size = rng.lognormal(3.0, 1.0, size=(n, 1, PLACES))
    values = size * np.exp(-0.5 * ((week - peak) / width) ** 2) + rng.gamma(1.0, 0.5, size=(n, WEEKS, PLACES))
    data = values[:, None].astype(np.float32)
    ds = xr.Dataset({"frames": (("sample", "feature", "season_week", "place"), data)},
                    coords={"season_week": np.arange(1, WEEKS + 1), "place": [f"P{i:02d}" for i in range(PLACES)]})
    return Collection.single(ds, name=name, attrs={"task": "frames", "name": name})


def store(name: str, folder: Path) -> tuple[Path, Path]:
    """Dataset ``name`` written in ``folder`` with its splits and scalers; (dataset, scalers)."""
    from trainset.io.base import get_format
    from trainset.scalers import fit_dataset_scalers
    from trainset.splits import make_splits, write_splits

    data, splits = collection(name)
    splits = splits or make_splits(len(data), {"method": "random"}, seed=0)
    path = get_format(FORMAT).path_for(folder / name, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    get_format(FORMAT).write(data, path, splits)
    write_splits(splits, path.parent / "splits.json")
    fit_dataset_scalers(path, path.parent / "scalers.json")
    return path, path.parent / "scalers.json"
