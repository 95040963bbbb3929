"""The names a run config may use, without torch: models, losses, penalties and their parameters.

The workflow checks every run config when Snakemake builds its DAG (``check_runs`` in
``workflow/rules/common.smk``), even for a dry run or a no-op rerun. Importing torch for that
costs about 1.5 s per ``snakemake`` call, so the facts a config check needs live here, torch-free:
the model names, each loss and penalty with its keyword parameters and their value check, and
:class:`LossSpec`. The functions themselves are registered by :mod:`trainset.train.losses`,
whose ``register_loss`` refuses a built-in whose signature differs from what is declared here
(so the two cannot drift), and declares the parameters of any new loss from its signature.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trainset.errors import TrainsetError

__all__ = ["HORIZON_WEIGHTS", "LOSS_PARAMS", "MODEL_NAMES", "PENALTY_PARAMS", "REFUSED_LOSSES", "LossSpec",
           "declare_term"]

MODEL_NAMES = ("mlp", "world_mlp", "sequence", "flight", "diffusion")
"""Names of :data:`trainset.models.MODELS` (a test keeps the two equal)."""

HORIZON_WEIGHTS = ("uniform", "exponential", "impact")
"""Weightings over IRF horizons of the ``horizon_*`` losses."""

Check = Callable[[dict[str, Any]], None]


# --------------------------------------------------------------------------- parameter checks

def _number(params: dict, key: str, lo: float | None = None, hi: float | None = None,
            lo_open: bool = False) -> None:
    if key not in params:
        return
    v = params[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise TrainsetError(f"param {key!r} must be a finite number, got {v!r}")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise TrainsetError(f"param {key!r} must be {'>' if lo_open else '>='} {lo}, got {v}")
    if hi is not None and v > hi:
        raise TrainsetError(f"param {key!r} must be <= {hi}, got {v}")


def _check_ce(p: dict[str, Any]) -> None:
    _number(p, "label_smoothing", 0.0, 1.0)


def _check_bce(p: dict[str, Any]) -> None:
    pw = p.get("pos_weight")
    values = pw if isinstance(pw, list) else [pw]
    if pw is not None and not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                  and math.isfinite(v) and v > 0 for v in values):
        raise TrainsetError(f"param 'pos_weight' must be a positive number or a list of them, got {pw!r}")


def _check_gap(p: dict[str, Any]) -> None:
    _number(p, "margin", 0.0)


def _check_rich_margin(p: dict[str, Any]) -> None:
    _number(p, "margin", 0.0)
    _number(p, "scale", 0.0, lo_open=True)


def _check_cutoff(p: dict[str, Any]) -> None:
    _number(p, "cutoff", 0.0, lo_open=True)


def _check_horizon(p: dict[str, Any]) -> None:
    if "weights" in p and p["weights"] not in HORIZON_WEIGHTS:
        raise TrainsetError(f"param 'weights' must be one of {list(HORIZON_WEIGHTS)}, got {p['weights']!r}")
    _number(p, "tau", 0.0, lo_open=True)
    _number(p, "lambda_smooth", 0.0)


def _check_monotone(p: dict[str, Any]) -> None:
    if "logits" in p and not isinstance(p["logits"], bool):
        raise TrainsetError(f"param 'logits' must be true or false, got {p['logits']!r}")
    if "dim" in p and (isinstance(p["dim"], bool) or not isinstance(p["dim"], int)):
        raise TrainsetError(f"param 'dim' must be an integer, got {p['dim']!r}")


# --------------------------------------------------------------------------- the registries

_HORIZON = ("weights", "tau", "lambda_smooth")
LOSS_PARAMS: dict[str, tuple[str, ...]] = {
    "mse": (), "mae": (), "cross_entropy": ("label_smoothing",), "bce": ("pos_weight",),
    "gap_loss": ("margin",), "final_timestep_zero_mse": (), "horizon_mse": _HORIZON, "horizon_mae": _HORIZON,
    "top_gap_loss": ("margin",), "rich_margin_loss": ("margin", "scale"), "mse_gradient_cutoff": ("cutoff",),
    "autoregressive_loss": (), "autoregressive_cross_entropy": (),
}
"""Loss name -> its keyword parameters (``loss(pred, target, mask=None, **params)``)."""
PENALTY_PARAMS: dict[str, tuple[str, ...]] = {"l1": (), "l2": (), "monotonicity": ("logits", "dim")}
"""Penalty name -> its keyword parameters (``penalty(model, pred=None, **params)``)."""
CHECKS: dict[str, Check] = {"cross_entropy": _check_ce, "bce": _check_bce, "gap_loss": _check_gap,
                            "top_gap_loss": _check_gap, "rich_margin_loss": _check_rich_margin,
                            "mse_gradient_cutoff": _check_cutoff,
                            "horizon_mse": _check_horizon, "horizon_mae": _check_horizon,
                            "monotonicity": _check_monotone}
"""Name -> ``check(params)``, raising :class:`TrainsetError` on a bad value."""
BUILT_IN = frozenset(LOSS_PARAMS) | frozenset(PENALTY_PARAMS)
_SOEN = "it acts on internals of soen_toolkit's superconducting (SOEN) networks that trainset's models do not have"
REFUSED_LOSSES: dict[str, str] = {
    "reg_J_loss": f"regularises the SOEN coupling matrices J; {_SOEN}. Fix: use the l1 or l2 penalty on weights",
    "get_off_the_ground_loss": f"pushes SOEN neuron states away from zero; {_SOEN}",
    "exp_high_state_penalty": f"penalises SOEN neuron states above their working range; {_SOEN}",
    "gravity_quantization_loss": f"pulls SOEN couplings towards the hardware's discrete levels; {_SOEN} "
                                 "(trainset does no quantisation-aware training)",
    "branching_loss": f"shapes SOEN dendritic trees; {_SOEN}",
}
"""Seed-001 loss names refused by name, with the reason (never silently skipped as the old code did)."""


def declare_term(kind: str, name: str, params: tuple[str, ...], check: Check | None) -> None:
    """Declare a loss or penalty (its parameters and check), as ``register_loss`` does.

    A built-in name must be declared exactly as above: a function whose keyword parameters
    differ is a bug in :mod:`trainset.train.losses`, refused on import.
    """
    registry = LOSS_PARAMS if kind == "loss" else PENALTY_PARAMS
    if name in BUILT_IN:
        if registry.get(name) != params or (check is not None and CHECKS.get(name) is not check):
            raise TypeError(f"{kind} {name!r}: declared in trainset.train.names with params "
                            f"{registry.get(name)}, registered with {params}")
        return
    if name in LOSS_PARAMS or name in PENALTY_PARAMS:
        raise TrainsetError(f"loss/penalty {name!r} is already registered")
    registry[name] = tuple(params)
    if check is not None:
        CHECKS[name] = check


# --------------------------------------------------------------------------- one term of the objective

@dataclass(frozen=True)
class LossSpec:
    """One term of the objective: a registered loss or penalty, its weight and parameters.

    Made valid or not at all: an unknown name, a parameter the function does not take, a bad
    parameter value or a negative weight raise :class:`TrainsetError` on construction.
    """

    name: str = "mse"
    """A name in :data:`LOSS_PARAMS` or :data:`PENALTY_PARAMS`."""
    weight: float = 1.0
    """Multiplier of this term in the total (>= 0; 0 logs the term without training on it)."""
    params: dict[str, Any] = field(default_factory=dict)
    """Keyword parameters of the function, e.g. ``{margin: 0.2}`` for ``gap_loss``."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TrainsetError(f"loss name must be a string, got {self.name!r}")
        valid = LOSS_PARAMS.get(self.name, PENALTY_PARAMS.get(self.name))
        if valid is None and self.name in REFUSED_LOSSES:
            raise TrainsetError(f"loss {self.name!r} is not available in trainset: {REFUSED_LOSSES[self.name]}")
        if valid is None:
            raise TrainsetError(
                f"unknown loss {self.name!r}. Registered losses: {', '.join(sorted(LOSS_PARAMS))}; "
                f"penalties: {', '.join(sorted(PENALTY_PARAMS))}")
        w = self.weight
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise TrainsetError(f"loss {self.name!r}: weight must be a finite number >= 0, got {w!r}")
        object.__setattr__(self, "weight", float(w))
        if not isinstance(self.params, Mapping):
            raise TrainsetError(f"loss {self.name!r}: params must be a mapping, got {self.params!r}")
        try:
            params = json.loads(json.dumps(dict(self.params)))
        except (TypeError, ValueError) as err:
            raise TrainsetError(f"loss {self.name!r}: params must be plain JSON values ({err})") from None
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise TrainsetError(f"loss {self.name!r}: unknown params {unknown}; valid params: "
                                f"{sorted(valid) or 'none'}")
        if self.name in CHECKS:
            try:
                CHECKS[self.name](params)
            except TrainsetError as err:
                raise TrainsetError(f"loss {self.name!r}: {err}") from None
        object.__setattr__(self, "params", params)

    @property
    def kind(self) -> str:
        """``"loss"`` or ``"penalty"``."""
        return "loss" if self.name in LOSS_PARAMS else "penalty"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able ``{name, weight, params}``."""
        return {"name": self.name, "weight": self.weight, "params": json.loads(json.dumps(self.params))}

    @classmethod
    def from_dict(cls, d: LossSpec | Mapping[str, Any] | str) -> LossSpec:
        """A spec from ``{name, weight?, params?}`` (or just a name); other keys are errors."""
        if isinstance(d, LossSpec):
            return d
        if isinstance(d, str):
            return cls(d)
        if not isinstance(d, Mapping):
            raise TrainsetError(f"a loss must be a mapping {{name, weight, params}}, got {d!r}")
        unknown = sorted(set(d) - {"name", "weight", "params"})
        if unknown:
            raise TrainsetError(f"loss: unknown keys {unknown}; valid keys: ['name', 'params', 'weight']")
        if "name" not in d:
            raise TrainsetError(f"loss {dict(d)!r} has no 'name'")
        return cls(d["name"], d.get("weight", 1.0), d.get("params") or {})
