"""Metrics and baselines on small cases with hand-known answers, and against scikit-learn/scipy."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import ks_2samp, wasserstein_distance
from sklearn.calibration import calibration_curve as sk_calibration_curve
from sklearn.metrics import (accuracy_score, brier_score_loss, confusion_matrix, f1_score,
                             log_loss, mean_absolute_error, r2_score, roc_auc_score,
                             root_mean_squared_error)

from trainset.evaluate.metrics import (calibration_curve, classification_metrics,
                                       climatology_baseline, expected_calibration_error,
                                       frame_distribution_metrics, irf_metrics, irf_metrics_by,
                                       irf_train_std, linear_baseline, logistic_baseline,
                                       mean_baseline, monotonicity_violations, national_peaks,
                                       regression_metrics, threshold_metrics)


def assert_plain(obj) -> None:
    """Only builtin JSON types (NaN allowed) anywhere in ``obj``: no numpy scalars or arrays."""
    if isinstance(obj, dict):
        assert all(type(k) is str for k in obj), obj.keys()
        for v in obj.values():
            assert_plain(v)
    elif isinstance(obj, list):
        for v in obj:
            assert_plain(v)
    else:
        assert obj is None or type(obj) in (int, float, str, bool), (type(obj), obj)
    json.dumps(obj)


# ----------------------------------------------------------------------------- regression

def test_regression_by_hand():
    pred = np.array([[1.0, 2.0], [3.0, 4.0]])
    true = np.array([[0.0, 2.0], [3.0, 6.0]])  # errors [[1, 0], [0, -2]]
    r = regression_metrics(pred, true, names=["a", "b"])
    assert r["rmse"] == pytest.approx(math.sqrt(5 / 4))
    assert r["mae"] == pytest.approx(3 / 4)
    assert r["count"] == 4
    a, b = r["per_variable"]["a"], r["per_variable"]["b"]
    assert (a["rmse"], a["mae"]) == pytest.approx((math.sqrt(0.5), 0.5))
    assert (b["rmse"], b["mae"]) == pytest.approx((math.sqrt(2.0), 1.0))
    # R^2: a: true (0, 3), SST 4.5, SSE 1; b: true (2, 6), SST 8, SSE 4
    assert a["r2"] == pytest.approx(1 - 1 / 4.5)
    assert b["r2"] == pytest.approx(0.5)
    assert r["r2"] == pytest.approx(((1 - 1 / 4.5) + 0.5) / 2)
    assert "per_step" not in r
    assert_plain(r)


def test_regression_matches_sklearn():
    rng = np.random.default_rng(0)
    true = rng.normal(size=(40, 3)) * [1, 10, 100]
    pred = true + rng.normal(size=(40, 3))
    r = regression_metrics(pred, true)
    assert r["r2"] == pytest.approx(r2_score(true, pred))
    assert r["rmse"] == pytest.approx(root_mean_squared_error(true.ravel(), pred.ravel()))
    assert r["mae"] == pytest.approx(mean_absolute_error(true, pred))
    r2s = r2_score(true, pred, multioutput="raw_values")
    rmses = root_mean_squared_error(true, pred, multioutput="raw_values")
    for i in range(3):
        assert r["per_variable"][str(i)]["r2"] == pytest.approx(r2s[i])
        assert r["per_variable"][str(i)]["rmse"] == pytest.approx(rmses[i])


def test_regression_seq2seq_mask_and_per_step():
    n, t, k = 3, 4, 2
    true = np.random.default_rng(0).normal(size=(n, t, k))
    pred = true + np.arange(1, t + 1.0)[None, :, None]  # error s+1 at step s
    mask = np.ones((n, t), bool)
    mask[:, 3] = False  # last step is padding everywhere
    pred[:, 3] = 1e6
    r = regression_metrics(pred, true, mask=mask)
    assert r["per_step"]["rmse"][:3] == pytest.approx([1.0, 2.0, 3.0])
    assert math.isnan(r["per_step"]["rmse"][3])
    assert r["per_step"]["count"] == [6, 6, 6, 0]
    assert r["rmse"] == pytest.approx(math.sqrt((1 + 4 + 9) / 3))
    assert r["count"] == n * 3 * k
    # the mask selects exactly the unpadded steps
    flat = regression_metrics(pred[:, :3].reshape(-1, k), true[:, :3].reshape(-1, k))
    assert flat["per_variable"] == r["per_variable"]


def test_regression_variable_axis_and_1d():
    rng = np.random.default_rng(1)
    true, pred = rng.normal(size=(5, 6, 2)), rng.normal(size=(5, 6, 2))
    moved = regression_metrics(pred.transpose(0, 2, 1), true.transpose(0, 2, 1), variable_axis=1)
    last = regression_metrics(pred, true)
    for name in ("0", "1"):
        assert moved["per_variable"][name] == pytest.approx(last["per_variable"][name])
    assert moved["per_step"] == last["per_step"]  # [N, K, T]: time is axis 2
    one = regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 5.0])
    assert one["rmse"] == pytest.approx(math.sqrt(4 / 3))
    assert list(one["per_variable"]) == ["0"]
    with pytest.raises(ValueError, match="variable_axis"):
        regression_metrics(pred, true, variable_axis=0)


def test_regression_r2_undefined_for_constant_target():
    r = regression_metrics(np.array([[1.0], [2.0]]), np.array([[1.0], [1.0]]))
    assert math.isnan(r["per_variable"]["0"]["r2"]) and math.isnan(r["r2"])


# ------------------------------------------------------------------------- classification

def test_classification_by_hand_and_sklearn():
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    labels = np.array([0, 1, 1, 2])  # predictions 0, 1, 2, 0 -> 2 of 4 right
    r = classification_metrics(logits, labels, num_classes=3)
    assert r["accuracy"] == 0.5
    assert r["count"] == 4
    assert r["class_counts"] == {"true": [1, 2, 1], "pred": [2, 1, 1]}
    assert r["confusion_matrix"] == [[1, 0, 0], [0, 1, 1], [1, 0, 0]]
    pred = logits.argmax(1)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert r["accuracy"] == accuracy_score(labels, pred)
    assert r["macro_f1"] == pytest.approx(f1_score(labels, pred, average="macro"))
    assert r["log_loss"] == pytest.approx(log_loss(labels, probs, labels=[0, 1, 2]))
    assert r["log_loss"] == pytest.approx(-np.mean(np.log(probs[np.arange(4), labels])))
    assert_plain(r)
    same = classification_metrics(probs.astype(np.float32), labels, 3, is_logits=False)
    assert same["log_loss"] == pytest.approx(r["log_loss"], rel=1e-6)
    with pytest.raises(ValueError, match="is_logits"):
        classification_metrics(logits, labels, 3, is_logits=False)


def test_classification_log_loss_covers_absent_classes():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(10, 4))
    labels = np.array([0, 1] * 5)  # classes 2 and 3 never occur
    r = classification_metrics(logits, labels, 4)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert r["log_loss"] == pytest.approx(log_loss(labels, probs, labels=range(4)))
    assert len(r["confusion_matrix"]) == 4 and len(r["per_class_f1"]) == 4


def test_classification_seq2seq_mask_and_per_step():
    rng = np.random.default_rng(3)
    n, t, c = 4, 3, 3
    logits = rng.normal(size=(n, t, c))
    labels = logits.argmax(-1).copy()
    labels[:, 1] = (labels[:, 1] + 1) % c  # step 1 always wrong
    mask = np.ones((n, t), bool)
    mask[0, 2] = mask[1, 2] = False
    labels[~mask] = -100  # padding is fine where masked
    r = classification_metrics(logits, labels, c, mask=mask)
    assert r["per_step"]["accuracy"] == [1.0, 0.0, 1.0]
    assert r["per_step"]["count"] == [4, 4, 2]
    assert r["count"] == 10
    assert r["accuracy"] == pytest.approx(6 / 10)
    flat = classification_metrics(logits[mask], labels[mask], c)
    assert flat["log_loss"] == pytest.approx(r["log_loss"])
    assert flat["macro_f1"] == pytest.approx(r["macro_f1"])
    with pytest.raises(ValueError, match="mask padding"):
        classification_metrics(logits, labels, c)


# ----------------------------------------------------------------------------- thresholds

def test_calibration_curve_matches_sklearn_and_hand_ece():
    rng = np.random.default_rng(4)
    p = np.concatenate([rng.uniform(size=300), [0.0, 0.1, 0.3, 0.5, 1.0]])  # edges included
    y = (rng.uniform(size=p.size) < p).astype(float)
    curve = calibration_curve(p, y, bins=10)
    prob_true, prob_pred = sk_calibration_curve(y, p, n_bins=10, strategy="uniform")
    counts = np.array(curve["counts"])
    assert counts.sum() == p.size
    np.testing.assert_allclose(np.array(curve["observed"])[counts > 0], prob_true)
    np.testing.assert_allclose(np.array(curve["mean_predicted"])[counts > 0], prob_pred)
    assert curve["bin_centres"] == pytest.approx([0.05 + 0.1 * i for i in range(10)])
    assert curve["edges"] == pytest.approx([0.1 * i for i in range(11)])
    # by hand: bin 0 holds p=.05 with outcomes (0, 1): gap .45; bin 9 holds p=.95 with (1, 1): .05
    ece = expected_calibration_error([0.05, 0.05, 0.95, 0.95], [0, 1, 1, 1])
    assert ece == pytest.approx(0.5 * 0.45 + 0.5 * 0.05)
    empty = calibration_curve([0.05], [1])
    assert math.isnan(empty["mean_predicted"][5]) and empty["counts"][0] == 1


def _threshold_data(n=200, k=4, seed=5):
    rng = np.random.default_rng(seed)
    score = rng.normal(size=n)
    probs = 1 / (1 + np.exp(-(score[:, None] - np.arange(k)[None, :] * 0.7)))
    targets = (rng.uniform(size=(n, k)) < probs).astype(float)
    return probs, targets


def test_threshold_metrics_match_sklearn():
    probs, targets = _threshold_data()
    r = threshold_metrics(probs, targets, thresholds=[0, 10, 20, 30])
    per = r["per_threshold"]
    assert per["threshold"] == [0.0, 10.0, 20.0, 30.0]
    for k in range(4):
        p, y = probs[:, k], targets[:, k]
        assert per["auc"][k] == pytest.approx(roc_auc_score(y, p))
        assert per["brier"][k] == pytest.approx(brier_score_loss(y, p))
        assert per["log_loss"][k] == pytest.approx(log_loss(y, p, labels=[0, 1]))
        assert per["accuracy"][k] == pytest.approx(accuracy_score(y, p >= 0.5))
        assert per["base_rate"][k] == pytest.approx(y.mean())
        assert per["ece"][k] == pytest.approx(expected_calibration_error(p, y))
        np.testing.assert_equal(per["calibration"][k], calibration_curve(p, y))
    pooled = r["pooled"]
    assert pooled["auc"] == pytest.approx(roc_auc_score(targets.ravel(), probs.ravel()))
    assert pooled["brier"] == pytest.approx(brier_score_loss(targets.ravel(), probs.ravel()))
    assert sum(pooled["histogram"]["counts"]) == probs.size
    assert r["monotonicity"]["violations"] == 0
    assert_plain(r)


def test_threshold_single_class_gives_nan_auc():
    probs, targets = _threshold_data()
    targets[:, 3] = 0.0
    per = threshold_metrics(probs, targets, [0, 10, 20, 30])["per_threshold"]
    assert math.isnan(per["auc"][3]) and not math.isnan(per["auc"][2])
    assert per["brier"][3] == pytest.approx(np.mean(probs[:, 3] ** 2))
    assert per["positives"][3] == 0


def test_auc_and_roc_points_are_sklearns_bit_for_bit():
    """The ROC curve and AUC are computed in numpy (scikit-learn's input checks cost more than the
    sort): they must equal ``roc_auc_score`` and ``roc_curve`` exactly, not approximately, so the
    reports' numbers and figures do not move; ties (rounded and float32 scores) included."""
    from sklearn.metrics import roc_curve

    from trainset.evaluate.threshold_metrics import _auc, roc_points

    rng = np.random.default_rng(11)
    for trial in range(300):
        n = int(rng.integers(2, 2000))
        y = (rng.random(n) < rng.uniform(0.02, 0.98)).astype(np.float64)
        y[:2] = [0.0, 1.0]  # both classes
        p = rng.random(n)
        if trial % 3 == 1:
            p = np.round(p, int(rng.integers(1, 3)))  # many tied scores
        elif trial % 3 == 2:
            p = np.clip(0.3 * y + 0.7 * p, 0, 1).astype(np.float32).astype(np.float64)
        assert _auc(y, p) == roc_auc_score(y, p), trial
        fpr, tpr, _ = roc_curve(y, p, drop_intermediate=True)
        assert roc_points(y, p) == (fpr.tolist(), tpr.tolist()), trial
    assert roc_points(np.zeros(5), rng.random(5)) is None
    with pytest.raises(ValueError, match="0 or 1"):
        roc_points(np.array([0.0, 2.0]), np.array([0.1, 0.2]))


def test_monotonicity_by_hand():
    probs = np.array([[0.9, 0.8, 0.85],   # pair (1, 2) rises: 1 violation
                      [0.5, 0.5, 0.5],    # equal is allowed
                      [0.2, 0.3, 0.4],    # both pairs rise: 2
                      [0.5, 0.5 + 1e-12, 0.1]])  # within the 1e-9 tolerance
    m = monotonicity_violations(probs)
    assert m["violations"] == 3 and m["pairs"] == 8
    assert m["rate"] == pytest.approx(3 / 8)
    assert m["samples_with_violation"] == 2 and m["sample_rate"] == 0.5
    assert m["per_pair_rate"] == pytest.approx([0.25, 0.5])
    r = threshold_metrics(probs, np.ones_like(probs), [0, 10, 20])
    assert r["monotonicity"] == m


def test_threshold_per_group():
    probs, targets = _threshold_data(n=120)
    sites = np.repeat([7, 8, 9], 40)
    targets[sites == 9] = 1.0  # site 9 has one class only: skipped
    r = threshold_metrics(probs, targets, [0, 10, 20, 30], groups=sites)
    assert set(r["per_group"]) == {"7", "8"}
    for site in (7, 8):
        rows = sites == site
        g = r["per_group"][str(site)]
        assert g["auc"] == pytest.approx(roc_auc_score(targets[rows].ravel(), probs[rows].ravel()))
        assert g["brier"] == pytest.approx(np.mean((probs[rows] - targets[rows]) ** 2))
        assert g["count"] == 160
    s = r["group_summary"]
    assert s["n_groups"] == 2 and s["n_skipped"] == 1
    aucs = [r["per_group"]["7"]["auc"], r["per_group"]["8"]["auc"]]
    assert s["auc"]["median"] == pytest.approx(np.median(aucs))
    assert s["auc"]["p10"] == pytest.approx(np.quantile(aucs, 0.1))
    assert s["auc"]["p90"] == pytest.approx(np.quantile(aucs, 0.9))
    assert_plain(r)


def test_threshold_input_checks():
    probs, targets = _threshold_data(n=10, k=3)
    with pytest.raises(ValueError, match="increasing"):
        threshold_metrics(probs, targets, [0, 20, 10])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        threshold_metrics(probs * 3, targets, [0, 10, 20])
    with pytest.raises(ValueError, match="0 or 1"):
        threshold_metrics(probs, targets * 2, [0, 10, 20])


# ----------------------------------------------------------------------------------- IRFs

def _irfs(n=6, s=2, h=5, v=3, seed=6):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, s, h + 1, v)), rng.normal(size=(n, s, h + 1, v))


def test_irf_constant_offsets_by_hand():
    _, true = _irfs()
    offsets = np.array([1.0, -2.0, 0.5])
    pred = true + offsets
    std = np.array([2.0, 4.0, 0.25])
    r = irf_metrics(pred, true, train_std=std, variable_names=["output", "inflation", "rate"])
    for name, c, sd in zip(["output", "inflation", "rate"], offsets, std):
        v = r["per_variable"][name]
        assert v["rmse"] == pytest.approx(abs(c)) and v["mae"] == pytest.approx(abs(c))
        assert v["nrmse"] == pytest.approx(abs(c) / sd)
        assert v["train_std"] == sd
        assert v["iae"] == pytest.approx(6 * abs(c))  # H+1 = 6 horizons
        assert v["rmse_per_horizon"] == pytest.approx([abs(c)] * 6)
    assert r["nrmse"] == pytest.approx(np.mean([0.5, 0.5, 2.0]))
    assert r["per_horizon"]["rmse"] == pytest.approx([math.sqrt(np.mean(offsets ** 2))] * 6)
    assert r["rmse"] == pytest.approx(math.sqrt(np.mean(offsets ** 2)))
    assert r["iae"] == pytest.approx(6 * np.mean(np.abs(offsets)))
    assert r["n_curves"] == 12
    assert_plain(r)
    assert math.isnan(irf_metrics(pred, true)["nrmse"])  # no train std: undefined


def test_irf_shock_mask_excludes_padding_exactly():
    pred, true = _irfs(n=4, s=1)
    padded_p = np.concatenate([pred, np.full_like(pred, 1e9)], axis=1)  # shock 1 is padding
    padded_t = np.concatenate([true, np.full_like(true, -1e9)], axis=1)
    mask = np.array([[True, False]] * 4)
    std = irf_train_std(true)
    a = irf_metrics(pred, true, train_std=std)
    b = irf_metrics(padded_p, padded_t, shock_mask=mask, train_std=std)
    assert a == b
    np.testing.assert_array_equal(irf_train_std(padded_t, mask), std)
    np.testing.assert_allclose(std, true.reshape(-1, 3).std(axis=0))
    c = irf_metrics(pred[:, 0], true[:, 0], train_std=std)  # [N, H+1, V]: one shock
    assert c == a


def test_irf_sign_agreement_by_hand():
    true = np.zeros((2, 1, 3, 2))
    pred = np.zeros((2, 1, 3, 2))
    true[:, 0, 0] = [[1.0, -1.0], [0.0, 2.0]]   # (1, v0) is zero: not eligible
    pred[:, 0, 0] = [[0.5, 0.3], [5.0, 0.0]]    # agree, disagree, -, zero disagrees
    r = irf_metrics(pred, true)
    assert r["sign_count"] == 3
    assert r["sign_agreement_impact"] == pytest.approx(1 / 3)
    assert r["per_variable"]["0"]["sign_agreement_impact"] == 1.0
    assert r["per_variable"]["1"]["sign_agreement_impact"] == 0.0
    assert r["per_variable"]["1"]["sign_count"] == 2
    masked = irf_metrics(pred, true, shock_mask=np.array([[True], [False]]))
    assert masked["sign_count"] == 2 and masked["sign_agreement_impact"] == 0.5


def test_irf_metrics_by_world_and_split():
    pred, true = _irfs(n=6)
    pred[3:] = pred[3:] * 1000  # a world on another scale
    true[3:] = true[3:] * 1000
    groups = [("nk", "val"), ("nk", "val"), ("nk", "test"), ("var", "val"), ("var", "val"),
              ("var", "test")]
    stds = {"nk": np.ones(3), "var": np.full(3, 1000.0)}
    r = irf_metrics_by(groups, pred, true, train_std=stds)
    assert list(r) == ["nk/val", "nk/test", "var/val", "var/test"]
    assert r["var/val"] == irf_metrics(pred[3:5], true[3:5], train_std=stds["var"])
    var_val = r["var/val"]["per_variable"]
    for v in var_val.values():
        assert v["nrmse"] == pytest.approx(v["rmse"] / 1000)
    assert r["var/val"]["nrmse"] == pytest.approx(np.mean([v["rmse"] / 1000 for v in var_val.values()]))
    by_world = irf_metrics_by(["nk"] * 3 + ["var"] * 3, pred, true, train_std=stds)
    assert by_world["nk"] == irf_metrics(pred[:3], true[:3], train_std=np.ones(3))
    with pytest.raises(ValueError, match="no entry"):
        irf_metrics_by(["lss"] * 6, pred, true, train_std=stds)


# ------------------------------------------------------------------------------ baselines

def test_mean_baseline_reproduces_train_mean():
    rng = np.random.default_rng(7)
    train = rng.normal(size=(20, 2, 4, 3))
    b = mean_baseline(train)
    out = b(5)
    assert out.shape == (5, 2, 4, 3)
    np.testing.assert_allclose(out[3], train.mean(axis=0))
    assert b.predict(np.zeros((7, 9))).shape == (7, 2, 4, 3)
    mask = np.ones((20, 2), bool)
    mask[:, 1] = False
    mask[0, 1] = True
    masked = mean_baseline(train, mask=mask)
    np.testing.assert_allclose(masked.mean[1], train[0, 1])  # only the one counted curve
    np.testing.assert_allclose(masked.mean[0], train[:, 0].mean(axis=0))


def test_linear_baseline_recovers_linear_map():
    rng = np.random.default_rng(8)
    theta = rng.normal(size=(200, 3)) * [1.0, 100.0, 0.01]
    w = rng.normal(size=(3, 2 * 4 * 3))
    irfs = (theta / [1.0, 100.0, 0.01] @ w + 0.5).reshape(200, 2, 4, 3)
    b = linear_baseline(theta, irfs, alpha=1e-8)
    test_theta = rng.normal(size=(10, 3)) * [1.0, 100.0, 0.01]
    want = (test_theta / [1.0, 100.0, 0.01] @ w + 0.5).reshape(10, 2, 4, 3)
    np.testing.assert_allclose(b.predict(test_theta), want, atol=1e-6)


def test_climatology_baseline_class_frequencies_and_base_rates():
    labels = np.array([0, 0, 1, 2, 2, 2])  # integer labels: classification
    clim = climatology_baseline(labels, num_classes=4)
    probs = clim.predict_proba(3)
    assert probs.shape == (3, 4)
    np.testing.assert_allclose(probs[1], [2 / 6, 1 / 6, 3 / 6, 0.0])
    inferred = climatology_baseline(labels).predict_proba(np.zeros((2, 5)))  # C = max + 1
    np.testing.assert_allclose(inferred, [[2 / 6, 1 / 6, 3 / 6]] * 2)
    seq = climatology_baseline(np.array([[0, 1], [1, -1]]), num_classes=2,
                               mask=np.array([[1, 1], [1, 0]], bool))
    np.testing.assert_allclose(seq.predict_proba(np.zeros((5, 2, 7)))[4, 1], [1 / 3, 2 / 3])
    assert seq.predict_proba(5).shape == (5, 2, 2)
    targets = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 0, 0]], np.float32)  # thresholds
    rates = climatology_baseline(targets).predict_proba(2)
    np.testing.assert_allclose(rates, [[0.75, 0.5, 0.25]] * 2)


def test_logistic_baseline_classification():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(300, 2))
    y = np.where(x[:, 0] > 0.5, 2, np.where(x[:, 1] > 0, 1, 0))
    b = logistic_baseline(x, y, num_classes=4)
    probs = b.predict_proba(x)
    assert probs.shape == (300, 4)
    np.testing.assert_allclose(probs.sum(1), 1.0)
    assert np.all(probs[:, 3] == 0)  # class 3 never seen in training
    np.testing.assert_allclose(logistic_baseline(x, y).predict_proba(x), probs[:, :3])
    assert classification_metrics(probs, y, 4, is_logits=False)["accuracy"] > 0.9
    # seq2seq: one row per step, padded steps dropped by the mask
    xs = rng.normal(size=(50, 4, 2))
    ys = (xs[..., 0] > 0).astype(int)
    ys[:, 3] = -1
    mask = np.ones((50, 4), bool)
    mask[:, 3] = False
    seq = logistic_baseline(xs, ys, num_classes=2, mask=mask)
    assert seq.predict_proba(xs[:5]).shape == (5, 4, 2)


def test_logistic_baseline_thresholds_and_subsampling():
    rng = np.random.default_rng(10)
    x = rng.normal(size=(400, 3))
    targets = np.stack([(x[:, 0] > -1), (x[:, 0] > 0), np.zeros(400, bool)], 1).astype(float)
    b = logistic_baseline(x, targets)
    probs = b.predict_proba(x[:20])
    assert probs.shape == (20, 3)
    np.testing.assert_allclose(probs[:, 2], 0.0)  # one class: the training base rate
    assert b.models[2] is None
    small = logistic_baseline(x, targets, max_rows=100, seed=3)
    again = logistic_baseline(x, targets, max_rows=100, seed=3)
    np.testing.assert_array_equal(small.predict_proba(x), again.predict_proba(x))
    idx = np.sort(np.random.default_rng(3).choice(400, size=100, replace=False))
    ref = logistic_baseline(x[idx], targets[idx], max_rows=None)
    np.testing.assert_allclose(small.predict_proba(x), ref.predict_proba(x))


# --------------------------------------------------------------------------------- frames

def _frames(peak_weeks, amplitudes, w=53, p=51, seed=11):
    rng = np.random.default_rng(seed)
    weeks = np.arange(1, w + 1)
    shape = rng.uniform(0.5, 1.5, size=p)
    curves = [a * np.exp(-0.5 * ((weeks - pw) / 3.0) ** 2) for pw, a in zip(peak_weeks, amplitudes)]
    return np.stack(curves)[:, :, None] * shape[None, None, :]


def test_national_peaks_known_weeks():
    frames = _frames([10, 20, 35], [1.0, 2.0, 3.0])
    size, week = national_peaks(frames)
    assert week.tolist() == [10, 20, 35]
    np.testing.assert_allclose(size, frames.sum(axis=2).max(axis=1))
    mask = np.ones(51, bool)
    mask[0] = False
    spiked = frames.copy()
    spiked[:, 2, 0] = 1e6  # a masked-out place cannot move the national peak
    assert national_peaks(spiked, place_mask=mask)[1].tolist() == [10, 20, 35]
    assert national_peaks(spiked)[1].tolist() == [3, 3, 3]


def test_frame_distribution_metrics():
    gen = _frames([20] * 4 + [22] * 4, [1.0] * 8)
    held = _frames([10] * 5, [1.0] * 5)[:, None]  # [N, 1, W, P] as loaders yield
    r = frame_distribution_metrics(gen, held)
    assert r["n_frames"] == {"generated": 8, "held_out": 5}
    assert r["peak_week"]["generated"]["mean"] == 21.0
    assert r["peak_week"]["held_out"]["mean"] == 10.0
    assert r["peak_week"]["ks_statistic"] == 1.0
    assert r["peak_week"]["wasserstein"] == pytest.approx(11.0)
    assert r["peak_size"]["ks_statistic"] == pytest.approx(0.0)  # same amplitudes
    g_nat, h_nat = gen.sum(2), held[:, 0].sum(2)
    assert r["national_wasserstein"] == pytest.approx(wasserstein_distance(g_nat.ravel(),
                                                                           h_nat.ravel()))
    assert r["per_place"]["generated"]["p90"] == pytest.approx(
        np.quantile(gen.reshape(-1, 51), 0.9, axis=0).tolist())
    assert r["per_place"]["held_out"]["mean"] == pytest.approx(held[:, 0].mean(axis=(0, 1)).tolist())
    assert r["national_by_week"]["held_out"]["median"] == pytest.approx(np.median(h_nat, 0).tolist())
    assert_plain(r)


def test_frame_metrics_against_scipy():
    rng = np.random.default_rng(12)
    gen = rng.gamma(2.0, size=(30, 53, 5))
    held = rng.gamma(2.5, size=(20, 53, 5))
    r = frame_distribution_metrics(gen, held)
    gs, gw = national_peaks(gen)
    hs, hw = national_peaks(held)
    ks = ks_2samp(gs, hs)
    assert r["peak_size"]["ks_statistic"] == pytest.approx(ks.statistic)
    assert r["peak_size"]["ks_pvalue"] == pytest.approx(ks.pvalue)
    assert r["peak_week"]["ks_statistic"] == pytest.approx(ks_2samp(gw, hw).statistic)
    assert r["peak_size"]["generated"]["std"] == pytest.approx(gs.std())
    with pytest.raises(ValueError, match="weeks x places"):
        frame_distribution_metrics(gen, held[:, :, :4])


# ---------------------------------------------------------------------------- edge cases

def test_nothing_counted_gives_nan_not_warnings():
    rng = np.random.default_rng(13)
    pred, true = _irfs(n=2)
    r = irf_metrics(pred, true, shock_mask=np.zeros((2, 2), bool), train_std=np.ones(3))
    assert r["n_curves"] == 0 and r["sign_count"] == 0
    assert all(math.isnan(r[k]) for k in ("rmse", "mae", "nrmse", "iae", "sign_agreement_impact"))
    assert np.isnan(irf_train_std(true, np.zeros((2, 2), bool))).all()
    c = classification_metrics(rng.normal(size=(3, 4, 2)), np.zeros((3, 4), int), 2,
                               mask=np.zeros((3, 4), bool))
    assert c["count"] == 0 and math.isnan(c["accuracy"]) and math.isnan(c["log_loss"])
    assert c["confusion_matrix"] == [[0, 0], [0, 0]]
    assert_plain(c)


def test_tensors_are_accepted():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    true = torch.randn(5, 3)
    pred = (true + 1.0).requires_grad_()
    r = regression_metrics(pred, true)
    assert r["rmse"] == pytest.approx(1.0) and r["mae"] == pytest.approx(1.0)
