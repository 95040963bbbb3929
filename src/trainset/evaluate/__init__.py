"""Evaluation: metrics and training-split baselines as plain, JSON-able dicts.

Everything here is pure numpy / scikit-learn / scipy: arrays in, dicts of floats, ints and
lists out, no torch, no file I/O and no plotting, so the same functions score a checkpoint, a
baseline or a notebook experiment. ``float("nan")`` marks a value that is undefined (an empty
bin, a group with one class); turning NaN into JSON ``null`` is the caller's job.

Modules
-------
:mod:`~trainset.evaluate.metrics`
    Regression and classification metrics; it also re-exports every public function below, so
    ``from trainset.evaluate.metrics import ...`` is the one import callers need.
:mod:`~trainset.evaluate.threshold_metrics`
    Ordered threshold targets (flights): ROC-AUC, Brier, calibration, per-site, monotonicity.
:mod:`~trainset.evaluate.irf_metrics`
    Impulse responses (macro worlds): RMSE/NRMSE per variable and horizon, integrated absolute
    error, sign at impact, per world and split.
:mod:`~trainset.evaluate.frame_metrics`
    Generated flu frames against held-out frames: per-place and national-peak distributions.
:mod:`~trainset.evaluate.baselines`
    Mean, ridge, climatology and logistic baselines, fitted on the training split only.
"""
