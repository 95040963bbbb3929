"""A tiny flu mix written as the workflow writes it: validated table -> frames -> TS_<mix>.nc (+ copies).

Seed 000's guide builds ``TS_<NAME>_<date>.nc`` from a combined table with mixing configs
(``multiplier``, ``to_scale``); these helpers do the same through trainset's stages, small.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trainset.datasets import write_mix_netcdf
from trainset.io.base import get_format
from trainset.mixing.build import build_frames
from trainset.mixing.store import write_frames
from trainset.splits import write_splits
from trainset.table.validate import validate_table

GROUPS = [("fluview", "fluview", s, 0) for s in (2012, 2013, 2014)] + [("flepi", "flepi", 2020, k) for k in range(2)]
MIX = {"families": {"fluview": {"multiplier": 2, "to_scale": True}, "flepi": {"multiplier": 2}},
       "scaling_distribution": {"values": [300.0, 900.0]}}
SUFFIX = {"netcdf": ".nc", "hdf5": ".h5", "zarr": ".zarr", "webdataset": "-wds"}


def flu_mix(folder: Path, axis, table_factory, seed: int = 5):
    """(path of TS_M.nc, the validated table, the frames): 10 frames, 6 of them rescaled,
    with a ``splits.json`` beside (train 0-6, val 7-8, test 9)."""
    table, _ = validate_table(table_factory(GROUPS), axis)
    frames = build_frames(table, MIX, "M", axis, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    write_frames(frames, folder / "frames.parquet", {"inputs": {"table": "t"}})
    path = folder / "TS_M.nc"
    write_mix_netcdf(folder / "frames.parquet", path, "M", MIX, {}, seed=seed)
    splits = {"train": np.arange(7), "val": np.arange(7, 9), "test": np.arange(9, 10)}
    write_splits(splits, folder / "splits.json")
    return path, table, frames


def copy_as(netcdf: Path, fmt: str) -> Path:
    """The NetCDF dataset converted to ``fmt`` beside it (as the workflow's format rules do)."""
    collection, splits = get_format("netcdf").load(netcdf)
    out = netcdf.with_name(f"TS_M{SUFFIX[fmt]}")
    get_format(fmt).write(collection, out, splits)
    return out


def augment_changes_weights(folder: Path) -> bool:
    """Train a tiny MLP on a flu mix with and without ``augment:`` (1 epoch, same seed); whether
    the final weights differ (the effect asserted for the ``augment`` key)."""
    import torch

    from tests.conftest import synthetic_table
    from trainset.seasons import SeasonAxis
    from trainset.train.config import TrainingConfig
    from trainset.train.run import train_run

    axis = SeasonAxis.from_config({})
    path, _, _ = flu_mix(folder / "data", axis, lambda groups, **kw: synthetic_table(axis, groups, **kw))
    weights = []
    for name, augment in (("plain", {}), ("augmented", {"rescale": [0.5, 2.0]})):
        cfg = TrainingConfig.from_dict({"dataset": str(path), "augment": augment, "name": name,
                                        "model": {"name": "mlp", "params": {"input": "frames", "target": "frames"}},
                                        "training": {"epochs": 1, "batch_size": 4, "seed": 7}})
        train_run(cfg, path, folder / name)
        weights.append(torch.load(folder / name / "final.pt", weights_only=True)["model"])
    return weights[0].keys() != weights[1].keys() or any(not torch.equal(weights[0][k], weights[1][k])
                                                         for k in weights[0])
