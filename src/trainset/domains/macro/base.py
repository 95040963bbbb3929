"""What every macro world provides: named parameters with bounds and priors, and seeded draws.

A world is a family of economies. :meth:`World.draw` maps (seed, index) to one economy: a
parameter vector ``theta`` and its impulse responses ``irfs[shock, horizon, variable]``, or a
rejection (an indeterminate NK draw, an explosive VAR). Each draw has its own generator,
``named_rng(seed, world name, index)``, so draw ``i`` is the same whatever the number of draws,
their order or the process (the old code had no seeds at all). Rejections carry a reason so
the caller can count them by cause.

A world splits a draw into :meth:`World.propose` (one ``theta`` from its generator) and
:meth:`World.evaluate` (solve and propagate many ``theta`` at once). Solving thousands of tiny
systems one by one is dominated by Python overhead; numpy's stacked linear algebra does them
row by row in one call, with results that do not depend on the batch. ``evaluate`` is also the
ground truth for any ``theta`` a user or an emulator asks about.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any, Sequence

import numpy as np

from trainset.rng import named_rng

logger = logging.getLogger(__name__)

VARIABLES: tuple[str, ...] = ("output", "inflation", "rate")
"""Observed variables of every world, in this order on the last IRF axis."""
HORIZON = 40
"""Default last horizon (quarters); IRFs cover horizons 0..HORIZON."""

Draw = tuple[np.ndarray, np.ndarray]
"""``(theta [n_params] float64, irfs [n_shocks, horizon + 1, 3] float64)``."""


def uniform_priors(names: list[str], bounds: list[list[float]]) -> dict[str, dict[str, Any]]:
    """Uniform prior dicts ``{"dist": "uniform", "low", "high"}`` keyed by parameter name."""
    return {name: {"dist": "uniform", "low": float(low), "high": float(high)}
            for name, (low, high) in zip(names, bounds)}


def draw_uniform(rng: np.random.Generator, bounds: list[list[float]]) -> np.ndarray:
    """One vector uniform on the box ``bounds`` (one ``rng.random`` call, so draws are stable)."""
    box = np.asarray(bounds, dtype=float)
    return box[:, 0] + (box[:, 1] - box[:, 0]) * rng.random(len(box))


class World(ABC):
    """A family of economies with a fixed parameter layout and fixed shocks.

    Subclasses set :attr:`name`, :attr:`param_names`, :attr:`shock_names` and implement
    :meth:`propose` (one parameter vector from a generator) and :meth:`evaluate` (IRFs of many
    parameter vectors at once, vectorised over the leading axis). :attr:`param_bounds` and
    :attr:`param_priors` may be properties when they need work (``var_us`` fits a VAR first).

    Attributes
    ----------
    name : str
        Registry key, also the name the seed is derived from.
    param_names : list of str
        Names of the entries of ``theta``, in order.
    param_bounds : list of [low, high]
        Support of each parameter (the prior's, or a +-3 sd box for truncated normal priors).
    param_priors : dict
        Parameter name -> prior dict, e.g. ``{"dist": "uniform", "low": 0, "high": 1}``.
    shock_names : list of str
        Structural shocks, the first IRF axis.
    variable_names : list of str
        ``["output", "inflation", "rate"]``, the last IRF axis.
    """

    name: str
    param_names: list[str]
    shock_names: list[str]
    variable_names: list[str] = list(VARIABLES)
    description: str = ""
    _bounds: list[list[float]]

    @property
    def param_bounds(self) -> list[list[float]]:
        """``[low, high]`` per parameter."""
        return self._bounds

    @property
    def param_priors(self) -> dict[str, dict[str, Any]]:
        """Prior dict per parameter (uniform on the bounds unless a subclass says otherwise)."""
        return uniform_priors(self.param_names, self.param_bounds)

    def rng(self, seed: int, index: int) -> np.random.Generator:
        """The generator of draw ``index``: depends on (seed, world name, index) only."""
        return named_rng(seed, self.name, index)

    @abstractmethod
    def propose(self, rng: np.random.Generator) -> np.ndarray:
        """One candidate ``theta`` [n_params] drawn from the world's prior with ``rng``."""

    @abstractmethod
    def evaluate(self, thetas: np.ndarray, horizon: int = HORIZON) -> tuple[np.ndarray, np.ndarray]:
        """IRFs of parameter rows, and why rows are rejected.

        Parameters
        ----------
        thetas : ndarray [n, n_params]
            Parameter vectors (any values, not only proposals).
        horizon : int
            Last horizon H.

        Returns
        -------
        irfs : ndarray [n, n_shocks, H + 1, 3]
            Responses to one-standard-deviation shocks; NaN in rejected rows.
        status : ndarray [n] of str
            ``""`` for an accepted row, else the rejection reason.
        """

    def try_draw_batch(self, seed: int, indices: Sequence[int], horizon: int = HORIZON) -> list[Draw | str]:
        """Draws ``indices``: each ``(theta, irfs)`` or a rejection reason, computed in one batch.

        Each proposal has its own generator, and the batched linear algebra works row by row,
        so a draw does not depend on which other draws share its batch.
        """
        thetas = np.stack([np.asarray(self.propose(self.rng(seed, int(i))), dtype=float) for i in indices])
        irfs, status = self.evaluate(thetas, horizon)
        return [str(reason) if reason else (thetas[k], irfs[k]) for k, reason in enumerate(status)]

    def try_draw(self, seed: int, index: int, horizon: int = HORIZON) -> Draw | str:
        """Draw ``index``: ``(theta, irfs)``, or a short rejection reason."""
        return self.try_draw_batch(seed, [index], horizon)[0]

    def draw(self, seed: int, index: int, horizon: int = HORIZON) -> Draw | None:
        """Draw ``index``: ``(theta, irfs)``, or ``None`` when the draw is rejected."""
        out = self.try_draw(seed, index, horizon)
        return None if isinstance(out, str) else out

    def metadata(self) -> dict[str, Any]:
        """JSON-able description: parameter names/bounds/priors, shock and variable names."""
        return {"param_names": list(self.param_names),
                "param_bounds": [[float(lo), float(hi)] for lo, hi in self.param_bounds],
                "param_priors": self.param_priors, "shock_names": list(self.shock_names),
                "variable_names": list(self.variable_names), "description": self.description}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, params={len(self.param_names)}, "
                f"shocks={len(self.shock_names)})")


def rejected(shape: tuple[int, ...], status: np.ndarray, irfs: np.ndarray | None = None) -> np.ndarray:
    """An IRF array of ``shape`` with accepted rows (``status == ""``) from ``irfs``, NaN elsewhere."""
    out = np.full(shape, np.nan)
    if irfs is not None:
        out[status == ""] = irfs
    return out
