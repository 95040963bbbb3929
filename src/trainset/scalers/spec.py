"""Scaler specs: which kind scales a variable, along which feature axis, with which params."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trainset.errors import TrainsetError
from trainset.transforms import TRANSFORMS, make_transform

EPS = 1e-8
SKLEARN_PARAMS = {"standard": {"with_mean", "with_std"}, "minmax": {"feature_range"},
                  "robust": {"with_centering", "with_scaling", "quantile_range", "unit_variance"}}
KINDS = sorted({*SKLEARN_PARAMS, *TRANSFORMS})


@dataclass(frozen=True)
class ScalerSpec:
    """How one variable is scaled: ``kind``, ``feature_axis`` (batched axes) and ``params``."""

    kind: str
    feature_axis: int
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "feature_axis": self.feature_axis, "params": dict(self.params)}


def parse_spec(spec: dict[str, str | dict]) -> dict[str, ScalerSpec]:
    """Validate ``{variable: kind | {kind, feature_axis, params}}``.

    Raises
    ------
    TrainsetError
        Naming the variable and key for an unknown kind, key or parameter, or a bad axis.
    """
    if not isinstance(spec, dict) or not spec:
        raise TrainsetError("scalers: spec must map variable names to a kind, e.g. {'data': 'standard'}")
    out = {}
    for name, entry in spec.items():
        entry = {"kind": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or "kind" not in entry:
            raise TrainsetError(f"scalers: {name!r} needs a kind (one of {KINDS}), got {entry!r}")
        unknown = set(entry) - {"kind", "feature_axis", "params"}
        if unknown:
            raise TrainsetError(f"scalers: {name!r} has unknown key(s) {sorted(unknown)}. "
                                "Fix: use kind, feature_axis, params")
        kind, params = entry["kind"], dict(entry.get("params") or {})
        if kind not in KINDS:
            raise TrainsetError(f"scalers: {name!r} has unknown kind {kind!r}. Fix: use one of {KINDS}")
        if kind in SKLEARN_PARAMS:
            bad = set(params) - SKLEARN_PARAMS[kind] - {"eps"}
            if bad:
                raise TrainsetError(f"scalers: {name!r} ({kind}) has unknown param(s) {sorted(bad)}. "
                                    f"Fix: use {sorted(SKLEARN_PARAMS[kind] | {'eps'})}")
            if not float(params.get("eps", EPS)) > 0:
                raise TrainsetError(f"scalers: {name!r} params.eps must be > 0")
            for key, default, bounds in (("feature_range", (0, 1), None), ("quantile_range", (25, 75), (0, 100))):
                value = params.get(key, default)
                ok = isinstance(value, (list, tuple)) and len(value) == 2 and value[0] < value[1]
                if not ok or (bounds and not bounds[0] <= value[0] < value[1] <= bounds[1]):
                    raise TrainsetError(f"scalers: {name!r} params.{key} must be [low, high] with low < high"
                                        + (" within 0..100" if bounds else "") + f", got {value!r}")
        else:
            make_transform(kind, **params)  # raises on bad params
        axis = entry.get("feature_axis", -1 if kind in SKLEARN_PARAMS else 1)
        if isinstance(axis, bool) or not isinstance(axis, int) or axis == 0:
            raise TrainsetError(f"scalers: {name!r} feature_axis must be a non-zero int (axis 0 is the "
                                f"sample axis), got {axis!r}")
        out[str(name)] = ScalerSpec(kind, axis, params)
    return out


def batched_axis(spec: ScalerSpec, ndim: int, name: str) -> int:
    """The feature axis as a positive index into a batched array of ``ndim`` axes."""
    axis = spec.feature_axis + ndim if spec.feature_axis < 0 else spec.feature_axis
    if not 1 <= axis < ndim:
        raise TrainsetError(f"scalers: {name!r} feature_axis {spec.feature_axis} is not a non-sample "
                            f"axis of its {ndim}-d batched array")
    return axis
