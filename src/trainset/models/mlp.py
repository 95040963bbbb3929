"""A generic MLP, and the small helpers every model of :mod:`trainset.models` shares.

The MLP maps one stored variable (flattened) to another (flattened, then reshaped to the
target's per-sample shape). It is the baseline for any dataset: the trainer can fit it before
anything domain-specific, and a domain model that cannot beat it is not earning its keep.
An integer (int64) target is a classification target: the MLP then emits logits with the class
axis last, ``[B, *target_shape, C]`` (``[B, C]`` for one label a sample), ``C =
info["num_classes"]``.

Helpers (used by the other model modules): :func:`resolve_params` (defaults + unknown-key
errors), :func:`check_choice`, :func:`check_int`, :func:`check_hidden`, :func:`make_mlp`,
:func:`variable` (a variable's per-sample shape and dtype from ``info``) and
:class:`ConfiguredModel`, the base class that keeps the resolved ``params`` and ``info`` so a
checkpoint can rebuild the model. Weights are drawn with torch's global RNG only, so the
caller's ``torch.manual_seed`` fixes them.
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any, ClassVar

import torch
from torch import nn

from trainset.errors import TrainsetError

logger = logging.getLogger(__name__)

__all__ = ["ACTIVATIONS", "ConfiguredModel", "MLP", "check_choice", "check_float", "check_hidden", "check_int",
           "is_integer_dtype", "make_mlp", "num_classes",
           "resolve_params", "variable"]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU}
"""Activation name -> module class (the ``activation`` param of the MLP-based models)."""


# ---------------------------------------------------------------------------------- helpers


def resolve_params(model: str, defaults: dict[str, Any], params: dict[str, Any] | None) -> dict[str, Any]:
    """``defaults`` updated with ``params``; an unknown key is an error naming the valid ones.

    Raises
    ------
    TrainsetError
        If ``params`` is not a mapping or has a key ``defaults`` lacks.
    """
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise TrainsetError(f"model {model!r}: params must be a mapping, got {type(params).__name__}. "
                            f"Fix: give model.params as key: value pairs ({', '.join(defaults)})")
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise TrainsetError(f"model {model!r}: unknown param(s) {unknown}. "
                            f"Fix: use only {sorted(defaults)}")
    out = copy.deepcopy(defaults)
    out.update(copy.deepcopy(params))
    return out


def check_choice(model: str, key: str, value: Any, choices: tuple[str, ...] | list[str]) -> str:
    """``value`` if it is one of ``choices``, else an error listing them."""
    if value not in choices:
        raise TrainsetError(f"model {model!r}: {key}={value!r} is not valid. Fix: use one of {list(choices)}")
    return str(value)


def check_int(model: str, key: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum`` (bools refused), else an error."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise TrainsetError(f"model {model!r}: {key} must be an integer >= {minimum}, got {value!r}. "
                            f"Fix: set model.params.{key}")
    return int(value)


def check_float(model: str, key: str, value: Any, low: float = 0.0, high: float = math.inf) -> float:
    """``value`` as a float in ``[low, high)``, else an error."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value < high:
        raise TrainsetError(f"model {model!r}: {key} must be a number in [{low}, {high}), got {value!r}. "
                            f"Fix: set model.params.{key}")
    return float(value)


def check_hidden(model: str, key: str, value: Any) -> list[int]:
    """A list of positive layer widths (may be empty: a linear model)."""
    if not isinstance(value, (list, tuple)) or any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                                                   for v in value):
        raise TrainsetError(f"model {model!r}: {key} must be a list of positive integers, got {value!r}. "
                            f"Fix: e.g. {key}: [128, 64]")
    return [int(v) for v in value]


def make_mlp(in_dim: int, hidden: list[int], out_dim: int | None, activation: str = "relu",
             dropout: float = 0.0) -> nn.Sequential:
    """Linear -> activation -> dropout for each width of ``hidden``, then a linear output layer.

    ``out_dim=None`` leaves the output layer out (the body of a model with its own head).
    """
    layers: list[nn.Module] = []
    width = in_dim
    for size in hidden:
        layers += [nn.Linear(width, size), ACTIVATIONS[activation]()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = size
    if out_dim is not None:
        layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def variable(info: dict[str, Any], name: str, model: str) -> tuple[list[int], str]:
    """Per-sample shape (without the sample axis) and dtype of variable ``name`` in ``info``.

    Raises
    ------
    TrainsetError
        If ``info`` does not describe ``name``.
    """
    variables = info.get("variables") or {}
    if name not in variables:
        raise TrainsetError(f"model {model!r}: the dataset has no variable {name!r} (it has "
                            f"{sorted(variables)}). Fix: pick a model for this dataset, or set the model's "
                            f"input/target params")
    spec = variables[name]
    return [int(s) for s in spec.get("shape", [])], str(spec.get("dtype", "float32"))


def num_classes(info: dict[str, Any], model: str) -> int:
    """``info["num_classes"]`` as a positive int, or an error saying where to set it."""
    value = info.get("num_classes")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TrainsetError(f"model {model!r}: an integer target needs info['num_classes'] >= 1, got {value!r}. "
                            "Fix: set data.num_classes (or store num_classes in the dataset's attrs)")
    return int(value)


def is_integer_dtype(dtype: str) -> bool:
    """Whether a dtype name is an integer kind (a classification target or token ids)."""
    return str(dtype).startswith(("int", "uint"))


class ConfiguredModel(nn.Module):
    """Base class: keeps ``params`` (resolved, with defaults) and ``info`` to rebuild the model.

    ``model.config()`` is ``{"name", "params", "info"}``, all JSON-able, so a checkpoint can store
    it next to the weights and ``build_model(**config)`` rebuilds the same architecture.
    """

    name: ClassVar[str] = ""

    def __init__(self, params: dict[str, Any], info: dict[str, Any]) -> None:
        super().__init__()
        self.params = params
        self.info = info

    def config(self) -> dict[str, Any]:
        """Name, resolved params and dataset info: what rebuilds this architecture."""
        return {"name": self.name, "params": copy.deepcopy(self.params), "info": copy.deepcopy(self.info)}

    def num_parameters(self) -> int:
        """Number of trainable weights."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


# ---------------------------------------------------------------------------------- the MLP

_PAIRS = (("data", "labels"), ("features", "targets"), ("theta", "irfs"))
"""Default (input, target) variable pairs, tried in order."""


def default_keys(info: dict[str, Any], model: str) -> tuple[str, str]:
    """The (input, target) pair the dataset's variables suggest; ``data`` alone reconstructs."""
    names = set(info.get("variables") or {})
    for pair in _PAIRS:
        if set(pair) <= names:
            return pair
    if "data" in names:
        return "data", "data"
    raise TrainsetError(f"model {model!r}: cannot guess input and target among variables {sorted(names)}. "
                        "Fix: set model.params.input and model.params.target")


class MLP(ConfiguredModel):
    """Flattened input variable -> hidden layers -> target variable (or class logits).

    Params
    ------
    hidden : list of int, default [128, 64]
    activation : str, default "relu" (one of :data:`ACTIVATIONS`)
    dropout : float, default 0.0
    input, target : str or None
        Variable names; default from ``info``: data -> labels, features -> targets,
        theta -> irfs, or data -> data (reconstruction).
    """

    name = "mlp"
    DEFAULTS: ClassVar[dict[str, Any]] = {"hidden": [128, 64], "activation": "relu", "dropout": 0.0,
                                          "input": None, "target": None}

    def __init__(self, params: dict[str, Any], info: dict[str, Any]) -> None:
        super().__init__(params, info)
        self.input_key, self.target_key = params["input"], params["target"]
        in_shape, _ = variable(info, self.input_key, self.name)
        self.target_shape, dtype = variable(info, self.target_key, self.name)
        self.classes = num_classes(info, self.name) if is_integer_dtype(dtype) else None
        out_dim = math.prod(self.target_shape) * (self.classes or 1)
        self.net = make_mlp(math.prod(in_shape), params["hidden"], out_dim, params["activation"], params["dropout"])

    @classmethod
    def from_config(cls, params: dict[str, Any] | None, info: dict[str, Any]) -> "MLP":
        """Validate ``params`` against :attr:`DEFAULTS` and build the model for ``info``."""
        params = resolve_params(cls.name, cls.DEFAULTS, params)
        params["hidden"] = check_hidden(cls.name, "hidden", params["hidden"])
        check_choice(cls.name, "activation", params["activation"], tuple(ACTIVATIONS))
        params["dropout"] = check_float(cls.name, "dropout", params["dropout"], 0.0, 1.0)
        guess = default_keys(info, cls.name) if params["input"] is None or params["target"] is None else None
        params["input"] = params["input"] or guess[0]
        params["target"] = params["target"] or guess[1]
        return cls(params, info)

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """``pred`` ``[B, *target_shape]`` (``[B, *target_shape, C]`` logits for classes), ``target``
        and, when the batch has ``<target>_mask``, ``mask``."""
        x = batch[self.input_key]
        out = self.net(x.reshape(x.shape[0], -1).float())
        shape = [*self.target_shape, self.classes] if self.classes else self.target_shape
        result = {"pred": out.reshape(x.shape[0], *shape), "target": batch[self.target_key]}
        mask = batch.get(f"{self.target_key}_mask")
        if mask is not None:
            result["mask"] = mask
        return result
