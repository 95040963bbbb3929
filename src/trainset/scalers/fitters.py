"""Streaming fitters: one per (variable, part), fed chunk by chunk, exporting JSON statistics."""

from __future__ import annotations

from typing import Any

import numpy as np

from trainset.errors import TrainsetError
from trainset.scalers.spec import EPS, ScalerSpec
from trainset.transforms import make_transform


class SklearnFitter:
    """Streams 2-d rows into a scikit-learn scaler and exports JSON statistics."""

    def __init__(self, spec: ScalerSpec, axis: int, keep: np.ndarray | None) -> None:
        from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

        cls = {"standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler}[spec.kind]
        kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in spec.params.items() if k != "eps"}
        self.spec, self.axis, self.keep, self.rows = spec, axis, keep, 0
        self.scaler, self.sample = cls(**kwargs), []

    def update(self, x: np.ndarray, local: np.ndarray) -> None:
        rows = np.moveaxis(x, self.axis, -1).reshape(-1, x.shape[self.axis]).astype(np.float64)
        self.rows += rows.shape[0]
        if self.spec.kind != "robust":
            self.scaler.partial_fit(rows)
        elif self.keep is None:
            self.sample.append(rows)
        else:
            chosen = np.isin(local, self.keep)
            self.sample.append(np.moveaxis(x[chosen], self.axis, -1).reshape(-1, x.shape[self.axis])
                               .astype(np.float64))

    def finish(self) -> dict[str, Any]:
        s, p, eps = self.scaler, self.spec.params, float(self.spec.params.get("eps", EPS))
        if self.spec.kind == "standard":
            std = np.sqrt(s.var_) if s.var_ is not None else None
            n = s.n_features_in_
            stats = {"mean": s.mean_ if p.get("with_mean", True) else np.zeros(n),
                     "scale": np.where(std < eps, eps, s.scale_) if std is not None else np.ones(n)}
        elif self.spec.kind == "minmax":
            stats = {"data_min": s.data_min_, "data_range": np.maximum(s.data_range_, eps)}
        else:
            sample = np.concatenate(self.sample)
            s.fit(sample)
            low, high = p.get("quantile_range", (25.0, 75.0))
            iqr = np.subtract(*np.percentile(sample, [high, low], axis=0))
            n = sample.shape[1]
            stats = {"center": s.center_ if s.center_ is not None else np.zeros(n),
                     "scale": np.where(iqr < eps, eps, s.scale_) if s.scale_ is not None else np.ones(n),
                     "n_rows_used": int(sample.shape[0])}
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in stats.items()}


class TransformFitter:
    """Fits a flu transform per chunk and merges the chunk states (max; pooled mean/std)."""

    def __init__(self, spec: ScalerSpec, axis: int, keep: Any = None) -> None:
        self.spec, self.axis, self.rows, self.state = spec, axis, 0, None

    def update(self, x: np.ndarray, local: np.ndarray) -> None:
        t = make_transform(self.spec.kind, **self.spec.params).fit(np.moveaxis(x, self.axis, 1))
        n = x.size // x.shape[self.axis]
        state = {k: (np.asarray(v, dtype=np.float64) if isinstance(v, list) else v) for k, v in t.state.items()}
        self.rows, old = self.rows + n, self.state
        if old is None or not old.keys() - {"n_trailing"}:
            self.state = state
            return
        if set(state) == {"n_trailing", "max"}:
            state["max"] = np.maximum(old["max"], state["max"])
        elif set(state) == {"n_trailing", "mean", "std"}:  # Chan et al. pairwise update
            n_old, total = self.rows - n, self.rows
            delta = state["mean"] - old["mean"]
            m2 = old["std"] ** 2 * n_old + state["std"] ** 2 * n + delta ** 2 * n_old * n / total
            state = {"n_trailing": state["n_trailing"], "mean": old["mean"] + delta * n / total,
                     "std": np.sqrt(m2 / total)}
        else:
            raise TrainsetError(f"scalers: transform {self.spec.kind!r} has state {sorted(state)} that cannot "
                                "be merged across chunks. Fix: teach trainset.scalers to merge it")
        self.state = state

    def finish(self) -> dict[str, Any]:
        t = make_transform(self.spec.kind, **self.spec.params)
        t.state = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in (self.state or {}).items()}
        return t.to_dict()
