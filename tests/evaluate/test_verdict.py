"""The verdict: which way is better comes from the task, and the gap is stated in both units."""

from __future__ import annotations

import pytest

from trainset.evaluate.verdict import verdict
from trainset.tasks import TASKS


def _metrics(headline: dict, name: str | None = "linear (ridge)") -> dict:
    return {"headline": headline, "baseline_name": name}


@pytest.mark.parametrize("task, headline, outcome, short", [
    ("seq2static_regression", {"rmse": 0.4, "baseline_rmse": 0.5}, "better", "better by 0.1 (20.0%)"),
    ("seq2static_regression", {"rmse": 0.6, "baseline_rmse": 0.5}, "worse", "worse by 0.1 (20.0%)"),
    ("seq2seq_classification", {"accuracy": 0.6, "baseline_accuracy": 0.8}, "worse", "worse by 0.2 (25.0%)"),
    ("thresholds", {"pooled_auc": 0.75, "baseline_auc": 0.6}, "better", "better by 0.15 (25.0%)"),
    ("irf", {"nrmse": 0.3, "baseline_nrmse": 0.3}, "tie", "ties"),
    ("irf", {"nrmse": 0.3, "baseline_nrmse": None}, "unknown", "not comparable"),
    ("frames", {"ks_peak_size": 0.2}, "no baseline", "no baseline"),
])
def test_outcome_follows_the_tasks_direction(task, headline, outcome, short) -> None:
    judged = verdict(TASKS[task], _metrics(headline))
    assert judged.outcome == outcome and judged.short() == short


def test_sentence_names_metric_direction_baseline_and_gap() -> None:
    judged = verdict(TASKS["seq2static_regression"], _metrics({"rmse": 0.6, "baseline_rmse": 0.5}))
    assert judged.sentence() == ("rmse 0.6 (lower is better): worse than the best baseline, linear (ridge) (0.5), "
                                 "by 0.1 (20.0%).")
    frames = verdict(TASKS["frames"], _metrics({"ks_peak_size": 0.2}, None))
    assert frames.sentence() == "ks_peak_size 0.2 (lower is better): this task has no baseline to compare with."


def test_zero_baseline_gives_no_percentage() -> None:
    judged = verdict(TASKS["seq2static_regression"], _metrics({"rmse": 0.1, "baseline_rmse": 0.0}))
    assert judged.outcome == "worse" and judged.short() == "worse by 0.1"
    nan = verdict(TASKS["seq2static_regression"], _metrics({"rmse": float("nan"), "baseline_rmse": 0.5}))
    assert nan.outcome == "unknown"
