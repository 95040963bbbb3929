"""Per-feature scalers fitted on the training split of a stored dataset, kept as JSON.

The old flight trainer computed mean/std on training rows but stored them as ``nn.Parameter``
inside the model, so weight decay shrank them during training, and it divided by the raw std,
so a constant feature gave inf (anchors section 3). Here scale statistics are plain data: fitted
once from the training split, written to JSON (never pickle) beside the dataset, applied to
batches by loaders and inverted for predictions. They are never model parameters.

Kinds
-----
``standard``, ``minmax``, ``robust``
    scikit-learn's ``StandardScaler`` / ``MinMaxScaler`` (``partial_fit``: streamed over
    fixed-size chunks of training rows, bounded memory) and ``RobustScaler`` (needs all rows at
    once: fitted on at most ``max_robust_rows`` rows, the rows of whole training samples drawn
    without replacement by ``numpy.random.default_rng([seed, part number, crc32(variable)])``).
    Their fitted statistics are exported as lists: ``mean``/``scale``,
    ``data_min``/``data_range``, ``center``/``scale``. Params are the scikit-learn ones
    (``with_mean``, ``with_std``; ``feature_range``; ``with_centering``, ``with_scaling``,
    ``quantile_range``, ``unit_variance``) plus ``eps``.
``identity``, ``linear_max``, ``sqrt_max``, ``zscore``, ``log``
    The flu transforms of :mod:`trainset.transforms` (their params, e.g. ``scale``,
    ``offset``, ``eps``). Each chunk is fitted with ``Transform.fit`` and the chunk states are
    merged (max of maxima; Chan's pooled mean and std for ``zscore``).

Feature axis
------------
Statistics are per feature and reduce over every other axis. ``feature_axis`` counts axes of
the *batched* array (axis 0 is the sample axis and cannot be the feature axis). Default: ``-1``
for the scikit-learn kinds (``data`` [N,T,D] -> D features over N and T; ``features`` [N,F];
``irfs`` [N,S,H+1,V] -> one scale per variable V) and ``1`` for the flu transforms, whose
convention is ``(sample, feature, ...)`` (``frames`` [N,1,W,P] -> one feature).

Spreads below ``eps`` (std, range, IQR; default 1e-8) are replaced by ``eps``, so a constant
feature maps to 0 (``minmax``: to the lower end of ``feature_range``) instead of dividing by zero.

Several parts (macro worlds): statistics are kept per variable *and* per part
(``statistics[variable][part]``), and :meth:`ScalerSet.transform` picks each row's statistics
from the batch's ``world`` (or ``part``) list, one vectorised operation per world. Entries
beyond a world's own feature count (padding by ``collate_mixed_worlds``) and entries masked out
by ``<variable>_mask`` (``shock_mask`` for ``irfs``) are left unchanged.
"""

from __future__ import annotations

import json
import logging
import math
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from trainset.errors import TrainsetError
from trainset.io.base import get_format, guess_format
from trainset.open import dataset_splits
from trainset.provenance import code_version, file_sha256, json_sha256, write_json
from trainset.transforms import TRANSFORMS, make_transform, transform_from_dict

logger = logging.getLogger(__name__)

__all__ = ["KINDS", "ScalerSet", "ScalerSpec", "fit_scalers", "parse_spec"]

FORMAT_ID, VERSION = "trainset-scalers", 1
EPS = 1e-8
MAX_ROBUST_ROWS = 200_000
CHUNK_BYTES = 32 << 20  # memory per streamed chunk of training samples
SKLEARN_PARAMS = {"standard": {"with_mean", "with_std"}, "minmax": {"feature_range"},
                  "robust": {"with_centering", "with_scaling", "quantile_range", "unit_variance"}}
KINDS = sorted({*SKLEARN_PARAMS, *TRANSFORMS})
MASK_KEYS = {"irfs": "shock_mask"}  # masks of collate_mixed_worlds not named <variable>_mask


# ------------------------------------------------------------------------------------ spec
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


def _axis(spec: ScalerSpec, ndim: int, name: str) -> int:
    """The feature axis as a positive index into a batched array of ``ndim`` axes."""
    axis = spec.feature_axis + ndim if spec.feature_axis < 0 else spec.feature_axis
    if not 1 <= axis < ndim:
        raise TrainsetError(f"scalers: {name!r} feature_axis {spec.feature_axis} is not a non-sample "
                            f"axis of its {ndim}-d batched array")
    return axis


# ------------------------------------------------------------------------------- fitting
class _SklearnFitter:
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


class _TransformFitter:
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


def _chunk_rows(part: Any, names: list[str], chunk_rows: int | None) -> int:
    """Training samples per streamed chunk: ``chunk_rows`` or ~32 MB of the fitted variables."""
    if chunk_rows:
        return int(chunk_rows)
    nbytes = sum(math.prod(part.variables[v].shape) * part.variables[v].dtype.itemsize for v in names)
    return int(min(65_536, max(1, CHUNK_BYTES // max(nbytes, 1))))


def _chunks_mapped(reader: Any, local: list[np.ndarray], wanted: list[list[str]], sizes: list[int]
                   ) -> Iterator[tuple[int, np.ndarray, dict[str, np.ndarray]]]:
    """(part, local indices, block) for consecutive fixed-size chunks of each part's training rows."""
    for part, rows in enumerate(local):
        for start in range(0, rows.size, sizes[part]):
            idx = rows[start:start + sizes[part]]
            yield part, idx, reader.read(part, idx, wanted[part])


def _chunks_wds(source: Any, mask: np.ndarray, firsts: np.ndarray, wanted: list[list[str]], sizes: list[int]
                ) -> Iterator[tuple[int, np.ndarray, dict[str, np.ndarray]]]:
    """The same chunks as :func:`_chunks_mapped`, re-cut from the shards' member blocks."""
    names = sorted({v for w in wanted for v in w})
    buffers: dict[int, list[tuple[np.ndarray, dict[str, np.ndarray]]]] = {}
    held: dict[int, int] = {}

    def cut(part: int, final: bool) -> Iterator[tuple[int, np.ndarray, dict[str, np.ndarray]]]:
        pieces, held[part] = buffers.pop(part, []), 0
        if not pieces:
            return
        idx = np.concatenate([p[0] for p in pieces])
        block = {v: np.concatenate([p[1][v] for p in pieces]) for v in wanted[part]}
        size, start = sizes[part], 0
        while idx.size - start >= size or (final and start < idx.size):
            yield part, idx[start:start + size], {v: a[start:start + size] for v, a in block.items()}
            start += size
        if start < idx.size:
            buffers[part], held[part] = [(idx[start:], {v: a[start:] for v, a in block.items()})], idx.size - start

    current = None
    for shard in source.shards_with(mask):
        for first, part, n, block in source.iter_blocks(shard, names):
            if current is not None and part != current:
                yield from cut(current, final=True)
            current = part
            rows = np.flatnonzero(mask[first:first + n])
            if rows.size:
                buffers.setdefault(part, []).append(
                    (first + rows - firsts[part], {v: block[v][rows] for v in wanted[part]}))
                held[part] = held.get(part, 0) + rows.size
                if held[part] >= sizes[part]:
                    yield from cut(part, final=False)
    for part in sorted(buffers):
        yield from cut(part, final=True)


def fit_scalers(path: str | os.PathLike, spec: dict[str, str | dict], split: str = "train", seed: int = 0, *,
                max_robust_rows: int = MAX_ROBUST_ROWS, chunk_rows: int | None = None,
                format: str | None = None) -> ScalerSet:
    """Fit per-feature scalers on one split (the training split) of a stored dataset.

    Parameters
    ----------
    path : path
        A dataset trainset wrote (``.nc``, ``.h5``, ``.zarr``, ``-wds``), with stored splits or a
        ``splits.json`` beside it.
    spec : dict
        Variable -> kind, or -> ``{"kind", "feature_axis", "params"}`` (see the module docstring).
    split : str
        Only these samples are read; statistics never see the others.
    seed : int
        Seeds the row sample of ``robust`` scalers.
    max_robust_rows : int
        Upper bound on rows held in memory for a ``robust`` scaler.
    chunk_rows : int, optional
        Samples per streamed chunk (default: ~32 MB). Chunks are cut the same way for every
        format, so equal datasets give bit-identical statistics (and ``scaler_hash``).

    Returns
    -------
    ScalerSet

    Raises
    ------
    TrainsetError
        For an unknown split or variable, a non-float variable, or non-finite training values.
    """
    specs = parse_spec(spec)
    fmt = get_format(format) if format else guess_format(path)
    source = fmt.reader(path)
    parts = source.parts
    splits = dataset_splits(path, source.splits)
    if split not in splits:
        raise TrainsetError(f"{path}: no split {split!r}. Fix: use one of {sorted(splits)}")
    indices, firsts = np.asarray(splits[split], dtype=np.int64), np.cumsum([0, *(p.size for p in parts)])[:-1]
    wanted = [[v for v in specs if v in p.variables] for p in parts]
    for name in specs:
        infos = [(p.name, p.variables[name]) for p in parts if name in p.variables]
        if not infos:
            raise TrainsetError(f"{path}: no variable {name!r} to scale (has "
                                f"{sorted({v for p in parts for v in p.variables})}). Fix: name a stored variable")
        for part_name, info in infos:
            if info.dtype.kind != "f":
                raise TrainsetError(f"{path}: variable {name!r} (part {part_name!r}) is {info.dtype}, not float; "
                                    "only float variables can be scaled. Fix: remove it from the scaler spec "
                                    "(integer labels and ids are used as they are)")
            _axis(specs[name], 1 + len(info.shape), name)
    local = [indices[(indices >= f) & (indices < f + p.size)] - f for f, p in zip(firsts, parts)]
    sizes = [_chunk_rows(p, w, chunk_rows) for p, w in zip(parts, wanted)]
    fitters: dict[tuple[str, int], Any] = {}
    for number, part in enumerate(parts):
        for name in wanted[number]:
            if not local[number].size:
                logger.warning("scalers: part %r has no %r samples; %r gets no statistics there",
                               part.name, split, name)
                continue
            s, shape = specs[name], (local[number].size, *part.variables[name].shape)
            axis = _axis(s, len(shape), name)
            keep = None
            per_sample = math.prod(shape[1:]) // shape[axis]
            if s.kind == "robust" and local[number].size * per_sample > max_robust_rows:
                rng = np.random.default_rng([seed, number, zlib.crc32(name.encode())])
                k = max(1, max_robust_rows // max(per_sample, 1))
                keep = np.sort(rng.choice(local[number], size=k, replace=False))
            fitter = _SklearnFitter if s.kind in SKLEARN_PARAMS else _TransformFitter
            fitters[name, number] = fitter(s, axis, keep)
    if fmt.name == "webdataset":
        mask = np.zeros(len(source), dtype=bool)
        mask[indices] = True
        chunks = _chunks_wds(source, mask, firsts, wanted, sizes)
    else:
        chunks = _chunks_mapped(source, local, wanted, sizes)
    for number, idx, block in chunks:
        for name, values in block.items():
            if not np.isfinite(values).all():
                raise TrainsetError(f"{path}: variable {name!r} (part {parts[number].name!r}) has NaN/inf in "
                                    f"split {split!r}. Fix: clean the dataset before fitting scalers")
            fitters[name, number].update(values, idx)
    statistics: dict[str, dict[str, Any]] = {name: {} for name in specs}
    for (name, number), fitter in fitters.items():
        part = parts[number]
        stats = fitter.finish()
        stats.update(shape=list(part.variables[name].shape), n_samples=int(local[number].size),
                     n_rows=int(fitter.rows))
        statistics[name][part.name] = stats
    dataset = {"path": str(path), "format": fmt.name, "sha256": file_sha256(path), "split": split, "seed": seed,
               "sizes": {p.name: int(n.size) for p, n in zip(parts, local)}, "max_robust_rows": max_robust_rows}
    logger.info("fitted scalers %s on %d %r samples of %s", sorted(specs), indices.size, split, path)
    return ScalerSet(specs, statistics, dataset)


# ----------------------------------------------------------------------------- applying
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
        return {"format": FORMAT_ID, "version": VERSION, "trainset_version": code_version(),
                "scaler_hash": self.hash, "dataset": self.dataset,
                "scalers": {n: s.to_dict() for n, s in self.specs.items()}, "statistics": self.statistics}

    def to_json(self, path: str | os.PathLike) -> None:
        """Write atomically (key-sorted JSON; floats round-trip exactly)."""
        write_json(self.to_dict(), path)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> ScalerSet:
        """Read :meth:`to_json` output; the stored ``scaler_hash`` must match the statistics.

        Raises
        ------
        TrainsetError
            If the file is not a scaler file, or was edited (hash mismatch).
        """
        try:
            obj = json.loads(Path(path).read_text())
            ok = obj.get("format") == FORMAT_ID and obj.get("version") == VERSION
            specs = parse_spec(obj["scalers"]) if ok else None
        except (OSError, ValueError, AttributeError, KeyError) as error:
            raise TrainsetError(f"{path}: not a trainset scaler file ({error}). Fix: rerun fit_scalers") from error
        if not ok:
            raise TrainsetError(f"{path}: not a trainset scaler file (format/version). Fix: rerun fit_scalers")
        out = cls(specs, obj["statistics"], obj.get("dataset"))
        if out.hash != obj.get("scaler_hash"):
            raise TrainsetError(f"{path}: scaler_hash does not match the statistics (file edited or corrupt). "
                                "Fix: rerun fit_scalers")
        return out

    # -- applying --------------------------------------------------------------------------
    def transform(self, batch: dict[str, Any]) -> dict[str, Any]:
        """A new batch with every scaled variable in model units; other keys passed through.

        Values may be torch tensors or numpy arrays and come back as the same kind (and dtype,
        device). Several parts: the batch's ``world`` (or ``part``) list picks each row's
        statistics.
        """
        worlds = batch.get("world", batch.get("part"))
        out = dict(batch)
        for name in self.specs:
            if name in batch:
                out[name] = self._apply(name, batch[name], worlds, False, self._mask(batch, name))
        return out

    __call__ = transform

    def inverse(self, name: str, values: Any, world: str | Sequence[str] | None = None, mask: Any = None) -> Any:
        """Map model-unit ``values`` of variable ``name`` (e.g. predictions) back to data units.

        ``world`` picks the statistics of each row for several parts; ``mask`` (True = real)
        leaves padded entries unchanged. The scikit-learn kinds are plain torch arithmetic on
        tensors (device kept, autograd flows); the flu transforms run in numpy and detach.
        """
        return self._apply(name, values, world, True, mask)

    def encode(self, name: str, values: Any, world: str | Sequence[str] | None = None, mask: Any = None) -> Any:
        """Scale one variable's values (what :meth:`transform` does per key)."""
        return self._apply(name, values, world, False, mask)

    @staticmethod
    def _mask(batch: dict[str, Any], name: str) -> Any:
        return batch.get(f"{name}_mask", batch.get(MASK_KEYS.get(name, "")))

    def _apply(self, name: str, x: Any, world: Any, inverse: bool, mask: Any) -> Any:
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
        elif world is None:
            raise TrainsetError(f"scalers: {name!r} has statistics per part {sorted(stats)}; the batch needs a "
                                "'world' list. Fix: collate with collate_mixed_worlds or pass world=")
        else:
            labels = np.asarray([world] * len(x) if isinstance(world, str) else list(world), dtype=str)
            if labels.size != len(x):
                raise TrainsetError(f"scalers: {name!r} has {len(x)} rows but {labels.size} world labels")
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
        axis = _axis(spec, ndim, name)
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


DEFAULT_SPECS: dict[str, dict[str, str]] = {
    "seq2static_classification": {"data": "standard"},
    "seq2seq_classification": {"data": "standard"},
    "seq2static_regression": {"data": "standard", "labels": "standard"},
    "seq2seq_regression": {"data": "standard", "labels": "standard"},
    "summary": {"data": "standard", "labels": "standard"},
    "reconstruction": {"data": "standard"},
    "thresholds": {"features": "standard"},
    "irf": {"theta": "standard", "irfs": "standard"},
    "frames": {"frames": "sqrt_max"},
}
"""What is scaled by default for each task: float inputs, and regression targets (their
predictions are inverted back to data units). Integer labels, site ids and dates are never
scaled. A dataset's ``scalers:`` config replaces this."""


def fit_dataset_scalers(path: str | os.PathLike, output: str | os.PathLike, spec: dict | None = None,
                        split: str = "train", seed: int = 0) -> ScalerSet:
    """Fit the scalers of a stored dataset on its training split and write them as JSON.

    Without ``spec`` the task's :data:`DEFAULT_SPECS` entry is used (the task stored with the
    dataset); token inputs (integer ``data``) are left unscaled.
    """
    from trainset.io.base import guess_format

    source = guess_format(path).reader(path)
    task = source.attrs.get("task")
    if spec is None:
        if task not in DEFAULT_SPECS:
            raise TrainsetError(f"{path}: no default scalers for task {task!r}. Fix: set scalers: {{variable: kind}}")
        floats = {var for part in source.parts for var, info in part.variables.items() if info.dtype.kind == "f"}
        spec = {var: kind for var, kind in DEFAULT_SPECS[task].items() if var in floats}
    scalers = fit_scalers(path, spec, split=split, seed=seed)
    scalers.to_json(output)
    return scalers
