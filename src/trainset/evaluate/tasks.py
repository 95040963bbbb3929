"""Metrics, baselines and figures per task type, as report sections.

Each handler gets the model's predictions on the evaluated split (data units), the training
split (for baselines, fitted on it only) and the evaluated split's inputs, and returns
``(metrics, sections)``; ``metrics["headline"]`` holds the few numbers the index compares.
Generative tasks' handler (:func:`generated_frames`) gets the model and draws samples instead;
:func:`irf_splits` scores the macro worlds on every other held-out split. Which handler serves
which task is a fact of the task registry (:data:`trainset.tasks.TASKS`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trainset.errors import TrainsetError
from trainset.evaluate import figures
from trainset.evaluate import metrics as m
from trainset.evaluate.html import Figure, Section, Table
from trainset.evaluate.load import load_split
from trainset.tasks import get_task


def _flat(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(len(x), -1)


def _metric_table(title: str, results: dict[str, dict], keys: list[str]) -> Table:
    return Table(title, ["model", *keys], [[name, *(r.get(k) for k in keys)] for name, r in results.items()])


def _best_baseline(results: dict, score: Any, pick: Any) -> str | None:
    """The name of the baseline the headline compares with (``pick`` is min or max of ``score``)."""
    names = [name for name in results if name != "model"]
    return pick(names, key=lambda name: score(results[name])) if names else None


def classification(p: Any, train: dict, test: dict, info: dict) -> tuple[dict, list]:
    classes = int(info.get("num_classes") or int(max(p.target.max(), train["labels"].max())) + 1)
    labels = p.target.astype(np.int64)
    mask = p.mask if p.mask is not None and p.mask.shape == labels.shape else None
    model = m.classification_metrics(p.pred, labels, classes, is_logits=True, mask=mask)
    climate = m.climatology_baseline(train["labels"], num_classes=classes)
    results = {"model": model,
               "climatology": m.classification_metrics(climate.predict_proba(len(labels)), labels, classes,
                                                       is_logits=False, mask=mask)}
    if labels.ndim == 1:
        logistic = m.logistic_baseline(_flat(train["data"]), train["labels"], num_classes=classes)
        results["logistic regression"] = m.classification_metrics(logistic.predict_proba(_flat(test["data"])),
                                                                  labels, classes, is_logits=False)
    keys = ["accuracy", "macro_f1", "log_loss"]
    figs = [Figure("Confusion matrix (model)", figures.confusion_matrix(np.asarray(model["confusion_matrix"]),
                                                                       [str(c) for c in range(classes)]))]
    if "per_step" in model:
        figs.append(Figure("Accuracy per time step", figures.per_step_metric(
            {name: r["per_step"]["accuracy"] for name, r in results.items() if "per_step" in r}, "accuracy")))
    headline = {"accuracy": model["accuracy"], "macro_f1": model["macro_f1"], "log_loss": model["log_loss"],
                "baseline_accuracy": max(r["accuracy"] for name, r in results.items() if name != "model")}
    section = Section("Classification", "Accuracy, macro F1 and log loss beside the class frequencies of the "
                      "training split (climatology) and, for one label per sequence, a logistic regression on "
                      "the flattened inputs.", [_metric_table("Scores", results, keys)], figs)
    best = _best_baseline(results, lambda r: r["accuracy"], max)
    return {"headline": headline, "baseline_name": best, **results}, [section]


def regression(p: Any, train: dict, test: dict, info: dict) -> tuple[dict, list]:
    target_name = get_task(info["task"]).target
    mask = p.mask if p.mask is not None and p.mask.shape == p.target.shape[:p.mask.ndim] else None
    model = m.regression_metrics(p.pred, p.target, mask=mask)  # padded steps never count
    results = {"model": model}
    if train[target_name].shape[1:] == p.target.shape[1:]:  # target_seq_len may reshape targets
        mean = m.mean_baseline(train[target_name])
        results["training mean"] = m.regression_metrics(mean(len(p.target)), p.target, mask=mask)
        if target_name == "labels":
            linear = m.linear_baseline(_flat(train["data"]), train["labels"])
            results["linear (ridge)"] = m.regression_metrics(linear.predict(_flat(test["data"])), p.target, mask=mask)
    keys = ["rmse", "mae", "r2"]
    figs = []
    if "per_step" in model:
        figs.append(Figure("RMSE per time step", figures.per_step_metric(
            {name: r["per_step"]["rmse"] for name, r in results.items() if "per_step" in r}, "RMSE")))
    baselines = [r["rmse"] for name, r in results.items() if name != "model"]
    headline = {"rmse": model["rmse"], "mae": model["mae"], "r2": model["r2"],
                "baseline_rmse": min(baselines) if baselines else float("nan")}
    section = Section("Regression", "Errors in data units (targets unscaled), beside the training-split mean and "
                      "a ridge regression on the flattened inputs.", [_metric_table("Scores", results, keys)], figs)
    best = _best_baseline(results, lambda r: r["rmse"], min)
    return {"headline": headline, "baseline_name": best, **results}, [section]


def _pooled(result: dict) -> dict:
    """The pooled numbers of a threshold_metrics result, flat (for tables and the index)."""
    pooled = result["pooled"]
    return {"pooled_auc": pooled["auc"], "pooled_brier": pooled["brier"], "pooled_ece": pooled["ece"],
            "monotonicity_violation_rate": result["monotonicity"]["rate"]}


def site_labels(site: Any, site_ids: Any) -> np.ndarray | None:
    """Each row's site id, from the ``site`` index and the dataset's ``site_ids`` attribute.

    The model and loader see ``site`` as an index 0..S-1 into the sorted ``site_ids`` (see
    :func:`trainset.domains.flights.frame_flights`); per-site metrics are reported by the id a
    user knows, never by that index. Without stored ids the index is all there is, so it is kept.
    """
    if site is None or not len(site):
        return None
    index = np.asarray(site, dtype=np.int64)
    if site_ids is None:
        return index
    ids = np.asarray(site_ids)
    if index.min() < 0 or index.max() >= len(ids):
        bad = int(index.min()) if index.min() < 0 else int(index.max())
        raise TrainsetError(
            f"site index {bad} is outside the dataset's site_ids attribute ({len(ids)} ids): the stored "
            "'site' feature is not an index into site_ids, so per-site metrics cannot be keyed by site id. "
            "Fix: re-frame the dataset (the workflow's flights domain), or convert the legacy shards again "
            "with `trainset convert-legacy-wds`; both store site as an index into site_ids")
    return ids[index]


def _threshold_figures(model: dict, results: dict, p: Any, probs: np.ndarray, cuts: list) -> list:
    """AUC per threshold, ROC curves and reliability small multiples: every threshold drawn."""
    per = model["per_threshold"]
    labels = [f"t={t}" for t in cuts]
    auc = Figure("ROC-AUC per threshold", figures.roc_auc_by_threshold(
        cuts, per["auc"], {name: r["per_threshold"]["auc"] for name, r in results.items() if name != "model"}))
    roc = Figure("ROC curves (model)", figures.roc_curves(
        {label: m.roc_points(p.target[:, k], probs[:, k]) for k, label in enumerate(labels)},
        dict(zip(labels, per["auc"]))), "One curve per threshold; AUC in the legend.")
    reliability = Figure("Reliability per threshold (model)", figures.reliability_grid(
        dict(zip(labels, per["calibration"]))), "10 equal-width bins; bars: predictions per bin.")
    return [auc, roc, reliability]


def _site_table(model: dict) -> Table:
    """Every site kept (both classes present), by site id."""
    per_group = model.get("per_group", {})
    skipped = model.get("group_summary", {}).get("n_skipped", 0)
    rows = [[int(site) if site.lstrip("-").isdigit() else site, g["count"], g["positives"], g["auc"], g["brier"]]
            for site, g in per_group.items()]  # numeric ids sort as numbers
    return Table("Per site (model, pooled over thresholds)", ["site id", "pairs", "positives", "AUC", "Brier"], rows,
                 f"{len(rows)} sites; {skipped} with one class only (AUC undefined) are left out.")


def thresholds(p: Any, train: dict, test: dict, info: dict) -> tuple[dict, list]:
    cuts = list(info.get("thresholds") or range(p.target.shape[1]))
    probs = 1.0 / (1.0 + np.exp(-p.pred))
    model = m.threshold_metrics(probs, p.target, cuts, groups=site_labels(p.extra.get("site"), info.get("site_ids")))
    climate = m.climatology_baseline(train["targets"])
    logistic = m.logistic_baseline(train["features"], train["targets"])
    results = {"model": model,
               "climatology": m.threshold_metrics(climate.predict_proba(len(p.target)), p.target, cuts),
               "logistic regression": m.threshold_metrics(logistic.predict_proba(test["features"]), p.target, cuts)}
    flat = {name: _pooled(r) for name, r in results.items()}
    keys = list(flat["model"])
    per = model["per_threshold"]
    per_threshold = Table("Per threshold (model)", ["threshold", "base rate", "AUC", "Brier", "ECE"],
                          [list(row) for row in zip(cuts, per["base_rate"], per["auc"], per["brier"], per["ece"])])
    summary = model.get("group_summary", {})
    group_table = Table("Per-site spread (model, pooled over thresholds)", ["statistic", "AUC", "Brier"],
                        [[k, summary.get("auc", {}).get(k), summary.get("brier", {}).get(k)]
                         for k in ("p10", "median", "p90")])
    tables = [_metric_table("Pooled scores", flat, keys), per_threshold]
    if "per_group" in model:
        tables += [group_table, _site_table(model)]
    headline = dict(flat["model"], baseline_auc=flat["logistic regression"]["pooled_auc"])
    section = Section("Threshold targets", "ROC-AUC, Brier score and expected calibration error per threshold and "
                      "pooled, beside the training base rates (climatology) and a logistic regression per threshold. "
                      "Monotonicity violations: adjacent thresholds where P(score > higher) > P(score > lower). "
                      "Per-site scores are listed by site id.", tables,
                      _threshold_figures(model, results, p, probs, cuts))
    return {"headline": headline, "baseline_name": "logistic regression", **results}, [section]


def _by_world(split: dict) -> dict:
    """``split`` (see :func:`~trainset.evaluate.load.load_split`) with ``theta``/``irfs`` as
    world -> array, also for a one-world store, whose arrays come unkeyed."""
    if isinstance(split["irfs"], dict):
        return split
    (world,) = set(split["part"])
    return {**split, "theta": {world: split["theta"]}, "irfs": {world: split["irfs"]}}


def _worlds_of(p: Any, train: dict) -> np.ndarray:
    """The world of every predicted row: the batches' ``part``, or, for a one-world store (whose
    batches name no part), that world."""
    if "part" in p.extra:
        return np.asarray(p.extra["part"])
    (world,) = train["irfs"]  # a store without parts in its batches has exactly one world
    return np.full(len(p.pred), world)


def irfs(p: Any, train: dict, test: dict, info: dict) -> tuple[dict, list]:
    train, test = _by_world(train), _by_world(test)
    worlds = _worlds_of(p, train)
    per_world, tables_rows, figs, horizons = {}, [], [], {"model": [], "training mean": [], "linear (ridge)": []}
    variables = ["output", "inflation", "rate"]
    for world in sorted(set(worlds)):
        rows = worlds == world
        shocks = train["irfs"][world].shape[1]
        pred, true = p.pred[rows][:, :shocks], p.target[rows][:, :shocks]
        std = train["irfs"][world].std(axis=(0, 1, 2))
        model = m.irf_metrics(pred, true, train_std=std, variable_names=variables)
        mean = m.mean_baseline(train["irfs"][world])(int(rows.sum()))
        linear = m.linear_baseline(train["theta"][world], train["irfs"][world]).predict(test["theta"][world])
        base_mean = m.irf_metrics(mean, true, train_std=std, variable_names=variables)
        base_linear = m.irf_metrics(linear, true, train_std=std, variable_names=variables)
        per_world[world] = {"model": model, "training mean": base_mean, "linear (ridge)": base_linear}
        for name, r in per_world[world].items():
            tables_rows.append([world, name, r["rmse"], r["nrmse"], r["sign_agreement_impact"]])
            horizons[name].append(np.asarray(r["per_horizon"]["rmse"]))
        figs.append(Figure(f"Predicted (dashed) vs true IRFs, world {world}", figures.irf_examples(
            pred, true, [f"shock {s}" for s in range(shocks)], variables, world)))
    curves = {name: np.mean(v, axis=0).tolist() for name, v in horizons.items()}
    figs.insert(0, Figure("RMSE per horizon (mean over worlds)", figures.per_horizon_error(curves)))
    nrmse = float(np.mean([w["model"]["nrmse"] for w in per_world.values()]))
    sign = float(np.mean([w["model"]["sign_agreement_impact"] for w in per_world.values()]))
    headline = {"nrmse": nrmse, "rmse": float(np.mean([w["model"]["rmse"] for w in per_world.values()])),
                "sign_agreement_impact": sign,
                "baseline_nrmse": float(np.mean([min(w["training mean"]["nrmse"], w["linear (ridge)"]["nrmse"])
                                                 for w in per_world.values()]))}
    table = Table("Per world", ["world", "model", "RMSE", "NRMSE", "sign at impact"], tables_rows,
                  "NRMSE divides RMSE by the training split's spread of each variable in that world.")
    section = Section("Impulse responses", "Errors over every shock, horizon and variable per world, beside the "
                      "world's training mean IRF and a ridge regression from parameters to IRFs.", [table], figs)
    best = {min(("training mean", "linear (ridge)"), key=lambda name: w[name]["nrmse"]) for w in per_world.values()}
    name = best.pop() if len(best) == 1 else "the better of training mean and ridge, per world"
    return {"headline": headline, "baseline_name": name, "worlds": per_world}, [section]


def irf_splits(model: Any, cfg: Any, dataset_path, scalers: Any, info: dict, train: dict,
               main_split: str) -> tuple[dict, Table]:
    """NRMSE per world on every held-out split (interpolation and extrapolation tests alike)."""
    from trainset.evaluate.predict import predict

    train = _by_world(train)
    from trainset.io.base import guess_format
    from trainset.open import dataset_splits

    source = guess_format(dataset_path).reader(dataset_path)
    names = [s for s in dataset_splits(dataset_path, source.splits, len(source))
             if s != cfg.training.train_split]
    by_split: dict[str, dict[str, float]] = {}
    for name in names:
        p = predict(model, cfg, dataset_path, name, scalers, info)
        worlds = _worlds_of(p, train)
        by_split[name] = {}
        for world in sorted(set(worlds)):
            rows, shocks = worlds == world, train["irfs"][world].shape[1]
            std = train["irfs"][world].std(axis=(0, 1, 2))
            by_split[name][world] = m.irf_metrics(p.pred[rows][:, :shocks], p.target[rows][:, :shocks],
                                                  train_std=std)["nrmse"]
    worlds = sorted({w for values in by_split.values() for w in values})
    rows = [[name, *(by_split[name].get(w) for w in worlds)] for name in names]
    table = Table("NRMSE per world and split (model)", ["split", *worlds], rows,
                  "Extrapolation splits hold parameters outside the training region (a slice and a corner).")
    return {"nrmse_by_split": by_split}, table


def _grid_coords(dataset_path) -> dict[str, Any]:
    """The season weeks and places of the first part (the US grid's axes), read without its frames:
    :meth:`~trainset.io.base.Format.open` reads lazily where the format can (NetCDF)."""
    from trainset.io.base import guess_format

    with guess_format(dataset_path).open(dataset_path) as (collection, _):
        part = next(iter(collection.parts.values()))
        return {"season_week": part["season_week"].values, "place": part["place"].values, "feature": ["value"]}


def generated_frames(model: Any, cfg: Any, dataset_path, split: str, scalers: Any, n: int,
                     steps: int) -> tuple[dict, list]:
    """Frames drawn from a generative model (``n`` frames, ``steps`` denoising steps; the
    model's ``sample`` checks them) vs the held-out frames of ``split``."""
    import tempfile

    import torch
    import xarray as xr

    from trainset.plots.us_grid import plot_us_grid

    held = load_split(dataset_path, split)["frames"]
    generator = torch.Generator().manual_seed(cfg.training.seed)
    sample = model.sample(n, generator=generator, steps=steps).cpu()  # drawn on the model's device, no autograd
    sample = np.asarray(scalers.inverse("frames", sample) if scalers is not None else sample, dtype=np.float64)
    weeks, places = held.shape[2], held.shape[3]
    generated = np.clip(sample[:, :, :weeks, :places], 0, None)
    result = m.frame_distribution_metrics(generated[:, 0], held[:, 0])
    held_peaks, generated_peaks = m.national_peaks(held[:, 0]), m.national_peaks(generated[:, 0])
    coords = _grid_coords(dataset_path)
    pngs = []
    titles = {"generated": "Generated frames (drawn from the model)", "held-out": f"Held-out frames ({split!r} split)"}
    with tempfile.TemporaryDirectory() as tmp:
        for name, frames in (("generated", generated), ("held-out", held)):
            array = xr.DataArray(frames[:12], dims=("sample", "feature", "season_week", "place"),
                                 coords={**coords, "sample": np.arange(min(12, len(frames)))})
            path = f"{tmp}/{name}.png"
            plot_us_grid(array, path, title=titles[name])
            pngs.append(open(path, "rb").read())
    # Two full-width figures: side by side, 51 state panels each shrink below reading size.
    figs = [Figure("US grid: generated frames", pngs[0], "Drawn from the model; compare shapes, peaks and "
                   "timing with the held-out frames below."),
            Figure("US grid: held-out frames", pngs[1], f"Frames of the {split!r} split, never trained on."),
            Figure("National peak size", figures.distributions(held_peaks[0], generated_peaks[0],
                                                               "National-sum peak", "peak (cases)")),
            Figure("National peak week", figures.distributions(held_peaks[1], generated_peaks[1],
                                                               "Peak week", "season week"))]
    headline = {"ks_peak_size": result["peak_size"]["ks_statistic"],
                "ks_peak_week": result["peak_week"]["ks_statistic"],
                "wasserstein_national": result["national_wasserstein"]}
    section = Section("Generated frames", f"{n} frames drawn from the model ({steps} sampling steps) against the "
                      f"{len(held)} held-out frames: peak size and peak week of the national sum, and the "
                      "two-sample KS statistics (0 = same distribution).",
                      [Table("Distribution distances", ["statistic", "value"], [[k, v] for k, v in headline.items()])],
                      figs)
    return {"headline": headline, "sample_steps": steps, **result}, [section]
