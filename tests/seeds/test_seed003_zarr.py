"""Seed 003 (macro emulator): its Zarr stores import, worlds subsets open, batches keep one key per fact.

The seed store is written here as the guide's ``generate_dataset.py`` lays it out, with the
zarr v3 API: a group per world under the dataset root holding ``theta`` [n, n_params] and
``irfs`` [n, n_shocks, H+1, 3] (optional ``trajectories``/``shocks``), ``splits.json`` per world
mapping split names to that world's rows, and a ``manifest.json`` at the root.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from trainset.cli import main
from trainset.errors import TrainsetError
from trainset.io.base import get_format
from trainset.io.zarr_.legacy import import_macro_zarr
from trainset.loaders.mapped import make_loader
from trainset.loaders.worlds import collate_mixed_worlds
from trainset.open import open_dataset
from trainset.scalers.fit import fit_scalers
from trainset.validate import validate_dataset

H, T = 4, 6
WORLDS = {"nk": (12, 4, 3), "var": (10, 6, 2), "lss": (9, 5, 1)}  # n, n_params, n_shocks
SPLIT_NAMES = ("train", "val", "test_interpolation", "test_extrapolation_slice", "test_extrapolation_corner")


def seed_arrays(world: str) -> dict[str, np.ndarray]:
    n, p, s = WORLDS[world]
    rng = np.random.default_rng(len(world) * 7 + n)
    return {"theta": rng.uniform(0.1, 0.9, size=(n, p)),
            "irfs": rng.normal(size=(n, s, H + 1, 3)),
            "trajectories": rng.normal(size=(n, T, 3)),
            "shocks": rng.normal(size=(n, T, s))}


def seed_splits(n: int) -> dict[str, list[int]]:
    rows = list(range(n))
    return {"train": rows[:n - 4], "val": rows[n - 4:n - 3], "test_interpolation": rows[n - 3:n - 2],
            "test_extrapolation_slice": rows[n - 2:n - 1], "test_extrapolation_corner": rows[n - 1:]}


def write_seed_store(root: Path, series: bool = True, edits: dict | None = None) -> Path:
    """The guide's layout: zarr.open_group per world, create_array, splits.json, manifest.json."""
    edits = edits or {}
    manifest = {"version": "1.0-dev", "created_at": "2024-05-01T12:00:00", "code_version": "abc1234",
                "config_hash": "c0ffee", "global_seed": 42, "worlds": {}}
    for world, (n, p, s) in WORLDS.items():
        group = zarr.open_group(str(root / world), mode="w")
        for key, values in seed_arrays(world).items():
            if key in ("theta", "irfs") or series:
                values = edits.get((world, key), values)
                array = group.create_array(key, shape=values.shape, dtype=values.dtype, chunks=values.shape)
                array[...] = values
        (root / world / "splits.json").write_text(json.dumps(edits.get((world, "splits"), seed_splits(n))))
        manifest["worlds"][world] = {"param_names": [f"{world}_p{i}" for i in range(p)],
                                     "param_bounds": [[0.0, 1.0]] * p,
                                     "shock_names": [f"{world}_e{i}" for i in range(s)], "n_samples": n}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("seed003")
    src = write_seed_store(folder / "v1.0-dev")
    assert main(["import-macro-zarr", str(src), str(folder / "TS_macro.zarr")]) == 0
    return folder / "TS_macro.zarr"


def test_import_keeps_every_value_name_and_split(imported):
    dataset = open_dataset(imported)
    reader = dataset.reader
    assert [p.name for p in reader.parts] == list(WORLDS)
    assert reader.attrs["domain"] == "macro" and reader.attrs["task"] == "irf" and reader.attrs["seed"] == 42
    assert reader.attrs["legacy_manifest"]["code_version"] == "abc1234"
    offsets = dict(zip(WORLDS, reader.offsets()))
    for number, world in enumerate(WORLDS):
        n = WORLDS[world][0]
        stored = reader.read(number, np.arange(n))
        for key, values in seed_arrays(world).items():
            np.testing.assert_array_equal(stored[key], values.astype(np.float32))
        sample = dataset[int(offsets[world]) + 2]
        assert sample["part"] == world and int(sample["index"]) == offsets[world] + 2
    collection, splits = get_format("zarr").load(imported)
    assert list(collection.parts["var"]["param"].values) == [f"var_p{i}" for i in range(6)]
    assert list(collection.parts["lss"]["shock"].values) == ["lss_e0"]
    assert list(collection.parts["nk"]["variable"].values) == ["output", "inflation", "rate"]
    assert list(splits) == list(SPLIT_NAMES)
    for name in SPLIT_NAMES:
        expected = np.concatenate([offsets[w] + np.asarray(seed_splits(WORLDS[w][0])[name]) for w in WORLDS])
        np.testing.assert_array_equal(splits[name], expected)
        assert len(open_dataset(imported, split=name)) == expected.size
    report = validate_dataset(imported)
    assert report["valid"], report["problems"]
    scalers = fit_scalers(imported, {"theta": "standard", "irfs": "standard"})
    assert set(scalers.statistics["irfs"]) == set(WORLDS)


def test_open_worlds_subset(imported, tmp_path):
    whole = open_dataset(imported, split="train")
    some = open_dataset(imported, split="train", worlds=["lss", "nk"])
    assert [p.name for p in some.reader.parts] == ["nk", "lss"]  # stored order
    assert len(some) == sum(WORLDS[w][0] - 4 for w in ("nk", "lss"))
    batch = collate_mixed_worlds(some[list(range(len(some)))])
    assert set(batch["part"]) == {"nk", "lss"}
    # samples keep the store's index: the same rows as in the whole dataset
    every = collate_mixed_worlds(whole[list(range(len(whole)))])
    chosen = np.isin(np.asarray(every["part"]), ["nk", "lss"])
    np.testing.assert_array_equal(batch["index"].numpy(), every["index"].numpy()[chosen])
    np.testing.assert_array_equal(batch["irfs"].numpy(), every["irfs"].numpy()[chosen][:, :3])
    one = open_dataset(imported, worlds=["var"])
    stacked = one[[0, 1, 2]]
    assert stacked["part"] == ["var"] * 3 and stacked["theta"].shape == (3, 6)
    assert stacked["index"].tolist() == [12, 13, 14]
    with pytest.raises(TrainsetError, match=r"no world\(s\) \['rbc'\]; it stores worlds \['nk', 'var', 'lss'\]"):
        open_dataset(imported, worlds=["rbc"])
    with pytest.raises(TrainsetError, match="twice"):
        open_dataset(imported, worlds=["nk", "nk"])
    # a NetCDF copy stores the same parts and opens the same subset
    collection, splits = get_format("zarr").load(imported)
    get_format("netcdf").write(collection, tmp_path / "TS_macro.nc", splits)
    copy = open_dataset(tmp_path / "TS_macro.nc", split="train", worlds=["lss", "nk"])
    np.testing.assert_array_equal(collate_mixed_worlds(copy[list(range(len(copy)))])["theta"].numpy(),
                                  batch["theta"].numpy())


def test_mixed_batches_hold_each_fact_once(imported):
    dataset = open_dataset(imported, split="train")
    batch = next(iter(make_loader(dataset, 16, collate_fn=collate_mixed_worlds)))
    assert sorted(batch) == ["index", "irfs", "part", "shock_mask", "shocks", "shocks_mask", "theta", "theta_mask",
                             "trajectories"]
    rows = [WORLDS[w][2] for w in batch["part"]]
    assert batch["shock_mask"].sum(dim=1).tolist() == rows
    assert batch["shocks_mask"].shape == batch["shocks"].shape and batch["trajectories"].shape[1:] == (T, 3)


def test_one_world_model_needs_no_part(imported):
    from trainset.models import build_model, describe_dataset

    dataset = open_dataset(imported, worlds=["nk"])
    info = describe_dataset(dataset)
    torch.manual_seed(0)
    model = build_model("world_mlp", {"hidden": [8]}, info)
    batch = dataset[[0, 1]]
    named = model(batch)["pred"]
    batch.pop("part")
    torch.testing.assert_close(model(batch)["pred"], named)


def _refused(tmp_path: Path, match: str, edits: dict) -> None:
    src = write_seed_store(tmp_path / "src", edits=edits)
    with pytest.raises(TrainsetError, match=match):
        import_macro_zarr(src, tmp_path / "TS_out.zarr")
    assert not (tmp_path / "TS_out.zarr").exists()


@pytest.mark.parametrize("edits, match", [
    ({("var", "irfs"): np.zeros((10, 2, H + 1))}, r"irfs: shape \[10, 2, 5\], expected \[n, n_shocks, H\+1, 3\]"),
    ({("var", "irfs"): np.zeros((10, 2, H + 1, 4))}, r"expected \[n, n_shocks, H\+1, 3\]"),
    ({("nk", "irfs"): np.zeros((11, 3, H + 1, 3))}, r"different numbers of samples \{'irfs': 11, .*'theta': 12"),
    ({("lss", "splits"): {"train": [0, 9]}}, r"lss/splits.json: split 'train' has 1 indices outside 0..8"),
    ({("lss", "splits"): {"train": [0, 1], "val": [1]}}, r"split 'val'.*train"),
    ({("nk", "theta"): np.full((12, 4), np.nan)}, r"nk/theta: 48 value\(s\) are NaN"),
])
def test_import_refuses_what_it_cannot_map(tmp_path, edits, match):
    _refused(tmp_path, match, edits)


def test_import_refuses_unknown_and_missing_arrays(tmp_path):
    src = write_seed_store(tmp_path / "src")
    group = zarr.open_group(str(src / "nk"), mode="a")
    group.create_array("irf_std", shape=(12,), dtype="float64")[...] = np.ones(12)
    with pytest.raises(TrainsetError, match=r"\['irf_std'\] are not arrays of the seed-003 layout"):
        import_macro_zarr(src, tmp_path / "TS_out.zarr")
    shutil.rmtree(src / "nk" / "irf_std")
    shutil.rmtree(src / "var" / "irfs")
    with pytest.raises(TrainsetError, match=r"var: no 'irfs' array"):
        import_macro_zarr(src, tmp_path / "TS_out.zarr")
    assert not (tmp_path / "TS_out.zarr").exists()


def test_import_refuses_partial_series_flat_root_splits_and_trainset_stores(tmp_path, imported, capsys):
    src = write_seed_store(tmp_path / "src")
    shutil.rmtree(src / "lss" / "shocks")
    with pytest.raises(TrainsetError, match=r"shocks stored for worlds \['nk', 'var'\] only"):
        import_macro_zarr(src, tmp_path / "TS_out.zarr")
    flat = write_seed_store(tmp_path / "flat", series=False)
    for world in WORLDS:
        (flat / world / "splits.json").unlink()
    (flat / "splits.json").write_text(json.dumps({"train": [0, 1]}))
    assert main(["import-macro-zarr", str(flat), str(tmp_path / "TS_out.zarr")]) == 1
    assert "does not say which world's rows" in capsys.readouterr().err
    with pytest.raises(TrainsetError, match="already a trainset Zarr store"):
        import_macro_zarr(imported, tmp_path / "TS_out.zarr")
    assert not (tmp_path / "TS_out.zarr").exists()


def test_import_reads_root_splits_by_world(tmp_path):
    src = write_seed_store(tmp_path / "src", series=False)
    nested = {}
    for world in WORLDS:
        nested[world] = json.loads((src / world / "splits.json").read_text())
        (src / world / "splits.json").unlink()
    (src / "splits.json").write_text(json.dumps(nested))
    summary = import_macro_zarr(src, tmp_path / "TS_out.zarr")
    assert summary["splits"]["train"] == sum(n - 4 for n, _, _ in WORLDS.values())
    assert "trajectories" not in open_dataset(tmp_path / "TS_out.zarr")[0]


RUN = {"name": "macro", "model": {"name": "world_mlp", "params": {"hidden": [8]}},
       "training": {"losses": [{"name": "horizon_mse"}], "epochs": 1, "batch_size": 8}}


def _train_and_evaluate(path: Path, folder: Path, run: dict) -> dict:
    from trainset.evaluate.stage import evaluate_run
    from trainset.train.config import TrainingConfig
    from trainset.train.run import train_run

    scalers = folder / "scalers.json"
    fit_scalers(path, {"theta": "standard", "irfs": "standard"}).to_json(scalers)  # every world
    train_run(TrainingConfig.from_dict(run), path, folder / "run", scalers)
    evaluate_run(run, folder / "run", path, scalers, folder / "report", split="val")
    return json.loads((folder / "report" / "metrics.json").read_text())


def test_a_run_on_some_worlds_trains_and_is_evaluated_on_those(imported, tmp_path):
    metrics = _train_and_evaluate(imported, tmp_path, {**RUN, "data": {"worlds": ["lss", "nk"]}})
    assert sorted(metrics["metrics"]["worlds"]) == ["lss", "nk"]


def test_a_one_world_store_is_evaluated(tmp_path):
    src = write_seed_store(tmp_path / "src")
    shutil.rmtree(src / "var")
    shutil.rmtree(src / "lss")
    manifest = json.loads((src / "manifest.json").read_text())
    manifest["worlds"] = {"nk": manifest["worlds"]["nk"]}
    (src / "manifest.json").write_text(json.dumps(manifest))
    assert main(["import-macro-zarr", str(src), str(tmp_path / "TS_nk.zarr")]) == 0
    metrics = _train_and_evaluate(tmp_path / "TS_nk.zarr", tmp_path, RUN)
    assert list(metrics["metrics"]["worlds"]) == ["nk"]


def test_import_options_are_the_zarr_writers_declared_options():
    """--chunk / --compression default to and accept exactly what the Zarr writer declares."""
    from trainset.cli import build_parser

    zarr_format = get_format("zarr")
    args = build_parser().parse_args(["import-macro-zarr", "src", "dst"])
    assert (args.chunk, args.compression) == (zarr_format.options["chunk"], zarr_format.options["compression"])
    for codec in zarr_format.choices["compression"]:
        assert build_parser().parse_args(["import-macro-zarr", "s", "d", "--compression", codec]).compression == codec
    with pytest.raises(SystemExit):
        build_parser().parse_args(["import-macro-zarr", "s", "d", "--compression", "gzip"])
