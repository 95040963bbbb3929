"""The evaluation stage: one run -> metrics.json + a self-contained report.html.

Metrics are computed on the split the config names (``test`` by default; never the training
split), each beside simple baselines fitted on the training split only, so the numbers mean
something. The report says which split it scored.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from trainset.errors import TrainsetError
from trainset.provenance import code_version, file_sha256, write_json

logger = logging.getLogger(__name__)


def evaluate_run(run: dict[str, Any], folder: str | os.PathLike, dataset_path: str | os.PathLike,
                 scalers_path: str | os.PathLike | None, output: str | os.PathLike, split: str = "test",
                 generated: int = 48) -> dict[str, Any]:
    """Evaluate the best checkpoint of a run; write ``metrics.json`` and ``report.html`` into ``output``."""
    from trainset.evaluate import html
    from trainset.evaluate.predict import load_trained, predict
    from trainset.train.config import TrainingConfig

    cfg = TrainingConfig.from_dict(run)
    if split == cfg.training.train_split:
        raise TrainsetError(f"evaluation.split {split!r} is the training split. Fix: evaluate on test or val")
    folder, output = Path(folder), Path(output)
    checkpoint = folder / "best.pt"
    model, meta, scalers = load_trained(cfg, checkpoint, dataset_path, scalers_path)
    from trainset.io.base import guess_format

    stored_attrs = guess_format(dataset_path).reader(dataset_path).attrs
    info = {**(meta.get("info") or {}), "thresholds": stored_attrs.get("thresholds")}
    task = info.get("task")
    history = json.loads((folder / "history.json").read_text())
    if task == "frames":
        metrics, sections = _frames(model, cfg, dataset_path, split, scalers, generated)
    else:
        predictions = predict(model, cfg, dataset_path, split, scalers, info)
        train = _load_split(dataset_path, cfg.training.train_split)
        test = _load_split(dataset_path, split)
        if not np.array_equal(predictions.extra["index"], test["index"]):
            raise TrainsetError(f"{dataset_path}: predictions of split {split!r} are not in the split's order. "
                                "Fix: report this as a bug; baselines would be scored against the wrong rows")
        metrics, sections = _by_task(task, predictions, train, test, info)
        if task == "irf":
            by_split, table = _irf_other_splits(model, cfg, dataset_path, scalers, info, train, split)
            metrics["nrmse_by_split"] = by_split
            sections[0].tables.append(table)
    provenance = {
        "run": cfg.name, "task": task, "split": split, "dataset": str(dataset_path),
        "dataset_sha256": meta.get("dataset_sha256"), "scaler_sha256": meta.get("scaler_sha256"),
        "checkpoint": str(checkpoint), "checkpoint_sha256": file_sha256(checkpoint),
        "trainset_version": code_version(), "best_epoch": _best_epoch(history),
    }
    result = {"run": cfg.name, "task": task, "split": split, "metrics": metrics, "provenance": provenance}
    from trainset.evaluate import figures

    intro = html.Section("Learning curves", f"Model selected at epoch {provenance['best_epoch']} (lowest "
                         f"validation loss). Scores below are on the {split!r} split, never on training data.",
                         figures=[html.Figure("Loss per epoch", figures.learning_curves(history))])
    page = html.render_report(f"{cfg.name}: {task} on {split}",
                              [html.provenance_section(cfg.to_dict(), provenance), intro, *sections])
    output.mkdir(parents=True, exist_ok=True)
    write_json(_jsonable(result), output / "metrics.json")
    html.write_page(page, output / "report.html")
    return result


def _irf_other_splits(model, cfg, dataset_path, scalers, info, train, main_split) -> tuple[dict, Any]:
    """NRMSE per world on every held-out split (interpolation and extrapolation tests alike)."""
    from trainset.evaluate.html import Table
    from trainset.evaluate.metrics import irf_metrics
    from trainset.evaluate.predict import predict
    from trainset.io.base import guess_format
    from trainset.open import dataset_splits

    names = [s for s in dataset_splits(dataset_path, guess_format(dataset_path).reader(dataset_path).splits)
             if s != cfg.training.train_split]
    by_split: dict[str, dict[str, float]] = {}
    for name in names:
        p = predict(model, cfg, dataset_path, name, scalers, info)
        worlds = np.asarray(p.extra["world"])
        by_split[name] = {}
        for world in sorted(set(worlds)):
            rows, shocks = worlds == world, train["irfs"][world].shape[1]
            std = train["irfs"][world].std(axis=(0, 1, 2))
            by_split[name][world] = irf_metrics(p.pred[rows][:, :shocks], p.target[rows][:, :shocks],
                                                train_std=std)["nrmse"]
    worlds = sorted({w for values in by_split.values() for w in values})
    rows = [[name, *(by_split[name].get(w) for w in worlds)] for name in names]
    table = Table("NRMSE per world and split (model)", ["split", *worlds], rows,
                  "Extrapolation splits hold parameters outside the training region (a slice and a corner).")
    return by_split, table


def _best_epoch(history: list[dict]) -> int | None:
    finite = [h for h in history if h.get("val_loss") is not None and np.isfinite(h["val_loss"])]
    return min(finite, key=lambda h: h["val_loss"])["epoch"] if finite else None


def _load_split(dataset_path: str | os.PathLike, split: str) -> dict[str, np.ndarray]:
    """Every variable of one split in memory (for fitting baselines on the training split)."""
    from trainset.io.base import guess_format
    from trainset.open import dataset_splits

    collection, stored = guess_format(dataset_path).load(dataset_path)
    indices = np.sort(dataset_splits(dataset_path, stored)[split])
    part, local = collection.locate(indices)
    out: dict[str, Any] = {"world": [], "index": indices}
    names = list(collection.parts)
    for number, name in enumerate(names):
        rows = local[part == number]
        for var in collection.parts[name].data_vars:
            out.setdefault(var, {})[name] = collection.parts[name][var].values[rows]
        out["world"] += [name] * int(rows.size)
    single = len(names) == 1
    return {k: (v[names[0]] if single and isinstance(v, dict) else v) for k, v in out.items()}  # index stays flat


def _by_task(task: str, p: Any, train: dict, test: dict, info: dict) -> tuple[dict, list]:
    from trainset.evaluate import tasks

    handlers = {
        "seq2static_classification": tasks.classification, "seq2seq_classification": tasks.classification,
        "seq2static_regression": tasks.regression, "seq2seq_regression": tasks.regression,
        "summary": tasks.regression, "reconstruction": tasks.regression,
        "thresholds": tasks.thresholds, "irf": tasks.irfs,
    }
    if task not in handlers:
        raise TrainsetError(f"no evaluation for task {task!r}. Fix: use one of {sorted(handlers)}")
    return handlers[task](p, train, test, info)


def _frames(model: Any, cfg: Any, dataset_path, split: str, scalers: Any, n: int) -> tuple[dict, list]:
    from trainset.evaluate import tasks

    return tasks.generated_frames(model, cfg, dataset_path, split, scalers, n)


def _jsonable(obj: Any) -> Any:
    """NaN/inf -> None, numpy -> Python, so metrics.json is strict JSON."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


MAIN_METRIC = {
    "seq2static_classification": ("accuracy", "baseline_accuracy"),
    "seq2seq_classification": ("accuracy", "baseline_accuracy"),
    "seq2static_regression": ("rmse", "baseline_rmse"), "seq2seq_regression": ("rmse", "baseline_rmse"),
    "summary": ("rmse", "baseline_rmse"), "reconstruction": ("rmse", "baseline_rmse"),
    "thresholds": ("pooled_auc", "baseline_auc"), "irf": ("nrmse", "baseline_nrmse"),
    "frames": ("ks_peak_size", None),
}
"""The number each task is compared by in the index, and its best baseline's counterpart."""


def write_index(reports: list[str | os.PathLike], output: str | os.PathLike) -> None:
    """``results/reports/index.html``: every run in one sortable table, linking to its report."""
    from trainset.evaluate import html

    rows, links = [], {}
    for path in sorted(reports, key=str):
        result = json.loads(Path(path).read_text())
        headline = dict(result["metrics"].get("headline", {}))
        metric, baseline = MAIN_METRIC.get(result["task"], (None, None))
        row = {"run": result["run"], "task": result["task"], "split": result["split"],
               "dataset": Path(result["provenance"]["dataset"]).name, "main metric": metric,
               "model": headline.pop(metric, None), "best baseline": headline.pop(baseline, None)}
        row["other"] = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in headline.items())
        rows.append(row)
        links[result["run"]] = f"{result['run']}/report.html"
    columns = list(dict.fromkeys(key for row in rows for key in row))
    html.write_page(html.render_index(rows, columns, links), output)
