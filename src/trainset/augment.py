"""Seeded data-space augmentations for flu frames: random rescale, Poisson noise, time shift.

A training set of a few thousand frames is small for a generative model; these augmentations
make each epoch see plausible variants of every frame (a different peak height, a different
observation noise draw, an earlier or later epidemic).

Every draw comes from a :class:`numpy.random.Generator` owned by one sample, normally
:func:`sample_rng` ``(seed, epoch, index)``, so a sample's augmentation does not depend on the
batch it is fetched in, on the fetch order or on the number of DataLoader workers. Per sample,
the steps run in a fixed order, each drawing from the stream only when switched on:

1. ``rescale``: multiply by a factor drawn log-uniformly in ``[low, high]``;
2. ``poisson``: replace each value by a Poisson draw with that mean (count-like data only;
   the result is integer-valued and non-negative);
3. ``max_shift``: move the curve by ``s`` weeks, ``s`` uniform in ``-max_shift..max_shift``
   (positive = later). Weeks shifted in from outside the season are zeros
   (``shift_pad="zeros"``, the default: no epidemic activity off-season) or repeat the first
   or last week (``shift_pad="edge"``).

Arrays are shaped ``(feature, season_week, place)`` for one sample, with a leading batch axis
for :func:`augment_batch`. Pure numpy.

Workflow runs take these options from the run config's ``augment:`` mapping, checked at start-up
by :func:`config_problems` and applied to the training split by :mod:`trainset.loaders.augmented`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from trainset.errors import TrainsetError

logger = logging.getLogger(__name__)

__all__ = ["Augment", "augment_batch", "augment_sample", "config_problems", "from_config", "sample_rng"]

WEEK_AXIS = -2  # (…, feature, season_week, place)


@dataclass(frozen=True)
class Augment:
    """Which augmentations to apply; every one is off by default.

    Parameters
    ----------
    poisson : bool
        Resample each value as ``Poisson(value)``; only meaningful for counts.
    max_shift : int
        Largest time shift in weeks (either direction); 0 switches shifting off.
    shift_pad : {"zeros", "edge"}
        How weeks shifted in from outside the array are filled.
    rescale : tuple of float or None
        ``(low, high)`` bounds of the log-uniform rescaling factor; ``None`` switches it off.
    """

    poisson: bool = False
    max_shift: int = 0
    shift_pad: Literal["zeros", "edge"] = "zeros"
    rescale: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        """Validate at construction so a bad config fails before training starts."""
        if int(self.max_shift) != self.max_shift or self.max_shift < 0:
            raise TrainsetError(
                f"augment: max_shift must be an integer >= 0, got {self.max_shift}."
            )
        if self.shift_pad not in ("zeros", "edge"):
            raise TrainsetError(
                f"augment: shift_pad must be 'zeros' or 'edge', got {self.shift_pad!r}."
            )
        if self.rescale is not None:
            low, high = (float(v) for v in self.rescale)
            if not 0 < low <= high:
                raise TrainsetError(
                    "augment: rescale must be (low, high) with 0 < low <= high, "
                    f"got {self.rescale}."
                )
            object.__setattr__(self, "rescale", (low, high))

    @property
    def enabled(self) -> bool:
        """Whether any augmentation is switched on."""
        return self.poisson or self.max_shift > 0 or self.rescale is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for provenance records)."""
        d = asdict(self)
        d["rescale"] = list(self.rescale) if self.rescale is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Augment:
        """Inverse of :meth:`to_dict`; unknown keys raise a TrainsetError."""
        try:
            rescale = d.get("rescale")
            return cls(**{**d, "rescale": tuple(rescale) if rescale is not None else None})
        except TypeError as err:
            raise TrainsetError(
                f"augment: bad keys in {sorted(d)}; valid: {sorted(asdict(cls()))}."
            ) from err


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator owning sample ``index`` in ``epoch``: same triple, same draws, anywhere."""
    return np.random.default_rng([int(seed), int(epoch), int(index)])


def augment_sample(x: np.ndarray, cfg: Augment, rng: np.random.Generator) -> np.ndarray:
    """Augment one sample shaped ``(feature, season_week, place)``; returns a new array."""
    return augment_batch(np.asarray(x)[None], cfg, [rng])[0]


def augment_batch(
    x: np.ndarray, cfg: Augment, rngs: Sequence[np.random.Generator]
) -> np.ndarray:
    """Augment a batch shaped ``(batch, feature, season_week, place)``, one generator a sample.

    Scalar draws and the Poisson draw need each sample's own stream (that is what makes them
    independent of batching); everything else is vectorised over the batch.
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise TrainsetError(
            f"augment: expected (batch, feature, season_week, place), got shape {x.shape}."
        )
    if len(rngs) != len(x):
        raise TrainsetError(f"augment: got {len(rngs)} generators for a batch of {len(x)}.")
    out = x.astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32)
    if not cfg.enabled:
        return out
    factors, shifts = _draw_scalars(cfg, rngs)
    if factors is not None:
        out *= factors.astype(out.dtype).reshape((-1,) + (1,) * (out.ndim - 1))
    if cfg.poisson:
        out = poisson_resample(out, rngs)
    if shifts is not None:
        out = shift_weeks(out, shifts, cfg.shift_pad)
    return out


def _draw_scalars(
    cfg: Augment, rngs: Sequence[np.random.Generator]
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per-sample rescale factor and shift, drawn in a fixed order from each stream."""
    factors = np.empty(len(rngs)) if cfg.rescale is not None else None
    shifts = np.empty(len(rngs), dtype=np.int64) if cfg.max_shift > 0 else None
    log_low, log_high = np.log(cfg.rescale) if cfg.rescale is not None else (0.0, 0.0)
    for b, rng in enumerate(rngs):
        if factors is not None:
            factors[b] = np.exp(rng.uniform(log_low, log_high))
        if shifts is not None:
            shifts[b] = rng.integers(-cfg.max_shift, cfg.max_shift, endpoint=True)
    return factors, shifts


def poisson_resample(x: np.ndarray, rngs: Sequence[np.random.Generator]) -> np.ndarray:
    """Replace each value of sample ``b`` by ``Poisson(value)`` drawn from ``rngs[b]``.

    Raises
    ------
    TrainsetError
        If a value is negative or not finite (no Poisson mean).
    """
    if not (np.isfinite(x).all() and (x >= 0).all()):
        raise TrainsetError(
            "augment: Poisson resampling needs finite non-negative values (counts); "
            "switch `poisson` off for signed or transformed data."
        )
    return np.stack([rng.poisson(lam) for rng, lam in zip(rngs, x)]).astype(x.dtype)


def shift_weeks(x: np.ndarray, shifts: np.ndarray, pad: str = "zeros") -> np.ndarray:
    """Move sample ``b`` by ``shifts[b]`` weeks along the week axis (positive = later).

    ``out[b, :, w] = x[b, :, w - shifts[b]]``; weeks with no source are zeros (``pad="zeros"``)
    or the nearest edge week (``pad="edge"``).
    """
    n_weeks = x.shape[WEEK_AXIS]
    src = np.arange(n_weeks)[None, :] - np.asarray(shifts)[:, None]  # (batch, week)
    index = np.clip(src, 0, n_weeks - 1)
    out = np.take_along_axis(x, index[:, None, :, None], axis=x.ndim + WEEK_AXIS)
    if pad == "zeros":
        valid = (src >= 0) & (src < n_weeks)
        out = np.where(valid[:, None, :, None], out, out.dtype.type(0))
    return out


CONFIG_KEY = "augment"
"""The run-config key holding :class:`Augment` options (``TrainingConfig.augment``)."""
_OPTION_TYPES = {"poisson": "true or false", "max_shift": "an integer >= 0",
                 "shift_pad": "'zeros' or 'edge'", "rescale": "[low, high] or null"}


def config_problems(options: Any, key: str = CONFIG_KEY) -> list[str]:
    """Every problem of a run config's ``augment`` mapping, each naming ``augment.<option>``.

    Checked at start-up, before any data is read, so a typo (``max_shfit``) never trains an
    un-augmented model; an empty mapping means no augmentation.
    """
    import difflib

    if not isinstance(options, dict):
        return [f"{key}: expected a mapping of augment options, got {options!r}"]
    problems = []
    for name in options:
        if name not in _OPTION_TYPES:
            close = difflib.get_close_matches(str(name), list(_OPTION_TYPES), n=1)
            hint = f", did you mean {close[0]}" if close else ""
            problems.append(f"{key}.{name}: unknown key{hint}. Valid keys: {', '.join(_OPTION_TYPES)}")
    for name, value in options.items():
        if name in _OPTION_TYPES and not _option_ok(name, value):
            problems.append(f"{key}.{name}: expected {_OPTION_TYPES[name]}, got {value!r}")
    rescale = options.get("rescale")
    if not problems and rescale is not None and not 0 < rescale[0] <= rescale[1]:
        problems.append(f"{key}.rescale: must be [low, high] with 0 < low <= high, got {rescale!r}")
    return problems


def _option_ok(name: str, value: Any) -> bool:
    """Whether ``value`` has the type option ``name`` needs (bool is not an int here)."""
    number = (int, float)
    if name == "poisson":
        return isinstance(value, bool)
    if name == "max_shift":
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if name == "shift_pad":
        return value in ("zeros", "edge")
    return value is None or (isinstance(value, (list, tuple)) and len(value) == 2 and all(
        isinstance(v, number) and not isinstance(v, bool) for v in value))


def from_config(options: dict[str, Any] | None) -> Augment:
    """The :class:`Augment` a run config's ``augment`` mapping describes (``{}``: all off)."""
    return Augment.from_dict(dict(options or {}))
