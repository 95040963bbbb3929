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
from trainset.evaluate.load import load_splits
from trainset.provenance import code_version, creation_date, file_sha256, json_sha256, jsonable, write_json
from trainset.tasks import TASKS, TaskSpec
from trainset.versions import KEY, check_version, stamp

logger = logging.getLogger(__name__)


def evaluate_run(run: dict[str, Any], folder: str | os.PathLike, dataset_path: str | os.PathLike,
                 scalers_path: str | os.PathLike | None, output: str | os.PathLike, split: str = "test",
                 generated: int | None = 48, sample_steps: int | None = 25) -> dict[str, Any]:
    """Evaluate the best checkpoint of a run; write ``metrics.json`` and ``report.html`` into ``output``.

    Generative tasks draw ``generated`` frames with ``sample_steps`` denoising steps (from 2 to
    the model's diffusion steps, checked before any data is read); other tasks ignore both, and
    None says so (the workflow passes None for runs that draw nothing, so changing either
    setting reruns only the generative runs). 25 of the demo model's 200 steps take half the
    time of 50; on the demo run they draw larger epidemics (README "Evaluation reports": the
    Wasserstein distance grows by a third; the KS statistics are at their maximum, 1, either way).
    """
    from trainset.evaluate import html
    from trainset.evaluate.predict import load_trained, predict
    from trainset.train.config import TrainingConfig, config_hash

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
    if spec.generative:
        _check_sampling(cfg.name, task, model, generated, sample_steps)
    history = json.loads((folder / "history.json").read_text())
    if spec.generative:
        metrics, sections = resolve_handler(spec.evaluation)(model, cfg, dataset_path, split, scalers, generated,
                                                             sample_steps)
    else:
        predictions = predict(model, cfg, dataset_path, split, scalers, info)
        read = load_splits(dataset_path, [cfg.training.train_split, split], cfg.data.worlds)  # one pass
        train, test = read[cfg.training.train_split], read[split]
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
        "trained_on": meta.get("device"), "trained_gpu": meta.get("gpu_name"),  # training.device, resolved
        "config_sha256": config_hash(cfg), "date": creation_date(),  # the day only: reruns that day match
    }
    result = {"run": cfg.name, "task": task, "split": split, "metrics": metrics, "provenance": provenance,
              **stamp("metrics")}
    from trainset.evaluate import figures

    training = html.Section("Learning curves", f"Model selected at epoch {provenance['best_epoch']} (lowest "
                            f"validation loss). The scores above are on the {split!r} split, never on training data.",
                            figures=[html.Figure("Loss per epoch", figures.learning_curves(history))])
    page = _report_page(html, result, spec, [*sections, training, html.provenance_section(cfg.to_dict(), provenance)])
    output.mkdir(parents=True, exist_ok=True)
    write_json(jsonable(result, f"{output}/metrics.json", nan_as_null=True), output / "metrics.json")
    html.write_page(page, output / "report.html")
    return result


def _check_sampling(run: str, task: str, model: Any, generated: int | None, sample_steps: int | None) -> None:
    """Refuse a generative run's sampling settings before any frame is read or drawn."""
    if generated is None or sample_steps is None:
        raise TrainsetError(f"run {run!r}: task {task!r} draws frames, but generated={generated!r}, "
                            f"sample_steps={sample_steps!r}. Fix: give both (evaluation.generated_frames and "
                            "evaluation.sample_steps; trainset evaluate --generated and --sample-steps)")
    model.checked_steps(sample_steps)


def _report_page(html: Any, result: dict, spec: TaskSpec, sections: list) -> str:
    """Results first (the verdict, then the task's sections), training and provenance last."""
    from trainset.evaluate.verdict import verdict

    judged = verdict(spec, result["metrics"])
    tone = {"better": "good", "worse": "bad"}.get(judged.outcome, "")
    return html.render_report(f"{result['run']}: {result['task']} on {result['split']}", sections,
                              meta=_facts(result["provenance"]), notes=[html.Note(judged.sentence(), tone)])


def _facts(provenance: dict) -> dict[str, Any]:
    """The header line of a report: when, with which trainset, from which config."""
    digest = provenance.get("config_sha256")
    return {"evaluated": provenance.get("date"), "trainset": provenance.get("trainset_version"),
            "config sha256": digest[:12] if isinstance(digest, str) else None}


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
    """``results/reports/index.html``: every run in one sortable table, linking to its report.

    Each row names the task's headline metric and which way is better, the best baseline by
    name and score, and the verdict; runs that lose to their baseline are shaded and listed on
    top. The header's date is the newest evaluation date among the inputs (never the clock), so
    the same metrics files always give the same bytes.
    """
    from trainset.evaluate import html

    results = []
    for path in sorted(reports, key=str):
        result = json.loads(Path(path).read_text())
        check_version("metrics", result.get(KEY), path)
        results.append(result)
    rows, losers = [_index_row(result) for result in results], []
    for result, row in zip(results, rows):
        if row["vs baseline"].classes == "verdict worse":
            losers.append(result["run"])
    notes = [html.Note(f"{len(losers)} of {len(rows)} runs lose to their best baseline (shaded): "
                       + ", ".join(losers), "bad")] if losers else []
    columns = list(dict.fromkeys(key for row in rows for key in row)) or ["run"]
    page = html.render_index(rows, columns, {r["run"]: f"{r['run']}/report.html" for r in results},
                             intro=INDEX_INTRO, meta=_index_facts(results), flagged=set(losers),
                             multiline={"other metrics"}, notes=notes)
    html.write_page(page, output)


INDEX_INTRO = ("Each row: a run's selected checkpoint scored on its evaluation split. \"vs baseline\" compares the "
               "model with the best baseline (fitted on the training split only) in the task's headline metric; "
               "\u2193 lower is better, \u2191 higher is better.")


def _index_row(result: dict) -> dict[str, Any]:
    """One run's row: headline metric with its direction, the best baseline and the verdict."""
    from trainset.evaluate.html import Cell, format_value
    from trainset.evaluate.verdict import ARROW, BETTER, verdict

    metrics = result["metrics"]
    headline = dict(metrics.get("headline", {}))
    spec = TASKS.get(result["task"])
    row = {"run": result["run"], "task": result["task"], "split": result["split"],
           "dataset": Path(result["provenance"]["dataset"]).name}
    if spec is None:
        row.update({"metric": None, "model": None, "best baseline": None, "baseline score": None,
                    "vs baseline": Cell("unknown task", classes="verdict")})
    else:
        judged = verdict(spec, metrics)
        headline.pop(spec.metric, None)
        row.update({"metric": f"{spec.metric} {ARROW[spec.direction]} {BETTER[spec.direction]}",
                    "model": judged.model, "best baseline": judged.baseline_name,
                    "baseline score": headline.pop(spec.baseline, None) if spec.baseline else None,
                    "vs baseline": Cell(judged.short(), judged.relative, f"verdict {judged.outcome}")})
    row["other metrics"] = "\n".join(f"{k} {format_value(v)}" for k, v in headline.items())
    return row


def _index_facts(results: list[dict]) -> dict[str, Any]:
    """Header of the index: newest evaluation date, trainset versions, one hash of all run configs."""
    provenance = [r["provenance"] for r in results]
    dates = sorted(p["date"] for p in provenance if p.get("date"))
    versions = sorted({str(p.get("trainset_version")) for p in provenance})
    configs = {r["run"]: r["provenance"].get("config_sha256") for r in results}
    digest = json_sha256(configs)[:12] if configs and all(configs.values()) else None
    return {"evaluated": dates[-1] if dates else None, "trainset": ", ".join(versions) or None,
            "config sha256 (all runs)": digest}
