"""Value transforms for training arrays: encode/decode pairs fitted per feature.

Models train better on values of order one, but forecasts must be reported in data units, so
every transform here is a pair (like xarray's ``VariableCoder``): ``decode(encode(x))`` gives
``x`` back to float tolerance. Statistics are fitted per feature, reducing over every other
axis of an array shaped ``(sample, feature, ...)``; once fitted, a transform applies both to
such batches and to single samples shaped ``(feature, ...)``.

The fitted state is plain JSON (floats and lists, never pickle) via :meth:`Transform.to_dict`
and :func:`transform_from_dict`, so it can be stored beside a dataset or a checkpoint and
restored without running code. Pure numpy: no torch, no file I/O.

Transforms (``TRANSFORMS`` registry, built with :func:`make_transform`):

- ``identity``: no change (lets configs say "no transform" by name).
- ``linear_max``: ``x / max|x|``.
- ``sqrt_max``: ``sqrt(x / max) * scale`` (scale 2 as in the original InfluPaint code).
- ``zscore``: ``(x - mean) / std``.
- ``log``: ``log1p(x / offset) / log1p(max / offset)``, for non-negative data.

Every divisor is guarded by ``eps`` so an all-zero feature encodes to zeros and decodes back.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from trainset.errors import TrainsetError

logger = logging.getLogger(__name__)

__all__ = ["TRANSFORMS", "Identity", "LinearMax", "Log", "SqrtMax", "Transform", "ZScore",
           "make_transform", "transform_from_dict"]


@dataclass
class Transform:
    """Base class: a per-feature encode/decode pair with JSON-able fitted state.

    Subclasses set ``name``, declare their parameters as dataclass fields and implement
    :meth:`_stats` (the per-feature statistics), :meth:`_encode` and :meth:`_decode`, which
    receive the statistics already shaped to broadcast against the data.

    Parameters
    ----------
    eps : float
        Floor for every divisor (max, std), so constant or all-zero features stay finite.
    """

    name: ClassVar[str] = ""
    eps: float = 1e-8
    state: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def fitted(self) -> bool:
        """Whether :meth:`fit` (or :meth:`from_dict` with state) has run."""
        return bool(self.state)

    def fit(self, x: np.ndarray) -> Transform:
        """Fit per-feature statistics on ``x`` shaped ``(sample, feature, ...)``; return self.

        Raises
        ------
        TrainsetError
            If ``x`` has fewer than two axes or holds non-finite values.
        """
        x = np.asarray(x)
        if x.ndim < 2:
            raise TrainsetError(
                f"{self.name}: fit needs an array shaped (sample, feature, ...), got shape "
                f"{x.shape}; add the missing axes (e.g. x[:, None]) before fitting."
            )
        if not np.isfinite(x).all():
            raise TrainsetError(
                f"{self.name}: fit data holds {int((~np.isfinite(x)).sum())} NaN/inf values; "
                "fill or drop them before fitting a transform."
            )
        axes = (0, *range(2, x.ndim))
        stats = self._stats(x.astype(np.float64, copy=False), axes)
        self.state = {"n_trailing": x.ndim - 2, **{k: v.tolist() for k, v in stats.items()}}
        logger.debug("fitted %s on shape %s", self.name, x.shape)
        return self

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Map data units to model units; float input keeps its dtype."""
        x = self._as_float(x)
        return self._encode(x, self._broadcast(x)).astype(x.dtype, copy=False)

    def decode(self, y: np.ndarray) -> np.ndarray:
        """Map model units back to data units (the exact inverse of :meth:`encode`)."""
        y = self._as_float(y)
        return self._decode(y, self._broadcast(y)).astype(y.dtype, copy=False)

    def params(self) -> dict[str, Any]:
        """The constructor parameters (``eps`` and subclass fields) as plain values."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able ``{"name", "params", "state"}``; ``state`` is ``None`` before fitting."""
        return {"name": self.name, "params": self.params(), "state": dict(self.state) or None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Transform:
        """Rebuild a transform (fitted if ``d`` has state) from :meth:`to_dict` output."""
        return transform_from_dict(d)

    # -- subclass hooks (statistics arrive shaped to broadcast) and helpers ----------------
    def _stats(self, x: np.ndarray, axes: tuple[int, ...]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _encode(self, x: np.ndarray, s: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def _decode(self, y: np.ndarray, s: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def _as_float(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)

    def _broadcast(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Statistics shaped ``(feature, 1, ..., 1)`` so they fit batches and single samples."""
        if not self.fitted:
            raise TrainsetError(f"{self.name}: transform is not fitted; call fit(x) first.")
        trailing = int(self.state["n_trailing"])
        stats = {k: np.asarray(v, dtype=x.dtype) for k, v in self.state.items()
                 if k != "n_trailing"}
        n_feat = next((len(v) for v in stats.values()), None)
        axis = x.ndim - trailing - 1
        if axis < 0 or (n_feat is not None and x.shape[axis] != n_feat):
            raise TrainsetError(
                f"{self.name}: fitted on {n_feat} feature(s) followed by {trailing} axes, but "
                f"got shape {x.shape}; pass (feature, ...) or (batch, feature, ...) arrays."
            )
        shape = (-1,) + (1,) * trailing
        return {k: v.reshape(shape) for k, v in stats.items()}

    def _check_non_negative(self, x: np.ndarray) -> None:
        if (x < 0).any():
            raise TrainsetError(
                f"{self.name}: needs non-negative data, found minimum {x.min():g}; "
                "use 'zscore' or 'linear_max' for signed data."
            )


@dataclass
class Identity(Transform):
    """No change; exists so a config can name 'no transform' explicitly."""

    name: ClassVar[str] = "identity"

    @property
    def fitted(self) -> bool:
        """Always true: there is nothing to fit."""
        return True

    def _stats(self, x, axes):
        return {}

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Return ``x`` as a float array."""
        return self._as_float(x)

    def decode(self, y: np.ndarray) -> np.ndarray:
        """Return ``y`` as a float array."""
        return self._as_float(y)


@dataclass
class LinearMax(Transform):
    """``x / max|x|`` per feature: keeps zeros at zero and the largest magnitude at one."""

    name: ClassVar[str] = "linear_max"

    def _stats(self, x, axes):
        return {"max": np.abs(x).max(axis=axes)}

    def _encode(self, x, s):
        return x / np.maximum(s["max"], self.eps)

    def _decode(self, y, s):
        return y * np.maximum(s["max"], self.eps)


@dataclass
class SqrtMax(Transform):
    """``sqrt(x / max) * scale`` per feature, the original InfluPaint scaling.

    The square root compresses epidemic peaks so that low-incidence weeks still carry signal.
    It is applied sign-preserving (``sign(x) * sqrt(|x| / max)``), so the pair is a strict
    bijection: a slightly negative model output decodes to a slightly negative value (visible
    as invalid) instead of being mirrored to a plausible positive one.
    """

    name: ClassVar[str] = "sqrt_max"
    scale: float = 2.0

    def _stats(self, x, axes):
        self._check_non_negative(x)
        return {"max": x.max(axis=axes)}

    def _encode(self, x, s):
        return np.sign(x) * np.sqrt(np.abs(x) / np.maximum(s["max"], self.eps)) * self.scale

    def _decode(self, y, s):
        z = y / self.scale
        return z * np.abs(z) * np.maximum(s["max"], self.eps)


@dataclass
class ZScore(Transform):
    """``(x - mean) / std`` per feature; ``std`` is floored at ``eps`` for constant features."""

    name: ClassVar[str] = "zscore"

    def _stats(self, x, axes):
        return {"mean": x.mean(axis=axes), "std": x.std(axis=axes)}

    def _encode(self, x, s):
        return (x - s["mean"]) / np.maximum(s["std"], self.eps)

    def _decode(self, y, s):
        return y * np.maximum(s["std"], self.eps) + s["mean"]


@dataclass
class Log(Transform):
    """``log1p(x / offset) / log1p(max / offset)`` per feature, for non-negative data.

    ``offset`` sets where the curve turns from linear (``x << offset``) to logarithmic; the
    fitted denominator maps each feature's maximum to one, like ``linear_max``.
    """

    name: ClassVar[str] = "log"
    offset: float = 1.0

    def _stats(self, x, axes):
        if self.offset <= 0:
            raise TrainsetError(f"log: offset must be > 0, got {self.offset}.")
        self._check_non_negative(x)
        return {"max": np.log1p(x.max(axis=axes) / self.offset)}

    def _encode(self, x, s):
        return np.log1p(x / self.offset) / np.maximum(s["max"], self.eps)

    def _decode(self, y, s):
        return np.expm1(y * np.maximum(s["max"], self.eps)) * self.offset


TRANSFORMS: dict[str, type[Transform]] = {
    cls.name: cls for cls in (Identity, LinearMax, SqrtMax, ZScore, Log)
}


def make_transform(name: str, **params: Any) -> Transform:
    """Build an unfitted transform by registry name.

    Raises
    ------
    TrainsetError
        If ``name`` is not in :data:`TRANSFORMS` or a parameter is not accepted.
    """
    cls = TRANSFORMS.get(name)
    if cls is None:
        raise TrainsetError(
            f"unknown transform {name!r}; valid names: {', '.join(sorted(TRANSFORMS))}."
        )
    try:
        return cls(**params)
    except TypeError as err:
        valid = sorted(Transform.params(cls()))
        raise TrainsetError(
            f"transform {name!r}: bad parameters {sorted(params)}; valid: {valid}."
        ) from err


def transform_from_dict(d: dict[str, Any]) -> Transform:
    """Rebuild a transform from :meth:`Transform.to_dict` output (state restored if present)."""
    if not isinstance(d, dict) or "name" not in d:
        raise TrainsetError(f"transform dict needs a 'name' key, got {d!r}.")
    transform = make_transform(d["name"], **(d.get("params") or {}))
    state = d.get("state")
    if state:
        transform.state = {k: (list(v) if isinstance(v, (list, tuple)) else v)
                           for k, v in state.items()}
    return transform
