"""The flight (threshold) report: reliability for every threshold, ROC curves, per-site metrics by site id."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pytest
from matplotlib.image import imread

from trainset.domains.flights import date_block_splits, frame_flights, make_flight_table
from trainset.errors import TrainsetError
from trainset.evaluate import figures as F
from trainset.evaluate.stage import evaluate_run
from trainset.evaluate.tasks import site_labels
from trainset.evaluate.threshold_metrics import calibration_curve, roc_points
from trainset.io.base import get_format
from trainset.scalers import fit_dataset_scalers
from trainset.train.config import TrainingConfig
from trainset.train.run import train_run

SIGNATURE = b"\x89PNG\r\n\x1a\n"
RUN = {"name": "fl", "model": {"name": "flight", "params": {"hidden": [8], "embedding_dim": 2, "cross_layers": 1}},
       "training": {"losses": [{"name": "bce"}], "epochs": 1, "batch_size": 256}}


def _image(png: bytes) -> np.ndarray:
    assert png.startswith(SIGNATURE)
    return imread(io.BytesIO(png), format="png")


def _report_pngs(page: str) -> dict[str, bytes]:
    """Figure title -> PNG bytes, decoded from the report's inline data URIs."""
    found = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]*)"', page)
    return {alt.split(":")[0]: base64.b64decode(data) for data, alt in found}


@pytest.fixture(scope="module")
def flight_report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("flights")
    collection = frame_flights(make_flight_table(n_sites=6, years=1, seed=1), "fl")
    splits = date_block_splits(collection, seed=0, block_days=14, shuffle=True)
    path = folder / "TS_fl-wds"
    get_format("webdataset").write(collection, path, splits, samples_per_member=64)
    scalers = folder / "scalers.json"
    fit_dataset_scalers(path, scalers)
    train_run(TrainingConfig.from_dict(RUN), path, folder / "run", scalers)
    evaluate_run(RUN, folder / "run", path, scalers, folder / "report")
    metrics = json.loads((folder / "report/metrics.json").read_text())
    page = (folder / "report/report.html").read_text()
    return collection, metrics, page


def test_every_threshold_has_a_calibration_entry_and_a_panel(flight_report):
    collection, metrics, page = flight_report
    thresholds = collection.attrs["thresholds"]
    per = metrics["metrics"]["model"]["per_threshold"]
    assert per["threshold"] == [float(t) for t in thresholds]
    assert len(per["calibration"]) == len(thresholds) == 11
    for curve in per["calibration"]:
        pairs = metrics["metrics"]["model"]["pooled"]["count"]
        assert len(curve["counts"]) == 10 and sum(curve["counts"]) == pairs // 11
    pngs = _report_pngs(page)
    grid = _image(pngs["Reliability per threshold (model)"])
    assert grid.shape[0] > 500 and grid.shape[1] > 800  # 3 rows x 4 columns of panels at 90 dpi
    roc = _image(pngs["ROC curves (model)"])
    assert roc.shape[0] > 300 and roc.shape[1] > 400 and roc[..., :3].std() > 0.05  # drawn, not blank


def test_per_site_metrics_are_keyed_by_stored_site_ids(flight_report):
    collection, metrics, page = flight_report
    site_ids = [str(s) for s in collection.attrs["site_ids"]]
    per_group = metrics["metrics"]["model"]["per_group"]
    assert per_group and set(per_group) <= set(site_ids)
    assert not set(per_group) & {str(i) for i in range(len(site_ids))}  # ids are 100..99999, never indices
    for site, scores in per_group.items():
        assert 0 <= scores["brier"] <= 1 and 0 <= scores["auc"] <= 1
        assert re.search(rf"<td[^>]*>{site}</td>", page), f"site {site} not listed in the report"


def test_site_labels_map_indices_to_ids():
    np.testing.assert_array_equal(site_labels(np.array([2, 0, 1, 2]), [105, 230, 4017]), [4017, 105, 230, 4017])
    np.testing.assert_array_equal(site_labels(np.array([1, 0]), None), [1, 0])
    assert site_labels(None, [1, 2]) is None
    with pytest.raises(TrainsetError, match=r"site index 3 is outside the dataset's site_ids attribute \(2 ids\)"
                                            r".*Fix: re-frame the dataset.*convert-legacy-wds"):
        site_labels(np.array([3]), [1, 2])
    with pytest.raises(TrainsetError, match="site index -1 is outside"):
        site_labels(np.array([0, -1]), [1, 2])


def test_threshold_figures_are_real_and_deterministic():
    rng = np.random.default_rng(0)
    y = (rng.uniform(size=(400, 5)) < np.linspace(0.8, 0.1, 5)).astype(float)
    p = np.clip(y * 0.6 + rng.uniform(0, 0.4, y.shape), 0, 1)
    curves = {f"t={k}": calibration_curve(p[:, k], y[:, k]) for k in range(5)}
    rocs = {f"t={k}": roc_points(y[:, k], p[:, k]) for k in range(5)}
    rocs["t=4"] = None  # one class only: listed as undefined, no curve
    aucs = {name: 0.8 for name in rocs} | {"t=4": None}
    for draw in (lambda: F.reliability_grid(curves), lambda: F.roc_curves(rocs, aucs)):
        first, second = draw(), draw()
        assert first == second
        image = _image(first)
        assert image.shape[0] > 200 and image[..., :3].std() > 0.05
    fpr, tpr = roc_points(y[:, 0], p[:, 0])
    assert fpr[0] == 0 and tpr[-1] == 1 and len(fpr) == len(tpr)
    assert roc_points(np.ones(5), np.linspace(0, 1, 5)) is None
    with pytest.raises(TrainsetError, match="lacks"):
        F.reliability_grid({"t=0": {"counts": [1]}})
    with pytest.raises(TrainsetError, match="AUC for each"):
        F.roc_curves({"t=0": None}, {})
