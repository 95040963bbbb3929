"""Applying fitted scalers to batches and undoing them on predictions; the JSON scaler file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from trainset.errors import TrainsetError
from trainset.provenance import code_version, json_sha256, write_json
from trainset.scalers.checks import check_statistics
from trainset.scalers.spec import SKLEARN_PARAMS, ScalerSpec, batched_axis, parse_spec
from trainset.transforms import transform_from_dict
from trainset.versions import KEY, check_version, stamp

FORMAT_ID = "trainset-scalers"
MASK_KEYS = {"irfs": "shock_mask"}  # masks of collate_mixed_worlds not named <variable>_mask


def _affine(spec: ScalerSpec, stats: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, float]:
    """(loc, scale, add) with ``y = (x - loc) / scale + add`` for the scikit-learn kinds."""
    if spec.kind == "minmax":
        low, high = spec.params.get("feature_range", (0.0, 1.0))
        return np.asarray(stats["data_min"]), np.asarray(stats["data_range"]) / (high - low), float(low)
    loc = stats["mean"] if spec.kind == "standard" else stats["center"]
    return np.asarray(loc, dtype=np.float64), np.asarray(stats["scale"], dtype=np.float64), 0.0


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _torch() -> Any:
    """torch, imported only when a batch holds tensors (fitting needs numpy only)."""
    import torch

    return torch


class ScalerSet:
    """Fitted scalers of several variables, with their statistics per part (world).

    Built by :func:`fit_scalers` or :meth:`from_json`; apply with :meth:`transform` (a whole
    batch dict; also ``scalers(batch)``) and undo with :meth:`inverse` (one variable, e.g. the
    model's predictions). Statistics are plain floats: nothing here is a torch parameter.
    """

    def __init__(self, specs: dict[str, ScalerSpec], statistics: dict[str, dict[str, Any]],
                 dataset: dict[str, Any] | None = None) -> None:
        self.specs, self.statistics, self.dataset = specs, statistics, dict(dataset or {})
        self._cache: dict[tuple[str, str], Any] = {}

    @property
    def hash(self) -> str:
        """sha256 of the canonical specs and statistics (not of paths or dates)."""
        return json_sha256({"scalers": {n: s.to_dict() for n, s in self.specs.items()},
                            "statistics": self.statistics})

    def __repr__(self) -> str:
        kinds = ", ".join(f"{n}: {s.kind}" for n, s in self.specs.items())
        return f"ScalerSet({kinds}; hash {self.hash[:12]})"

    # -- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT_ID, **stamp("scalers"), "trainset_version": code_version(),
                "scaler_hash": self.hash, "dataset": self.dataset,
                "scalers": {n: s.to_dict() for n, s in self.specs.items()}, "statistics": self.statistics}

    def to_json(self, path: str | os.PathLike) -> None:
        """Write atomically (key-sorted JSON; floats round-trip exactly)."""
        write_json(self.to_dict(), path)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> ScalerSet:
        """Read :meth:`to_json` output; the statistics must be usable (finite numbers, divisors
        > 0, counts matching each variable's feature axis: :func:`~trainset.scalers.checks.check_statistics`)
        and the stored ``scaler_hash`` must match them.

        Raises
        ------
        TrainsetError
            If the file is not a scaler file, holds statistics a fit cannot have written, or was
            edited (hash mismatch).
        """
        try:
            obj = json.loads(Path(path).read_text())
            ok = obj.get("format") == FORMAT_ID
            if ok:
                check_version("scalers", obj.get(KEY), path)
            specs = parse_spec(obj["scalers"]) if ok else None
        except (OSError, ValueError, AttributeError, KeyError) as error:
            raise TrainsetError(f"{path}: not a trainset scaler file ({error}). Fix: rerun fit_scalers") from error
        if not ok:
            raise TrainsetError(f"{path}: not a trainset scaler file (no 'format': '{FORMAT_ID}'). Fix: rerun fit_scalers")
        check_statistics(specs, obj.get("statistics"), str(path))
        if not isinstance(obj.get("dataset") or {}, dict):
            raise TrainsetError(f"{path}: 'dataset' is not a mapping. Fix: rerun fit_scalers")
        out = cls(specs, obj["statistics"], obj.get("dataset"))
        if out.hash != obj.get("scaler_hash"):
            raise TrainsetError(f"{path}: scaler_hash does not match the statistics (file edited or corrupt). "
                                "Fix: rerun fit_scalers")
        return out

    # -- applying --------------------------------------------------------------------------
    def transform(self, batch: dict[str, Any]) -> dict[str, Any]:
        """A new batch with every scaled variable in model units; other keys passed through.

        Values may be torch tensors or numpy arrays and come back as the same kind (and dtype,
        device). Several parts: the batch's ``part`` list picks each row's statistics.
        """
        parts = batch.get("part")
        out = dict(batch)
        for name in self.specs:
            if name in batch:
                out[name] = self._apply(name, batch[name], parts, False, self._mask(batch, name))
        return out

    __call__ = transform

    def inverse(self, name: str, values: Any, part: str | Sequence[str] | None = None, mask: Any = None) -> Any:
        """Map model-unit ``values`` of variable ``name`` (e.g. predictions) back to data units.

        ``part`` picks the statistics of each row for several parts; ``mask`` (True = real)
        leaves padded entries unchanged. The scikit-learn kinds are plain torch arithmetic on
        tensors (device kept, autograd flows); the flu transforms run in numpy and detach.
        """
        return self._apply(name, values, part, True, mask)

    def encode(self, name: str, values: Any, part: str | Sequence[str] | None = None, mask: Any = None) -> Any:
        """Scale one variable's values (what :meth:`transform` does per key)."""
        return self._apply(name, values, part, False, mask)

    @staticmethod
    def _mask(batch: dict[str, Any], name: str) -> Any:
        return batch.get(f"{name}_mask", batch.get(MASK_KEYS.get(name, "")))

    def _apply(self, name: str, x: Any, parts: Any, inverse: bool, mask: Any) -> Any:
        if name not in self.specs:
            raise TrainsetError(f"scalers: no scaler for {name!r} (have {sorted(self.specs)})")
        stats = self.statistics[name]
        if not stats:
            raise TrainsetError(f"scalers: {name!r} has no statistics (no training samples held it). "
                                "Fix: refit on a split that holds this variable")
        torch_in = _is_torch(x)
        if torch_in:
            x = x if x.is_floating_point() else x.float()
        else:
            x = np.asarray(x)
            x = x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)
        multi = len(self.dataset.get("sizes") or stats) > 1
        if not multi:
            out = self._apply_part(name, next(iter(stats)), x, inverse, False)
        elif parts is None:
            raise TrainsetError(f"scalers: {name!r} has statistics per part {sorted(stats)}; the batch needs a "
                                "'part' list (a call, its 'part' argument). Fix: collate with "
                                "collate_mixed_worlds or pass part=")
        else:
            labels = np.asarray([parts] * len(x) if isinstance(parts, str) else list(parts), dtype=str)
            if labels.size != len(x):
                raise TrainsetError(f"scalers: {name!r} has {len(x)} rows but {labels.size} part labels")
            unique = list(dict.fromkeys(labels.tolist()))
            for part in unique:
                if part not in stats:
                    raise TrainsetError(f"scalers: {name!r} has no statistics for part {part!r} "
                                        f"(has {sorted(stats)}). Fix: refit on a dataset holding that part")
            if len(unique) == 1:
                out = self._apply_part(name, unique[0], x, inverse, True)
            else:
                out = x.clone() if torch_in else x.copy()
                for part in unique:
                    rows = np.flatnonzero(labels == part)
                    if torch_in:
                        rows = _torch().as_tensor(rows, device=x.device)
                    out[rows] = self._apply_part(name, part, x[rows], inverse, True)
        return out if mask is None else self._keep_masked(x, out, mask, torch_in)

    def _apply_part(self, name: str, part: str, x: Any, inverse: bool, padded: bool) -> Any:
        spec, stats = self.specs[name], self.statistics[name][part]
        ndim = 1 + len(stats["shape"])
        if x.ndim != ndim:
            raise TrainsetError(f"scalers: {name!r} was fitted on {ndim}-d batches [N, {stats['shape']}], got "
                                f"shape {tuple(x.shape)}. Fix: pass whole batches (leading sample axis)")
        axis = batched_axis(spec, ndim, name)
        n_feat = stats["shape"][axis - 1]
        if x.shape[axis] != n_feat and not (padded and x.shape[axis] > n_feat):
            raise TrainsetError(f"scalers: {name!r} of part {part!r} has {n_feat} features on axis {axis}, got "
                                f"shape {tuple(x.shape)}")
        region = (slice(None),) * axis + (slice(0, n_feat),)
        sub = x[region] if x.shape[axis] != n_feat else x
        if spec.kind in SKLEARN_PARAMS:
            if (name, part) not in self._cache:
                self._cache[name, part] = _affine(spec, stats)
            loc, scale, add = self._cache[name, part]
            shape = [1] * ndim
            shape[axis] = n_feat
            if _is_torch(x):
                loc, scale = (_torch().as_tensor(a.reshape(shape), dtype=x.dtype, device=x.device) for a in (loc, scale))
            else:
                loc, scale = (a.reshape(shape).astype(x.dtype) for a in (loc, scale))
            y = (sub - add) * scale + loc if inverse else (sub - loc) / scale + add
        else:
            t = transform_from_dict(stats)
            array = sub.detach().cpu().numpy() if _is_torch(x) else sub
            moved = np.moveaxis(array, axis, 1)
            y = np.moveaxis(t.decode(moved) if inverse else t.encode(moved), 1, axis)
            if _is_torch(x):
                y = _torch().from_numpy(np.ascontiguousarray(y)).to(device=x.device, dtype=x.dtype)
        if sub is x:
            return y
        out = x.clone() if _is_torch(x) else x.copy()
        out[region] = y
        return out

    @staticmethod
    def _keep_masked(x: Any, y: Any, mask: Any, torch_in: bool) -> Any:
        """``y`` where ``mask`` (a leading-axes prefix of x's shape) is True, else ``x``."""
        shape = tuple(mask.shape)
        if shape != tuple(x.shape[:len(shape)]):
            return y
        extra = (None,) * (x.ndim - len(shape))
        if torch_in:
            torch = _torch()
            return torch.where(torch.as_tensor(mask, device=x.device)[(..., *extra)], y, x)
        return np.where(np.asarray(mask)[(..., *extra)], y, x)
