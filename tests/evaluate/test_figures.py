"""Every evaluation figure is a real, non-blank PNG and is byte-identical for equal input."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.image import imread

from trainset.errors import TrainsetError
from trainset.evaluate import figures as F

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _history() -> list[dict]:
    return [{"epoch": e, "train_loss": 1 / e, "val_loss": 1 / e + 0.01 * max(0, e - 6) ** 2,
             "lr": 1e-3 * 0.8 ** e, "improved": e <= 6} for e in range(1, 13)]


def _curves() -> dict:
    rng = np.random.default_rng(0)
    centres = np.linspace(0.05, 0.95, 10)
    out = {}
    for t in (0, 50, 100):
        counts = rng.integers(0, 5000, 10)
        counts[4] = 0
        out[f"t={t}"] = {"bin_centres": centres, "mean_predicted": centres,
                         "observed": np.clip(centres + rng.normal(0, 0.05, 10), 0, 1),
                         "counts": counts}
    return out


def _irfs() -> tuple[np.ndarray, np.ndarray]:
    h = np.arange(41)
    true = np.stack([np.stack([np.stack([np.exp(-h / (4 + k + s)) * (v + 1) for v in range(3)],
                                        axis=-1) for s in range(2)]) for k in range(4)])
    pred = true + np.random.default_rng(1).normal(0, 0.05, true.shape)
    pred[:, 1, :, 2] = np.nan
    return pred, true


CASES = {
    "learning_curves": lambda: F.learning_curves(_history()),
    "learning_curves_missing": lambda: F.learning_curves(
        [{"epoch": 1, "train_loss": -0.5, "val_loss": None, "lr": None}]),
    "reliability_grid": lambda: F.reliability_grid(_curves()),
    "roc_auc_by_threshold": lambda: F.roc_auc_by_threshold(
        [0, 50, 100], [0.9, 0.93, None], {"climatology": [0.6, 0.62, 0.65]}),
    "irf_examples": lambda: F.irf_examples(*_irfs(), ["monetary", "tfp"],
                                           ["output", "inflation", "rate"], "nk / test", n=3),
    "per_horizon_error": lambda: F.per_horizon_error(
        {"model": list(np.linspace(0.1, 0.3, 41)), "mean": [0.5] * 41}),
    "per_step_metric": lambda: F.per_step_metric(
        {"model": [0.5, 0.6, 0.7, 0.8], "majority": [0.5] * 4}, "accuracy"),
    "confusion_matrix": lambda: F.confusion_matrix([[50, 3, 1], [4, 40, 6], [0, 7, 30]],
                                                   ["cat", "dog", "bird"]),
    "distributions": lambda: F.distributions(
        np.random.default_rng(2).lognormal(3, 0.5, 200),
        np.r_[np.random.default_rng(3).lognormal(3.1, 0.6, 150), np.nan],
        "National peak size", "peak"),
    "side_by_side": lambda: F.side_by_side(
        F.confusion_matrix([[1, 2], [3, 4]], ["a", "b"]), F.per_step_metric({"m": [1, 2]}, "y"),
        ["generated", "real"]),
}


def _decode(png: bytes) -> np.ndarray:
    assert png[:8] == SIGNATURE
    return imread(io.BytesIO(png), format="png")


@pytest.mark.parametrize("name", sorted(CASES))
def test_valid_non_blank_png(name: str) -> None:
    png = CASES[name]()
    image = _decode(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    rgb = image[..., :3].reshape(-1, 3)
    assert rgb.std() > 0.02, "image is (nearly) one colour"
    assert len(np.unique((rgb * 255).astype(np.uint8), axis=0)) > 20
    assert (rgb.mean(axis=1) < 0.5).mean() > 0.001, "no dark ink: text and axes missing"
    assert b"matplotlib version" not in png and b"Software" not in png


@pytest.mark.parametrize("name", sorted(CASES))
def test_identical_bytes_for_identical_input(name: str) -> None:
    assert CASES[name]() == CASES[name]()


def test_bytes_stable_across_processes_and_hash_seeds() -> None:
    code = ("import sys; from trainset.evaluate import figures as F; "
            "sys.stdout.buffer.write(F.per_step_metric({'model': [0.5, 0.7], 'base': [0.5, 0.5]},"
            " 'accuracy'))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env,
                           check=True, timeout=60).stdout
    assert other == F.per_step_metric({"model": [0.5, 0.7], "base": [0.5, 0.5]}, "accuracy")


def test_different_input_gives_different_bytes() -> None:
    a = F.per_horizon_error({"model": [1.0, 2.0, 3.0]})
    b = F.per_horizon_error({"model": [1.0, 2.0, 3.5]})
    assert a != b


@pytest.mark.parametrize("call, match", [
    (lambda: F.learning_curves([]), "non-empty"),
    (lambda: F.reliability_grid({"t=0": {"bin_centres": [0.5]}}), "lacks"),
    (lambda: F.roc_auc_by_threshold([0, 1], [0.5], None), "one value per threshold"),
    (lambda: F.per_horizon_error({"a": [1, 2], "b": [1]}), "same non-zero length"),
    (lambda: F.confusion_matrix([[1, 2]], ["a"]), "square"),
    (lambda: F.confusion_matrix([[1]], ["a", "b"]), "labels"),
    (lambda: F.irf_examples(np.zeros((2, 1, 5, 3)), np.zeros((2, 1, 5, 2)), ["s"], ["v"], "t"),
     "pred and true"),
    (lambda: F.distributions([np.nan], [], "t", "x"), "no finite value"),
    (lambda: F.side_by_side(b"not a png", b"", ["a", "b"]), "PNG bytes"),
])
def test_bad_input_raises_trainset_error(call, match: str) -> None:
    with pytest.raises(TrainsetError, match=match):
        call()


@pytest.mark.parametrize("epochs", [1, 3, 7])
def test_learning_curve_epoch_ticks_are_whole_numbers(epochs) -> None:
    from trainset.evaluate.figures.scores import learning_curves_figure

    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "lr": 1e-3} for e in range(1, epochs + 1)]
    ax = learning_curves_figure(history).axes[0]
    low, high = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if low <= t <= high]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    assert ax.get_xlabel() == "epoch"
