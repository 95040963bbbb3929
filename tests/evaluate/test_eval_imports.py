"""An evaluate_model job is a fresh process, so what it imports is paid once per job: scikit-learn
(~0.8 s with what it pulls in) only where a baseline is fitted or a scikit-learn metric is called,
scipy.stats only for frame reports, and no xarray for the splits the baselines read. Each check
runs in a subprocess, whose ``sys.modules`` starts empty."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import stored_sequences
from trainset.train.config import TrainingConfig
from trainset.train.run import train_run

REPO = Path(__file__).resolve().parents[2]
WATCHED = ("sklearn", "scipy.stats", "xarray", "pandas")


def imported_by(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; return the :data:`WATCHED` modules it imported."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {WATCHED!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def evaluation(run: dict, folder: Path, dataset: Path, scalers: Path | None, output: Path, **options) -> str:
    """The code of one evaluate_model job: the script's import, then its call."""
    args = ", ".join(repr(str(a)) if a is not None else "None" for a in (folder, dataset, scalers, output))
    extra = "".join(f", {k}={v!r}" for k, v in options.items())
    return ("import json\nfrom trainset.evaluate.stage import evaluate_run\n"
            f"evaluate_run(json.loads({json.dumps(run)!r}), {args}{extra})")


def test_loading_the_stage_and_every_handler_imports_no_sklearn_scipy_stats_or_xarray():
    code = ("from trainset.evaluate.stage import resolve_handler\nfrom trainset.tasks import TASKS\n"
            "import trainset.evaluate.figures, trainset.evaluate.html, trainset.evaluate.metrics\n"
            "for spec in TASKS.values():\n"
            "    for ref in (spec.evaluation, spec.split_scores):\n"
            "        if ref:\n            resolve_handler(ref)")
    assert imported_by(code) == []


def test_a_frames_evaluation_imports_no_sklearn(tmp_path, axis, table_factory):
    """A generative run (no baseline, no scikit-learn metric) evaluates without scikit-learn."""
    from tests.seeds.flu_files import flu_mix

    path, _, _ = flu_mix(tmp_path / "d", axis, table_factory)
    run = {"name": "diff", "model": {"name": "diffusion", "params": {"steps": 4, "base_channels": 8}},
           "training": {"losses": [{"name": "mse"}], "epochs": 1, "batch_size": 4, "device": "cpu"}}
    train_run(TrainingConfig.from_dict(run), path, tmp_path / "run", None)
    found = imported_by(evaluation(run, tmp_path / "run", path, None, tmp_path / "report", generated=2,
                                   sample_steps=2))
    assert (tmp_path / "report" / "metrics.json").exists()
    assert "sklearn" not in found


def test_a_regression_evaluation_reads_its_splits_without_xarray(tmp_path):
    """The baselines' splits are read through the format's reader, not as an xarray collection."""
    from trainset.scalers import fit_dataset_scalers

    path = stored_sequences(tmp_path / "data", "statistics", 120, seed=3, length=8)
    scalers = tmp_path / "scalers.json"
    fit_dataset_scalers(path, scalers)
    run = {"name": "stats", "model": {"name": "mlp", "params": {"hidden": [8]}},
           "training": {"losses": [{"name": "mse"}], "epochs": 1, "batch_size": 32}}
    train_run(TrainingConfig.from_dict(run), path, tmp_path / "run", scalers)
    found = imported_by(evaluation(run, tmp_path / "run", path, scalers, tmp_path / "report"))
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())["metrics"]
    assert "linear (ridge)" in metrics  # the ridge baseline ran: scikit-learn is imported, xarray is not
    assert "sklearn" in found and "xarray" not in found
