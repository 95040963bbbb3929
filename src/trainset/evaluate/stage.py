"""The evaluation stage: one run -> metrics.json + a self-contained report.html.

Metrics are computed on the split the config names (``test`` by default; never the training
split), each beside simple baselines fitted on the training split only, so the numbers mean
something. The report says which split it scored.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from trainset.errors import TrainsetError
from trainset.evaluate.load import load_split
from trainset.provenance import code_version, file_sha256, jsonable, write_json
from trainset.tasks import TASKS, TaskSpec
from trainset.versions import KEY, check_version, stamp

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
    info = {**(meta.get("info") or {}), "thresholds": stored_attrs.get("thresholds"),
            "site_ids": stored_attrs.get("site_ids")}  # per-site metrics by id, not embedding index
    task = info.get("task")
    spec = _evaluated(task)
    history = json.loads((folder / "history.json").read_text())
    if spec.generative:
        metrics, sections = resolve_handler(spec.evaluation)(model, cfg, dataset_path, split, scalers, generated)
    else:
        predictions = predict(model, cfg, dataset_path, split, scalers, info)
        train = load_split(dataset_path, cfg.training.train_split, cfg.data.worlds)
        test = load_split(dataset_path, split, cfg.data.worlds)
        if not np.array_equal(predictions.extra["index"], test["index"]):
            raise TrainsetError(f"{dataset_path}: predictions of split {split!r} are not in the split's order. "
                                "Fix: report this as a bug; baselines would be scored against the wrong rows")
        metrics, sections = resolve_handler(spec.evaluation)(predictions, train, test, info)
        if spec.split_scores:
            more, table = resolve_handler(spec.split_scores)(model, cfg, dataset_path, scalers, info, train, split)
            metrics.update(more)
            sections[0].tables.append(table)
    provenance = {
        "run": cfg.name, "task": task, "split": split, "dataset": str(dataset_path),
        "dataset_sha256": meta.get("dataset_sha256"), "scaler_sha256": meta.get("scaler_sha256"),
        "checkpoint": str(checkpoint), "checkpoint_sha256": file_sha256(checkpoint),
        "trainset_version": code_version(), "best_epoch": _best_epoch(history),
    }
    result = {"run": cfg.name, "task": task, "split": split, "metrics": metrics, "provenance": provenance,
              **stamp("metrics")}
    from trainset.evaluate import figures

    intro = html.Section("Learning curves", f"Model selected at epoch {provenance['best_epoch']} (lowest "
                         f"validation loss). Scores below are on the {split!r} split, never on training data.",
                         figures=[html.Figure("Loss per epoch", figures.learning_curves(history))])
    page = html.render_report(f"{cfg.name}: {task} on {split}",
                              [html.provenance_section(cfg.to_dict(), provenance), intro, *sections])
    output.mkdir(parents=True, exist_ok=True)
    write_json(jsonable(result, f"{output}/metrics.json", nan_as_null=True), output / "metrics.json")
    html.write_page(page, output / "report.html")
    return result


def _best_epoch(history: list[dict]) -> int | None:
    finite = [h for h in history if h.get("val_loss") is not None and np.isfinite(h["val_loss"])]
    return min(finite, key=lambda h: h["val_loss"])["epoch"] if finite else None


def _evaluated(task: Any) -> TaskSpec:
    """The registry entry of a stored task that has an evaluation handler."""
    handled = sorted(name for name, spec in TASKS.items() if spec.evaluation)
    if task not in handled:
        raise TrainsetError(f"no evaluation for task {task!r}. Fix: use one of {handled}")
    return TASKS[task]


def resolve_handler(reference: str) -> Callable[..., tuple[dict, list]]:
    """The function a task names as ``"module:function"`` (imported only when evaluating)."""
    module, _, name = reference.partition(":")
    handler = getattr(importlib.import_module(module), name, None) if module and name else None
    if not callable(handler):
        raise TrainsetError(f"evaluation handler {reference!r} not found. Fix: name an existing "
                            "'module:function' in trainset.tasks.TASKS")
    return handler


def write_index(reports: list[str | os.PathLike], output: str | os.PathLike) -> None:
    """``results/reports/index.html``: every run in one sortable table, linking to its report."""
    from trainset.evaluate import html

    rows, links = [], {}
    for path in sorted(reports, key=str):
        result = json.loads(Path(path).read_text())
        check_version("metrics", result.get(KEY), path)
        headline = dict(result["metrics"].get("headline", {}))
        spec = TASKS.get(result["task"])
        metric, baseline = (spec.metric, spec.baseline) if spec else (None, None)
        row = {"run": result["run"], "task": result["task"], "split": result["split"],
               "dataset": Path(result["provenance"]["dataset"]).name, "main metric": metric,
               "model": headline.pop(metric, None), "best baseline": headline.pop(baseline, None)}
        row["other"] = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in headline.items())
        rows.append(row)
        links[result["run"]] = f"{result['run']}/report.html"
    columns = list(dict.fromkeys(key for row in rows for key in row))
    html.write_page(html.render_index(rows, columns, links), output)
