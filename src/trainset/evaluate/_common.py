"""Small array helpers shared by the metric modules (private)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

NAN = float("nan")


def as_array(x: Any, dtype: Any = None) -> np.ndarray:
    """``x`` as a numpy array; tensors are detached and moved to the CPU without importing torch."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def expand_mask(mask: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Boolean mask broadcast to ``shape`` (True = counts); ``None`` counts everything.

    A mask whose shape is a prefix of ``shape`` (``shock_mask`` [N,S] for IRFs [N,S,H+1,V],
    a [N,T] step mask for [N,T,K] predictions) gets trailing singleton axes first, so callers
    need not reshape it; otherwise numpy broadcasting rules apply.
    """
    if mask is None:
        return np.ones(shape, dtype=bool)
    m = as_array(mask).astype(bool)
    if m.ndim < len(shape) and m.shape == tuple(shape[: m.ndim]):
        m = m.reshape(m.shape + (1,) * (len(shape) - m.ndim))
    try:
        return np.broadcast_to(m, shape)
    except ValueError:
        raise ValueError(f"mask of shape {m.shape} does not broadcast to {tuple(shape)}; pass a "
                         "mask with the array's leading shape or one broadcastable to it") from None


def check_same_shape(a: np.ndarray, b: np.ndarray, what: str = "pred and true") -> None:
    if a.shape != b.shape:
        raise ValueError(f"{what} must have the same shape, got {a.shape} and {b.shape}")


def safe_div(num: float, den: float) -> float:
    """``num / den`` as a float, NaN when ``den`` is zero (nothing counted)."""
    return float(num) / float(den) if den else NAN


def masked_mean(values: np.ndarray, mask: np.ndarray, axis: Any = None) -> np.ndarray | float:
    """Mean of ``values`` over ``mask`` along ``axis``; NaN where nothing is counted."""
    total = np.where(mask, values, 0.0).sum(axis=axis)
    count = mask.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return float(out) if np.ndim(out) == 0 else out


def floats(x: Any) -> list:
    """Nested list of Python floats (JSON-able; NaN stays NaN)."""
    return np.asarray(x, dtype=float).tolist()


def names_for(names: Sequence[str] | None, n: int, what: str = "variable_names") -> list[str]:
    """``names`` as strings (checked against ``n``), else ``"0"``, ``"1"``, ..."""
    if names is None:
        return [str(i) for i in range(n)]
    names = [str(v) for v in names]
    if len(names) != n:
        raise ValueError(f"{what} has {len(names)} entries but the array has {n}")
    return names


def summary(values: Any) -> dict[str, float]:
    """Mean, std (ddof=0), 10 % quantile, median, 90 % quantile and count of finite ``values``."""
    v = as_array(values, float).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"mean": NAN, "std": NAN, "p10": NAN, "median": NAN, "p90": NAN, "count": 0}
    p10, median, p90 = np.quantile(v, [0.1, 0.5, 0.9])
    return {"mean": float(v.mean()), "std": float(v.std()), "p10": float(p10),
            "median": float(median), "p90": float(p90), "count": int(v.size)}


def group_label(label: Any) -> str:
    """A JSON key for a group label: tuples such as (world, split) become ``"world/split"``."""
    if isinstance(label, tuple):
        return "/".join(str(p) for p in label)
    if isinstance(label, np.generic):
        label = label.item()
    return str(label)


def group_indices(groups: Any, n: int) -> dict[Any, np.ndarray]:
    """Row indices per distinct label of ``groups`` (length ``n``).

    Numeric or string label arrays (site ids) are grouped vectorised, in sorted label order;
    other labels (tuples such as (world, split)) in first-seen order.
    """
    if len(groups) != n:
        raise ValueError(f"groups has {len(groups)} labels but there are {n} samples")
    arr = as_array(groups) if hasattr(groups, "detach") or isinstance(groups, np.ndarray) else None
    if arr is not None and arr.ndim == 1 and arr.dtype.kind in "biuUS":
        labels, inverse = np.unique(arr, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        splits = np.cumsum(np.bincount(inverse, minlength=len(labels)))[:-1]
        return {lab.item(): idx for lab, idx in zip(labels, np.split(order, splits))}
    out: dict[Any, list[int]] = {}
    for i, g in enumerate(groups):
        key = tuple(g) if isinstance(g, list) else (g.item() if isinstance(g, np.generic) else g)
        out.setdefault(key, []).append(i)
    return {k: np.asarray(v, dtype=np.int64) for k, v in out.items()}
