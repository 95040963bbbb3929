"""Model registry: a small, honest model per domain, each built from config params and dataset info.

Every model is an ``nn.Module`` whose ``forward(batch) -> dict`` returns ``pred`` and ``target``
(and optionally ``mask``, bool, True where an entry counts), so one trainer trains any model with
any registered loss ``loss(pred, target, mask)``. Classification logits keep the class axis last.

========== ====================================== =====================================================
name       data                                   model
========== ====================================== =====================================================
mlp        any: one variable -> another           :class:`~trainset.models.mlp.MLP`
world_mlp  macro worlds (mixed-world batches)     :class:`~trainset.models.worlds.WorldMLP`
sequence   the six sequence tasks                 :class:`~trainset.models.sequence.SequenceModel`
flight     flight thresholds                      :class:`~trainset.models.flight.FlightNet`
diffusion  flu frames                             :class:`~trainset.models.diffusion.FrameDiffusion`
========== ====================================== =====================================================

``info`` describes the dataset (what :func:`describe_dataset` returns for a stored dataset)::

    {"task": "seq2static_classification",
     "variables": {"data": {"shape": [64, 1], "dtype": "float32"},   # per sample, no N axis
                   "labels": {"shape": [], "dtype": "int64"}},
     "num_classes": 3, "vocab_size": None, "n_sites": None,
     "worlds": {"nk": {"theta": [12], "irfs": [3, 41, 3]}, ...}}      # several parts only

Weights are initialised with torch's global RNG only: ``torch.manual_seed(s)`` before
:func:`build_model` fixes them.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from torch import nn

from trainset.errors import TrainsetError
from trainset.models.diffusion import FrameDiffusion
from trainset.models.flight import FlightNet
from trainset.models.mlp import MLP, ConfiguredModel
from trainset.models.sequence import SequenceModel
from trainset.models.worlds import WorldMLP
from trainset.tasks import TASKS, guess_task, natural_model

logger = logging.getLogger(__name__)

__all__ = ["MODELS", "ConfiguredModel", "FlightNet", "FrameDiffusion", "MLP", "SequenceModel", "WorldMLP",
           "build_model", "describe_dataset"]

MODELS: dict[str, type] = {cls.name: cls for cls in (MLP, WorldMLP, SequenceModel, FlightNet, FrameDiffusion)}
"""Model name -> class (each has ``from_config(params, info)`` and ``DEFAULTS``)."""


def build_model(name: str, params: dict[str, Any] | None, info: dict[str, Any]) -> nn.Module:
    """Build model ``name`` from its config ``params`` for the dataset described by ``info``.

    Parameters
    ----------
    name : str
        A key of :data:`MODELS`, or ``auto``: the natural model of ``info["task"]``
        (:func:`~trainset.tasks.natural_model`; logged).
    params : dict or None
        The model's params (unknown keys are errors; missing ones take the model's defaults).
    info : dict
        Dataset description (see the module docstring and :func:`describe_dataset`).

    Returns
    -------
    torch.nn.Module
        A :class:`~trainset.models.mlp.ConfiguredModel`; ``model.config()`` rebuilds it.

    Raises
    ------
    TrainsetError
        Unknown model name or param, a bad param value, or a dataset the model cannot fit.
    """
    if name == "auto":
        name = natural_model(info.get("task"))
        logger.info("model.name auto: %s, the natural model of task %s", name, info.get("task"))
    if name not in MODELS:
        raise TrainsetError(f"unknown model {name!r}. Fix: use one of {sorted(MODELS)} or auto")
    _check_tokens(name, info)
    model = MODELS[name].from_config(params, info)
    logger.info("built model %s: %d weights, params %s", name, model.num_parameters(), model.params)
    return model


def _check_tokens(name: str, info: dict[str, Any]) -> None:
    """``data.input_encoding: one_hot`` needs a model that encodes token ids (class attribute
    ``reads_tokens``); any other model would read the ids as numbers, the encoding ignored."""
    if info.get("input_encoding") != "one_hot" or getattr(MODELS[name], "reads_tokens", False):
        return
    readers = sorted(n for n, cls in MODELS.items() if getattr(cls, "reads_tokens", False))
    raise TrainsetError(f"model.name {name!r} reads data as numbers and cannot use data.input_encoding: one_hot "
                        f"(its token ids would be read as magnitudes). Fix: use model.name: {' or '.join(readers)} "
                        "(or auto), or remove data.input_encoding and data.vocab_size")


def describe_dataset(source: Any) -> dict[str, Any]:
    """The ``info`` dict of a dataset: per-sample variable shapes and dtypes, task and sizes.

    Parameters
    ----------
    source : Collection, Reader, MappedDataset or WdsDataset
        Anything that knows its parts (names, variables) and attributes.

    Returns
    -------
    dict
        ``task`` (the stored task, else :func:`~trainset.tasks.guess_task` of the variable names:
        ``irf`` for theta/irfs parts, ``frames`` for frames, ``thresholds`` for features/targets),
        ``variables`` (name -> ``{"shape", "dtype"}``, per sample; with several parts the widest
        shape over parts, i.e. the padded batch's), ``num_classes``, ``vocab_size``, ``n_sites``
        (from ``site_ids``), ``target_seq_len`` and, for several parts or a task whose parts are
        worlds (:attr:`~trainset.tasks.TaskSpec.per_part`), ``worlds`` (name -> ``{"theta": [P],
        "irfs": [S, H+1, V]}``) and ``parts`` (names in order).
    """
    if not hasattr(source, "parts"):  # a torch dataset: describe its reader
        source = getattr(source, "reader", source)
    parts = _parts(source)
    attrs = dict(getattr(source, "attrs", {}) or {})
    variables: dict[str, dict[str, Any]] = {}
    for part in parts.values():
        for var, (shape, dtype) in part.items():
            if var in variables and len(variables[var]["shape"]) == len(shape):
                shape = [max(a, b) for a, b in zip(variables[var]["shape"], shape)]
            variables[var] = {"shape": list(shape), "dtype": dtype}
    task = attrs.get("task") or guess_task(variables)
    info: dict[str, Any] = {"task": task, "variables": variables, "num_classes": attrs.get("num_classes"),
                            "vocab_size": attrs.get("vocab_size"), "target_seq_len": attrs.get("target_seq_len"),
                            "n_sites": len(attrs["site_ids"]) if attrs.get("site_ids") is not None else None}
    spec = TASKS.get(task)
    if (spec is not None and spec.per_part) or len(parts) > 1:
        info["parts"] = list(parts)
        info["worlds"] = {name: {"theta": part["theta"][0], "irfs": part["irfs"][0]}
                          for name, part in parts.items() if "theta" in part and "irfs" in part}
    return info


def _parts(source: Any) -> dict[str, dict[str, tuple[list[int], str]]]:
    """Part name -> variable -> (per-sample shape, dtype name), from a Collection or a reader."""
    if hasattr(source, "parts") and isinstance(source.parts, dict):  # Collection
        return {name: {var: ([int(s) for s in part[var].shape[1:]], str(part[var].dtype)) for var in part.data_vars}
                for name, part in source.parts.items()}
    if hasattr(source, "parts"):  # Reader: list of PartInfo
        return {p.name: {var: ([int(s) for s in v.shape], str(np.dtype(v.dtype))) for var, v in p.variables.items()}
                for p in source.parts}
    raise TrainsetError(f"describe_dataset: cannot describe a {type(source).__name__}. "
                        "Fix: pass a Collection, a reader or a dataset from trainset.open_dataset")
