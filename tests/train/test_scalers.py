"""Scalers: fitted on the training split only, equal to sklearn/numpy, JSON round trip, formats, worlds."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import xarray as xr
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

import trainset
from trainset.collection import Collection
from trainset.errors import TrainsetError
from trainset.io.base import get_format
from trainset.loaders.worlds import collate_mixed_worlds
from trainset.scalers import ScalerSet, fit_scalers, parse_spec
from trainset.transforms import make_transform

N, T, D = 240, 12, 4
SUFFIX = {"netcdf": ".nc", "hdf5": ".h5", "zarr": ".zarr", "webdataset": "-wds"}
SKLEARN = {"standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler}


def _splits(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    order = rng.permutation(n)
    return {"train": np.sort(order[: int(0.6 * n)]), "val": np.sort(order[int(0.6 * n): int(0.8 * n)]),
            "test": np.sort(order[int(0.8 * n):])}


def sequences() -> tuple[Collection, dict[str, np.ndarray]]:
    """data [N,T,D] with a constant feature 2; val/test rows drawn from a wildly different law."""
    rng = np.random.default_rng(0)
    splits = _splits(N, rng)
    data = rng.normal(size=(N, T, D)) * [1.0, 3.0, 1.0, 0.5] + [0.0, 5.0, 0.0, -2.0]
    data[:, :, 2] = 7.0
    other = np.concatenate([splits["val"], splits["test"]])
    data[other] = rng.normal(1000.0, 50.0, size=(other.size, T, D))
    frames = rng.gamma(2.0, 10.0, size=(N, 1, 8, 5))
    frames[other] *= 1000.0
    ds = xr.Dataset({
        "data": (("sample", "time", "feature"), data.astype(np.float32)),
        "target": (("sample", "k"), rng.normal(size=(N, 3)).astype(np.float32)),
        "labels": (("sample",), rng.integers(0, 3, size=N).astype(np.int64)),
        "frames": (("sample", "feature2", "week", "place"), frames.astype(np.float32)),
    })
    return Collection.single(ds, name="demo"), splits


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """The same collection in NetCDF, HDF5, Zarr and WebDataset (1 and 16 samples per member)."""
    folder = tmp_path_factory.mktemp("scalers")
    collection, splits = sequences()
    paths = {}
    for name in ("netcdf", "hdf5", "zarr", "webdataset"):
        paths[name] = folder / f"TS_x{SUFFIX[name]}"
        options = {"samples_per_shard": 50, "samples_per_member": 16} if name == "webdataset" else {}
        get_format(name).write(collection, paths[name], splits, **options)
    paths["webdataset1"] = folder / "TS_y-wds"
    get_format("webdataset").write(collection, paths["webdataset1"], splits, samples_per_shard=64)
    return paths, collection, splits


def train_rows(collection, splits, var="data"):
    return np.asarray(collection.parts["demo"][var].values)[splits["train"]].astype(np.float64)


@pytest.mark.parametrize("kind", ["standard", "minmax", "robust"])
def test_kinds_equal_sklearn_on_train_rows_only(stored, kind):
    paths, collection, splits = stored
    scalers = fit_scalers(paths["netcdf"], {"data": kind, "target": kind}, chunk_rows=37)
    for var in ("data", "target"):
        x = train_rows(collection, splits, var)
        rows = x.reshape(-1, x.shape[-1])
        ref = SKLEARN[kind]().fit(rows)
        stats = scalers.statistics[var]["demo"]
        if kind == "standard":
            np.testing.assert_allclose(stats["mean"], rows.mean(0), rtol=1e-10, atol=1e-10)
            np.testing.assert_allclose(stats["mean"], ref.mean_, rtol=1e-10, atol=1e-10)
            std = rows.std(0)
            np.testing.assert_allclose(stats["scale"], np.where(std < 1e-8, 1e-8, std), rtol=1e-9)
        elif kind == "minmax":
            np.testing.assert_allclose(stats["data_min"], rows.min(0))
            np.testing.assert_allclose(stats["data_range"], np.maximum(np.ptp(rows, 0), 1e-8))
        else:
            np.testing.assert_allclose(stats["center"], np.median(rows, 0))
            iqr = np.subtract(*np.percentile(rows, [75, 25], axis=0))
            np.testing.assert_allclose(stats["scale"], np.where(iqr < 1e-8, 1e-8, iqr))
            assert stats["n_rows_used"] == rows.shape[0]
        # applied values equal sklearn's on every non-constant feature
        live = np.ptp(rows, 0) > 0
        got = scalers.encode(var, x)
        want = ref.transform(rows).reshape(x.shape)
        np.testing.assert_allclose(got[..., live], want[..., live], rtol=1e-7, atol=1e-7)


def test_statistics_never_see_other_splits(stored):
    paths, collection, splits = stored
    scalers = fit_scalers(paths["hdf5"], {"data": "standard"})
    x = train_rows(collection, splits)
    np.testing.assert_allclose(scalers.statistics["data"]["demo"]["mean"], x.mean(axis=(0, 1)), atol=1e-10)
    everything = np.asarray(collection.parts["demo"]["data"].values, dtype=np.float64)
    assert not np.allclose(scalers.statistics["data"]["demo"]["mean"], everything.mean(axis=(0, 1)))
    assert scalers.statistics["data"]["demo"]["n_samples"] == splits["train"].size
    assert scalers.dataset["sizes"] == {"demo": splits["train"].size}
    val = fit_scalers(paths["hdf5"], {"data": "standard"}, split="val")
    assert np.mean(val.statistics["data"]["demo"]["mean"]) > 500


@pytest.mark.parametrize("name", ["identity", "linear_max", "sqrt_max", "zscore", "log"])
def test_flu_transforms_fit_per_feature_axis_1(stored, name):
    paths, collection, splits = stored
    scalers = fit_scalers(paths["netcdf"], {"frames": name}, chunk_rows=29)
    x = train_rows(collection, splits, "frames")
    ref = make_transform(name).fit(x)
    state = scalers.statistics["frames"]["demo"]["state"]
    assert state.keys() == ref.state.keys()
    for key, value in ref.state.items():
        np.testing.assert_allclose(state[key], value, rtol=1e-10)
    np.testing.assert_allclose(scalers.encode("frames", x), ref.encode(x), rtol=1e-9)


def test_feature_axis_is_configurable(stored):
    paths, collection, splits = stored
    scalers = fit_scalers(paths["netcdf"], {"data": {"kind": "standard", "feature_axis": 1},
                                            "frames": {"kind": "linear_max", "feature_axis": -1}})
    x = train_rows(collection, splits)
    np.testing.assert_allclose(scalers.statistics["data"]["demo"]["mean"], x.mean(axis=(0, 2)), atol=1e-10)
    f = train_rows(collection, splits, "frames")
    np.testing.assert_allclose(scalers.statistics["frames"]["demo"]["state"]["max"], np.abs(f).max(axis=(0, 1, 2)))
    y = scalers.encode("frames", f)
    np.testing.assert_allclose(np.abs(y).max(axis=(0, 1, 2)), 1.0)


ALL_KINDS = {"data": "standard", "target": {"kind": "minmax", "params": {"feature_range": [-1, 1]}},
             "frames": "sqrt_max"}


@pytest.mark.parametrize("kind", ["standard", "minmax", "robust", "zscore", "log", "linear_max"])
def test_inverse_undoes_transform_numpy_and_torch(stored, kind):
    paths, collection, splits = stored
    scalers = fit_scalers(paths["netcdf"], {"data": {"kind": kind, "feature_axis": -1}}
                          if kind not in ("log",) else {"frames": kind})
    var = "data" if kind != "log" else "frames"
    x = np.asarray(collection.parts["demo"][var].values[:32])
    batch = {var: torch.from_numpy(x.copy()), "labels": torch.arange(32), "index": torch.arange(32)}
    out = scalers.transform(batch)
    assert isinstance(out[var], torch.Tensor) and out[var].dtype == torch.float32
    assert out["labels"] is batch["labels"] and out["index"] is batch["index"]
    np.testing.assert_array_equal(batch[var].numpy(), x)  # input not modified
    back = scalers.inverse(var, out[var])
    torch.testing.assert_close(back, batch[var], rtol=1e-5, atol=1e-3)
    y = scalers.encode(var, x.astype(np.float64))
    assert isinstance(y, np.ndarray) and y.dtype == np.float64
    np.testing.assert_allclose(scalers.inverse(var, y), x, rtol=1e-10, atol=1e-9)


def test_json_round_trip_identical_transforms_and_hash(stored, tmp_path):
    paths, collection, splits = stored
    spec = {**ALL_KINDS, "data": {"kind": "robust", "params": {"quantile_range": [10, 90]}}}
    scalers = fit_scalers(paths["zarr"], spec, seed=5)
    file = tmp_path / "scalers.json"
    scalers.to_json(file)
    stored_json = json.loads(file.read_text())
    assert stored_json["scaler_hash"] == scalers.hash
    assert stored_json["dataset"]["sha256"] == trainset.provenance.file_sha256(paths["zarr"])
    assert stored_json["dataset"]["split"] == "train" and stored_json["dataset"]["seed"] == 5
    again = ScalerSet.from_json(file)
    assert again.hash == scalers.hash
    batch = {k: torch.from_numpy(np.asarray(collection.parts["demo"][k].values[:20])) for k in spec}
    a, b = scalers.transform(batch), again.transform(batch)
    for key in spec:
        assert torch.equal(a[key], b[key])
    stored_json["statistics"]["data"]["demo"]["center"][0] += 1.0
    file.write_text(json.dumps(stored_json))
    with pytest.raises(TrainsetError, match="scaler_hash"):
        ScalerSet.from_json(file)


def test_zero_spread_feature_is_finite(stored):
    paths, collection, splits = stored
    x = np.asarray(collection.parts["demo"]["data"].values[splits["train"]])
    for kind, expected in (("standard", 0.0), ("robust", 0.0), ("minmax", 0.0), ("zscore", 0.0)):
        scalers = fit_scalers(paths["netcdf"], {"data": {"kind": kind, "feature_axis": -1}})
        y = scalers.encode("data", x)
        assert np.isfinite(y).all()
        np.testing.assert_array_equal(y[..., 2], expected)
        np.testing.assert_allclose(scalers.inverse("data", y)[..., 2], 7.0)


def test_bad_specs_and_int_variables_are_refused(stored):
    paths, _, _ = stored
    with pytest.raises(TrainsetError, match="'labels'.*int64"):
        fit_scalers(paths["netcdf"], {"labels": "standard"})
    with pytest.raises(TrainsetError, match="no variable 'nope'"):
        fit_scalers(paths["netcdf"], {"nope": "standard"})
    with pytest.raises(TrainsetError, match="no split 'holdout'"):
        fit_scalers(paths["netcdf"], {"data": "standard"}, split="holdout")
    with pytest.raises(TrainsetError, match="unknown kind 'zscale'"):
        parse_spec({"data": "zscale"})
    with pytest.raises(TrainsetError, match="unknown key"):
        parse_spec({"data": {"kind": "standard", "axis": 1}})
    with pytest.raises(TrainsetError, match="unknown param"):
        parse_spec({"data": {"kind": "standard", "params": {"copy": False}}})
    with pytest.raises(TrainsetError, match="feature_axis"):
        parse_spec({"data": {"kind": "standard", "feature_axis": 0}})
    with pytest.raises(TrainsetError, match="feature_range"):
        parse_spec({"data": {"kind": "minmax", "params": {"feature_range": [1, 0]}}})
    with pytest.raises(TrainsetError, match="feature_axis"):
        fit_scalers(paths["netcdf"], {"target": {"kind": "standard", "feature_axis": 2}})


def test_all_formats_give_identical_statistics(stored):
    paths, _, _ = stored
    spec = {**ALL_KINDS, "data": "robust"}
    fitted = {name: fit_scalers(path, spec, chunk_rows=23, max_robust_rows=600) for name, path in paths.items()}
    reference = fitted["netcdf"]
    for name, scalers in fitted.items():
        assert scalers.statistics == reference.statistics, name
        assert scalers.hash == reference.hash, name
    default = {name: fit_scalers(paths[name], {"data": "standard"}).hash for name in ("hdf5", "webdataset")}
    assert default["hdf5"] == default["webdataset"]


def test_robust_sample_is_capped_and_seeded(stored):
    paths, collection, splits = stored
    a = fit_scalers(paths["netcdf"], {"data": "robust"}, seed=1, max_robust_rows=10 * T)
    b = fit_scalers(paths["webdataset"], {"data": "robust"}, seed=1, max_robust_rows=10 * T)
    c = fit_scalers(paths["netcdf"], {"data": "robust"}, seed=2, max_robust_rows=10 * T)
    assert a.statistics["data"]["demo"]["n_rows_used"] == 10 * T
    assert a.statistics == b.statistics and a.statistics != c.statistics


# --------------------------------------------------------------------------- several worlds
def worlds() -> tuple[Collection, dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    parts = {}
    for name, n, params, shocks, level in (("nk", 60, 4, 3, 1.0), ("var", 40, 6, 2, 1e4)):
        parts[name] = xr.Dataset({
            "theta": (("sample", "param"), rng.uniform(0, level, size=(n, params)).astype(np.float32)),
            "irfs": (("sample", "shock", "horizon", "variable"),
                     (rng.normal(size=(n, shocks, 9, 3)) * level * [1.0, 2.0, 3.0]).astype(np.float32)),
        })
    return Collection(parts), _splits(100, rng)


def test_multi_part_statistics_per_world_and_batch_transform(tmp_path):
    collection, splits = worlds()
    paths = {}
    for name in ("netcdf", "webdataset"):
        paths[name] = tmp_path / f"TS_w{SUFFIX[name]}"
        get_format(name).write(collection, paths[name], splits, samples_per_shard=30) if name == "webdataset" \
            else get_format(name).write(collection, paths[name], splits)
    spec = {"theta": "minmax", "irfs": "standard"}
    scalers = fit_scalers(paths["netcdf"], spec)
    assert fit_scalers(paths["webdataset"], spec).hash == scalers.hash
    offsets = collection.offsets
    for world, part in collection.parts.items():
        local = splits["train"][(splits["train"] >= offsets[world])
                                & (splits["train"] < offsets[world] + part.sizes["sample"])] - offsets[world]
        irfs = part["irfs"].values[local].astype(np.float64)
        stats = scalers.statistics["irfs"][world]
        np.testing.assert_allclose(stats["mean"], irfs.mean(axis=(0, 1, 2)), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(stats["scale"], irfs.std(axis=(0, 1, 2)), rtol=1e-9)
        assert len(scalers.statistics["theta"][world]["data_min"]) == part.sizes["param"]

    ds = trainset.open_dataset(paths["netcdf"], split="val")
    samples = [ds[i] for i in range(len(ds))]
    batch = collate_mixed_worlds(samples)
    assert set(batch["part"]) == {"nk", "var"}
    out = scalers.transform(batch)
    for row, sample in enumerate(samples):
        world = sample["part"]
        alone = scalers.encode("irfs", sample["irfs"][None], part=world)[0]
        n_shocks, n_params = sample["irfs"].shape[0], sample["theta"].shape[0]
        torch.testing.assert_close(out["irfs"][row, :n_shocks], alone)
        assert torch.all(out["irfs"][row, n_shocks:] == 0)  # padded shocks stay zero
        assert torch.all(out["theta"][row, n_params:] == 0)  # padded parameters stay zero
        stats = scalers.statistics["theta"][world]
        want = (sample["theta"].numpy() - stats["data_min"]) / stats["data_range"]
        np.testing.assert_allclose(out["theta"][row, :n_params].numpy(), want, rtol=1e-5, atol=1e-6)
    back = scalers.inverse("irfs", out["irfs"], part=batch["part"], mask=batch["shock_mask"])
    torch.testing.assert_close(back, batch["irfs"], rtol=1e-5, atol=1e-2)
    with pytest.raises(TrainsetError, match="'part' argument"):
        scalers.transform({"irfs": batch["irfs"]})
    with pytest.raises(TrainsetError, match="no statistics for part 'lss'"):
        scalers.encode("irfs", batch["irfs"], part=["lss"] * len(samples))
