"""Metrics for impulse responses of the macro worlds (seed 003).

Predicted and true IRFs are [N, S, H+1, V] (sample, shock, horizon 0..H, variable); batches of
mixed worlds are padded on the shock axis, and ``shock_mask`` [N, S] (True = real shock)
excludes the padding exactly: padded curves add nothing to any sum or count.

Worlds differ in scale by orders of magnitude (anchors section 4), so a raw RMSE pooled over
worlds is dominated by the largest one. The comparable number is NRMSE: RMSE per variable
divided by the spread (std) of that variable's *training-split* true IRFs, which the caller
computes with :func:`irf_train_std` on the training split of the same world and passes in.
Evaluate per world and split with :func:`irf_metrics_by` and per-world ``train_std``.

Beyond the squared error, a user of an emulator cares about the cumulative effect (integrated
absolute error, the sum over horizons of |pred - true|) and about the direction of the impact
response (sign agreement at h = 0, the old code's placeholder IRFs were exactly zero there,
hence the tolerance that drops near-zero true responses).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from trainset.evaluate._common import (as_array, check_same_shape, expand_mask, floats,
                                       group_indices, group_label, names_for, safe_div)

logger = logging.getLogger(__name__)

SIGN_TOL = 1e-8


def _prepare(pred: Any, true: Any, shock_mask: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float64 [N,S,H+1,V] arrays ([N,H+1,V] gets S=1) and the [N,S] boolean shock mask."""
    p = as_array(pred, np.float64)
    t = as_array(true, np.float64) if true is not None else None
    if p.ndim == 3:
        p = p[:, None]
        t = t[:, None] if t is not None else None
        shock_mask = None if shock_mask is None else as_array(shock_mask).reshape(-1, 1)
    if p.ndim != 4:
        raise ValueError(f"IRFs must be [N, S, H+1, V] or [N, H+1, V], got shape {p.shape}")
    if t is not None:
        check_same_shape(p, t)
    ms = expand_mask(shock_mask, p.shape[:2])
    return p, t, ms


def irf_train_std(train_irfs: Any, shock_mask: Any = None) -> np.ndarray:
    """Std (ddof=0) per variable of training IRFs over counted (sample, shock, horizon).

    Pass the *training* split of one world; the result is the ``train_std`` of
    :func:`irf_metrics`. NaN for a variable with nothing counted.
    """
    irfs, _, ms = _prepare(train_irfs, None, shock_mask)
    curves = irfs[ms]
    return curves.std(axis=(0, 1)) if len(curves) else np.full(irfs.shape[3], np.nan)


def irf_metrics(pred: Any, true: Any, shock_mask: Any = None, train_std: Any = None,
                variable_names: Sequence[str] | None = None,
                sign_tol: float = SIGN_TOL) -> dict[str, Any]:
    """RMSE, MAE, NRMSE, integrated absolute error and impact sign agreement of IRFs.

    Parameters
    ----------
    pred, true
        [N, S, H+1, V] (or [N, H+1, V] for a single shock).
    shock_mask
        [N, S] boolean, True = real shock; padded shocks are excluded from every number.
    train_std
        [V] std of the training split's true IRFs per variable (:func:`irf_train_std`);
        without it (or where it is not positive and finite) NRMSE is NaN.
    variable_names
        Keys of ``per_variable`` (default ``"0"``, ``"1"``, ...), e.g. output, inflation, rate.
    sign_tol
        Impact responses with ``|true[h=0]| <= sign_tol`` have no meaningful sign and are left
        out of the sign agreement.

    Returns
    -------
    dict
        ``rmse``, ``mae`` over all counted elements; ``nrmse`` (mean over variables of the
        per-variable NRMSE, NaN if any is NaN); ``iae`` (mean over variables);
        ``sign_agreement_impact`` (fraction of eligible (sample, shock, variable) with
        sign(pred[h=0]) == sign(true[h=0]); a zero prediction disagrees) and ``sign_count``
        (eligible count); ``n_curves`` (counted (sample, shock) pairs); ``per_horizon``
        ``{rmse: [H+1], mae: [H+1]}``; ``per_variable`` ``{name: {rmse, mae, nrmse,
        train_std, iae, sign_agreement_impact, sign_count, rmse_per_horizon: [H+1]}}``.
        ``iae`` of a variable is the sum over horizons of |pred - true|, averaged over the
        counted (sample, shock) pairs. Nothing counted gives NaN.
    """
    p, t, ms = _prepare(pred, true, shock_mask)
    n_var = p.shape[3]
    keys = names_for(variable_names, n_var)
    # Select the counted curves once: padded shocks never enter a sum, and the result is the
    # same, bit for bit, as for the unpadded array.
    p, t = p[ms], t[ms]  # [M, H+1, V]
    if train_std is None:
        std = np.full(n_var, np.nan)
    else:
        std = as_array(train_std, np.float64).reshape(-1)
        if std.shape != (n_var,):
            raise ValueError(f"train_std has {std.size} entries for {n_var} variables")
    err = p - t
    sq, ab = err ** 2, np.abs(err)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # M = 0: every mean is NaN
        rmse_v = np.sqrt(sq.mean(axis=(0, 1)))
        mae_v = ab.mean(axis=(0, 1))
        rmse_hv = np.sqrt(sq.mean(axis=0))  # [H+1, V]
        iae_v = ab.sum(axis=1).mean(axis=0)  # [V]
        rmse, mae = np.sqrt(sq.mean()), ab.mean()
        rmse_h, mae_h = np.sqrt(sq.mean(axis=(0, 2))), ab.mean(axis=(0, 2))
        nrmse_v = np.where(np.isfinite(std) & (std > 0), rmse_v / np.where(std > 0, std, 1.0),
                           np.nan)

    eligible = np.abs(t[:, 0, :]) > sign_tol  # [M, V]
    agree = eligible & (np.sign(p[:, 0, :]) == np.sign(t[:, 0, :]))
    sign_n = eligible.sum(axis=0)
    sign_v = [safe_div(a, n) for a, n in zip(agree.sum(axis=0), sign_n)]

    per_variable = {k: {"rmse": float(rmse_v[i]), "mae": float(mae_v[i]),
                        "nrmse": float(nrmse_v[i]), "train_std": float(std[i]),
                        "iae": float(iae_v[i]), "sign_agreement_impact": sign_v[i],
                        "sign_count": int(sign_n[i]), "rmse_per_horizon": floats(rmse_hv[:, i])}
                    for i, k in enumerate(keys)}
    return {"rmse": float(rmse), "mae": float(mae),
            "nrmse": float(np.mean(nrmse_v)), "iae": float(np.mean(iae_v)),
            "sign_agreement_impact": safe_div(agree.sum(), eligible.sum()),
            "sign_count": int(eligible.sum()), "n_curves": int(len(p)),
            "per_horizon": {"rmse": floats(rmse_h), "mae": floats(mae_h)},
            "per_variable": per_variable}


def _std_for(train_std: Any, label: Any) -> Any:
    """``train_std`` of a group: a shared array, or a mapping by label (tuple labels such as
    (world, split) fall back to their first element, the world)."""
    if train_std is None or not isinstance(train_std, Mapping):
        return train_std
    if label in train_std:
        return train_std[label]
    if isinstance(label, tuple) and label and label[0] in train_std:
        return train_std[label[0]]
    raise ValueError(f"train_std has no entry for group {label!r} (keys: {sorted(map(str, train_std))}); "
                     "pass the training std of every world evaluated")


def irf_metrics_by(groups: Any, pred: Any, true: Any, shock_mask: Any = None,
                   train_std: Any = None, variable_names: Sequence[str] | None = None,
                   sign_tol: float = SIGN_TOL) -> dict[str, dict[str, Any]]:
    """:func:`irf_metrics` per group label, e.g. per world or per (world, split).

    Parameters
    ----------
    groups
        [N] labels: strings (world), or tuples such as (world, split).
    train_std
        None, one [V] array for all groups, or a mapping ``{label: [V]}``; for tuple labels a
        mapping keyed by the first element (``{world: std}``) is enough. Worlds differ in scale,
        so pass each world's own training std.
    pred, true, shock_mask, variable_names, sign_tol
        As in :func:`irf_metrics`.

    Returns
    -------
    dict
        ``{group key: metrics}``; tuple labels become ``"world/split"`` keys.
    """
    p, t, ms = _prepare(pred, true, shock_mask)
    return {group_label(label): irf_metrics(p[idx], t[idx], ms[idx], _std_for(train_std, label),
                                            variable_names, sign_tol)
            for label, idx in group_indices(groups, p.shape[0]).items()}
