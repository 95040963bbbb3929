"""Macro worlds: solved models, seeded draws, long tables -> Collection, splits and scales."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from trainset.domains.macro import WORLDS, extrapolation_splits, frame_worlds, scale_statistics, simulate_worlds
from trainset.domains.macro.lss import LssWorld, lss_matrices
from trainset.domains.macro.nk import PARAM_NAMES, NkWorld, nk_irfs, solve_nk
from trainset.domains.macro.var import companion, theta_to_var, us_data, var_us_fit, var_us_point_irfs
from trainset.errors import TrainsetError

H = 40
SIZES = {"nk": 30, "var": 30, "var_us": 30, "lss": 30}


@pytest.fixture(scope="module")
def tables():
    return simulate_worlds(SIZES, seed=5)


@pytest.fixture(scope="module")
def collection(tables):
    return frame_worlds(*tables)


def _accepted(world, n=20, seed=1):
    draws = [world.draw(seed, i) for i in range(4 * n)]
    return [d for d in draws if d is not None][:n]


# ---------------------------------------------------------------- NK

def test_nk_solution_satisfies_model_equations_at_every_horizon():
    for theta, irfs in _accepted(WORLDS["nk"]):
        p = dict(zip(PARAM_NAMES, theta))
        for j, shock in enumerate(("d", "s", "m")):
            u = np.zeros((3, H + 1))
            u[j] = p[f"sd_{shock}"] * p[f"rho_{shock}"] ** np.arange(H + 1)   # AR(1) path of the shock
            x, pi, i = irfs[j].T
            i_lag = np.r_[0.0, i[:-1]]
            # expectations are next period's IRF values: the path after the shock is deterministic
            is_curve = x[:-1] - (x[1:] - (i[:-1] - pi[1:]) / p["sigma"] + u[0, :-1])
            phillips = pi[:-1] - (p["beta"] * pi[1:] + p["kappa"] * x[:-1] + u[1, :-1])
            taylor = i - (p["rho_i"] * i_lag + (1 - p["rho_i"]) * (p["phi_pi"] * pi + p["phi_x"] * x) + u[2])
            for residual in (is_curve, phillips, taylor):
                assert np.max(np.abs(residual)) < 1e-8


def test_nk_monetary_shock_moves_everything_at_impact():
    for _, irfs in _accepted(WORLDS["nk"]):
        output, inflation, rate = irfs[2, 0]
        assert output < 0 and inflation < 0 and abs(rate) > 1e-8
        assert np.all(np.abs(irfs[:, 0, :]) > 0)          # no zero impact anywhere


def test_nk_indeterminate_draws_are_rejected_and_counted():
    theta, _ = _accepted(WORLDS["nk"], n=1)[0]
    passive = dict(zip(PARAM_NAMES, theta), phi_pi=0.5, phi_x=0.0)
    solution = solve_nk(passive)
    assert solution.status == "indeterminate" and solution.n_unstable < 2
    with pytest.raises(TrainsetError, match="phi_pi"):
        nk_irfs(passive)

    world = NkWorld("nk_passive", {"phi_pi": (0.5, 1.5), "phi_x": (0.0, 0.05)})
    theta_t, _, meta = simulate_worlds({"nk_passive": 20}, seed=2, registry={"nk_passive": world})
    info = meta["worlds"]["nk_passive"]
    assert info["rejected"] > 0
    assert info["rejected"] == info["rejected_reasons"]["indeterminate"] == info["draws"][-1] + 1 - 20
    skipped = sorted(set(range(info["draws"][-1])) - set(info["draws"]))
    assert len(skipped) == info["rejected"] and all(world.draw(2, i) is None for i in skipped)
    # accepted draws satisfy the determinacy condition kappa (phi_pi - 1) + (1 - beta) phi_x > 0
    p = theta_t.pivot(index="sample", columns="param", values="value")
    assert np.all(p["kappa"] * (p["phi_pi"] - 1) + (1 - p["beta"]) * p["phi_x"] > 0)


# ---------------------------------------------------------------- VAR, var_us, LSS

def test_var_us_point_irfs_equal_statsmodels():
    from statsmodels.tsa.api import VAR

    reference = VAR(us_data()).fit(2).irf(H).orth_irfs            # [horizon, variable, shock]
    ours = var_us_point_irfs(p=2, horizon=H)                       # [shock, horizon, variable]
    assert ours.shape == (3, H + 1, 3)
    np.testing.assert_allclose(ours.transpose(1, 2, 0), reference, rtol=0, atol=1e-10)
    assert np.max(np.abs(np.linalg.eigvals(companion(var_us_fit(2)["coefs"])))) < 1


@pytest.mark.parametrize("name", ["var", "var_us"])
def test_var_draws_are_stable_and_some_oscillate(name):
    world = WORLDS[name]
    draws = [out for out in world.try_draw_batch(3, range(200)) if not isinstance(out, str)]
    assert len(draws) > 50
    complex_roots = 0
    for theta, irfs in draws:
        coefs, chol = theta_to_var(theta, 2)
        roots = np.linalg.eigvals(companion(coefs))
        assert np.max(np.abs(roots)) < 1
        complex_roots += bool(np.any(np.abs(roots.imag) > 1e-9))
        np.testing.assert_allclose(irfs[:, 0, :].T, chol, atol=1e-12)     # Cholesky impact
    assert complex_roots > 0


def test_lss_has_oscillatory_stable_modes_and_impact():
    world = LssWorld("lss4", n_modes=2, n_shocks=4)
    for theta, irfs in _accepted(world, n=10):
        A, B, C, D = lss_matrices(theta, 2, 4)
        roots = np.linalg.eigvals(A)
        assert np.all(np.abs(roots.imag) > 0) and np.max(np.abs(roots)) < 1
        assert irfs.shape == (4, H + 1, 3)
        np.testing.assert_allclose(irfs[:, 0, :], D.T)
        np.testing.assert_allclose(irfs[:, 3, :], (C @ A @ A @ B).T, atol=1e-12)


def test_every_shock_has_responses(tables):
    theta, irfs, meta = tables
    for name, info in meta["worlds"].items():
        rows = irfs[irfs["world"] == name]
        assert sorted(rows["shock"].astype(str).unique()) == sorted(info["shock_names"])
        assert rows.groupby("shock", observed=True)["value"].apply(lambda v: np.abs(v).max()).min() > 0


# ---------------------------------------------------------------- determinism

def test_simulation_is_deterministic_and_prefix_stable(tables):
    again = simulate_worlds(SIZES, seed=5)
    pd.testing.assert_frame_equal(tables[0], again[0])
    pd.testing.assert_frame_equal(tables[1], again[1])
    assert tables[2] == again[2]
    few = simulate_worlds({name: 10 for name in SIZES}, seed=5)
    for big, small in zip(tables[:2], few[:2]):
        head = big[big["sample"] < 10].reset_index(drop=True)
        np.testing.assert_array_equal(head["value"].to_numpy(), small["value"].to_numpy())
    for name in SIZES:
        assert few[2]["worlds"][name]["draws"] == tables[2]["worlds"][name]["draws"][:10]
    other = simulate_worlds({"nk": 10}, seed=6)
    assert not np.array_equal(other[0]["value"], few[0][few[0]["world"] == "nk"]["value"])


def _digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(frame["value"].to_numpy().tobytes()).hexdigest()


def test_simulation_ignores_pythonhashseed():
    code = ("from trainset.domains.macro import simulate_worlds; import hashlib; "
            "t, i, _ = simulate_worlds({'nk': 5, 'lss': 5}, seed=9); "
            "print(hashlib.sha256(i['value'].to_numpy().tobytes()).hexdigest())")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == _digest(simulate_worlds({"nk": 5, "lss": 5}, seed=9)[1])


# ---------------------------------------------------------------- long tables -> Collection

def test_frame_worlds_round_trip(tables, collection):
    theta, irfs, meta = tables
    assert list(collection.parts) == list(SIZES) and len(collection) == sum(SIZES.values())
    rng = np.random.default_rng(0)
    for _, row in irfs.iloc[rng.choice(len(irfs), 300, replace=False)].iterrows():
        part = collection.parts[row["world"]]
        cell = part["irfs"].sel(shock=row["shock"], horizon=row["horizon"], variable=row["variable"])
        value = cell.values[row["sample"]]
        assert value == np.float32(row["value"])
    for name, part in collection.parts.items():
        info = meta["worlds"][name]
        assert part["theta"].dtype == np.float32 and part["irfs"].dtype == np.float32
        assert part["irfs"].shape == (SIZES[name], len(info["shock_names"]), H + 1, 3)
        assert list(part["param"].values) == info["param_names"] == part.attrs["param_names"]
        assert list(part["variable"].values) == ["output", "inflation", "rate"]
        np.testing.assert_array_equal(part["draw"].values, info["draws"])
        wide = theta[theta["world"] == name].pivot(index="sample", columns="param", values="value")
        np.testing.assert_array_equal(part["theta"].values, wide[info["param_names"]].to_numpy(np.float32))
        json.dumps(part.attrs)                                        # manifest-ready
    # row order and label dtype do not matter
    shuffled = [t.sample(frac=1.0, random_state=1).astype({"world": str}) for t in tables[:2]]
    again = frame_worlds(*shuffled, meta)
    for name in SIZES:
        np.testing.assert_array_equal(again.parts[name]["irfs"].values, collection.parts[name]["irfs"].values)


def test_frame_worlds_without_metadata():
    theta = pd.DataFrame({"world": "mine", "sample": np.repeat([3, 7], 2), "param": ["a", "b"] * 2,
                          "value": [1.0, 2.0, 3.0, 4.0]})
    irfs = pd.DataFrame({"world": "mine", "sample": np.repeat([3, 7], 2), "shock": "s", "horizon": [0, 1] * 2,
                         "variable": "output", "value": [0.5, 0.25, -1.0, -0.5]})
    part = frame_worlds(theta, irfs).parts["mine"]
    np.testing.assert_array_equal(part["theta"].values, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(part["irfs"].values[:, 0, :, 0], [[0.5, 0.25], [-1.0, -0.5]])
    assert part.attrs["param_bounds"] == [[1.0, 3.0], [2.0, 4.0]] and list(part["draw"].values) == [3, 7]


@pytest.mark.parametrize("table, change, message", [
    ("theta", lambda t: t.drop(columns="param"), "lacks column.*param"),
    ("irfs", lambda t: t.assign(value=t["value"].where(t.index != 5)), "'value' has 1 missing"),
    ("theta", lambda t: pd.concat([t, t.iloc[[0]]]), "duplicated cells.*drop_duplicates"),
    ("irfs", lambda t: t.drop(index=7), "missing cells.*supply every combination"),
    ("theta", lambda t: t.assign(sample=t["sample"].astype(float)), "'sample' must hold integers"),
    ("irfs", lambda t: t.assign(shock=t["shock"].astype(str).replace("demand", "supply")), "shock labels"),
])
def test_frame_worlds_rejects_bad_tables(tables, table, change, message):
    theta, irfs, meta = tables
    theta, irfs = theta[theta["world"] == "nk"], irfs[irfs["world"] == "nk"]
    given = {"theta": theta, "irfs": irfs}
    given[table] = change(given[table])
    with pytest.raises(TrainsetError, match=message):
        frame_worlds(given["theta"], given["irfs"], meta)


# ---------------------------------------------------------------- splits and scales

def test_extrapolation_splits(collection):
    splits = extrapolation_splits(collection, seed=3)
    assert list(splits) == ["train", "val", "test", "test_extrapolation_slice", "test_extrapolation_corner"]
    everything = np.concatenate(list(splits.values()))
    assert len(everything) == len(np.unique(everything)) == len(collection)
    offsets = collection.offsets
    for name, part in collection.parts.items():
        local = {split: ix[(ix >= offsets[name]) & (ix < offsets[name] + SIZES[name])] - offsets[name]
                 for split, ix in splits.items()}
        assert all(len(ix) > 0 for ix in local.values()), (name, {k: len(v) for k, v in local.items()})
        bounds = np.asarray(part.attrs["param_bounds"])
        u = (part["theta"].values - bounds[:, 0]) / (bounds[:, 1] - bounds[:, 0])
        in_slice = local["test_extrapolation_slice"]
        assert np.all(u[in_slice, 0] >= 0.9) or (len(in_slice) == 1 and u[in_slice[0], 0] == u[:, 0].max())
        distance = np.sqrt(np.mean((u - 0.5) ** 2, axis=1))
        assert distance[local["test_extrapolation_corner"]].min() >= distance[local["train"]].max()
    again = extrapolation_splits(collection, seed=3)
    assert all(np.array_equal(splits[k], again[k]) for k in splits)
    other = extrapolation_splits(collection, seed=4)
    assert not np.array_equal(splits["train"], other["train"])
    assert np.array_equal(splits["test_extrapolation_corner"], other["test_extrapolation_corner"])
    assert all(ix.dtype == np.int64 and np.all(np.diff(ix) > 0) for ix in splits.values())


def test_scale_statistics_use_train_only(collection):
    splits = extrapolation_splits(collection, seed=3)
    stats = scale_statistics(collection, splits["train"])
    json.dumps(stats)
    # poison every non-train sample: the statistics must not move
    poisoned = {name: part.copy(deep=True) for name, part in collection.parts.items()}
    number, local = collection.locate(np.setdiff1d(np.arange(len(collection)), splits["train"]))
    for k, name in enumerate(poisoned):
        poisoned[name]["irfs"].values[local[number == k]] = 1e6
        poisoned[name]["theta"].values[local[number == k]] = -1e6
    from trainset.collection import Collection

    assert scale_statistics(Collection(poisoned, collection.attrs), splits["train"]) == stats
    number, local = collection.locate(splits["train"])
    for k, (name, part) in enumerate(collection.parts.items()):
        rows = np.sort(local[number == k])
        irfs = part["irfs"].values[rows].astype(np.float64)
        assert stats[name]["n_train"] == len(rows)
        np.testing.assert_allclose(stats[name]["irfs"]["std"], irfs.std(axis=(0, 1, 2)))
        theta = part["theta"].values[rows].astype(np.float64)
        np.testing.assert_allclose(stats[name]["theta"]["mean"], theta.mean(axis=0))
    with pytest.raises(TrainsetError, match="no training samples"):
        scale_statistics(collection, splits["train"][splits["train"] < collection.offsets["lss"]])


# ---------------------------------------------------------------- optional trajectories and shocks

def _series_tables():
    """Two worlds of two samples; world a has shocks e1, e2, world b shock e1; three periods."""
    theta, irfs, paths, shocks = [], [], [], []
    for world, names in (("a", ["e1", "e2"]), ("b", ["e1"])):
        for sample in (5, 9):
            theta.append({"world": world, "sample": sample, "param": "beta", "value": sample / 10})
            for shock in names:
                irfs += [{"world": world, "sample": sample, "shock": shock, "horizon": h, "variable": "output",
                          "value": sample + h / 10} for h in (0, 1)]
                shocks += [{"world": world, "sample": sample, "t": t, "shock": shock,
                            "value": 100 * sample + 10 * t + int(shock[1])} for t in (0, 1, 2)]
            paths += [{"world": world, "sample": sample, "t": t, "variable": v, "value": -(100 * sample + 10 * t + k)}
                      for t in (0, 1, 2) for k, v in enumerate(["output", "rate"])]
    return [pd.DataFrame(rows) for rows in (theta, irfs, paths, shocks)]


def test_trajectories_and_shocks_are_framed_stored_and_read(tmp_path):
    from trainset.io.zarr_ import ZarrFormat
    from trainset.open import open_dataset

    theta, irfs, paths, shocks = _series_tables()
    collection = frame_worlds(theta, irfs, trajectories=paths.iloc[::-1], shocks=shocks)
    a, b = collection.parts["a"], collection.parts["b"]
    assert a["trajectories"].dims == ("sample", "time", "trajectory_variable")
    assert a["shocks"].dims == ("sample", "time", "shock") and b["shocks"].shape == (2, 3, 1)
    assert list(a["trajectory_variable"].values) == ["rate", "output"]  # first appearance (table reversed)
    np.testing.assert_array_equal(a["shocks"].values[1, 2], [900 + 20 + 1, 900 + 20 + 2])
    np.testing.assert_array_equal(b["trajectories"].sel(trajectory_variable="rate").values[0], [-501, -511, -521])
    ZarrFormat().write(collection, tmp_path / "TS_m.zarr")
    sample = open_dataset(tmp_path / "TS_m.zarr")[1]
    np.testing.assert_array_equal(sample["shocks"].numpy(), a["shocks"].values[1])
    with pytest.raises(TrainsetError, match=r"trajectories table has worlds \['a'\], theta has \['a', 'b'\]"):
        frame_worlds(theta, irfs, trajectories=paths[paths["world"] == "a"])
    with pytest.raises(TrainsetError, match="shock labels .*'e9'"):
        frame_worlds(theta, irfs, shocks=shocks.assign(shock=shocks["shock"].replace("e2", "e9")))
    with pytest.raises(TrainsetError, match=r"world 'a' shocks: 1 missing cells"):
        frame_worlds(theta, irfs, shocks=shocks.drop(index=0))
    with pytest.raises(TrainsetError, match="covers periods"):
        frame_worlds(theta, irfs, trajectories=paths, shocks=shocks[shocks["t"] < 2])


def test_user_series_tables_go_through_ingest_and_framing(tmp_path):
    from trainset.domains.stage import frame_domain, ingest_domain

    files = {}
    for stem, table in zip(("theta", "irfs", "trajectories", "shocks"), _series_tables()):
        files[stem] = str(tmp_path / f"{stem}.parquet")
        table.to_parquet(files[stem], index=False)
    cfg = {"domain": "macro", "files": files}
    ingest_domain(cfg, 1, tmp_path / "tables")
    collection = frame_domain(tmp_path / "tables", cfg, "m")
    assert collection.parts["b"]["trajectories"].shape == (2, 3, 2)
    no_series = {"domain": "macro", "files": {"theta": files["theta"], "irfs": files["irfs"]}}
    ingest_domain(no_series, 1, tmp_path / "plain")
    assert "shocks" not in frame_domain(tmp_path / "plain", no_series, "m").parts["a"]
    with pytest.raises(TrainsetError, match=r"files \['shock'\] are not tables of domain macro"):
        ingest_domain({"domain": "macro", "files": {**no_series["files"], "shock": files["shocks"]}}, 1,
                      tmp_path / "bad")
