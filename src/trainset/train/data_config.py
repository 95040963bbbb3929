"""The ``data`` section applied to a dataset's description (the model is built from the result).

Each of these keys used to be validated and then never read. Here each one changes what the
model is built for, or stops the run before the first step with the key named
(``training.paradigm`` / ``mapping`` are checked, or choose the task, in
:func:`trainset.tasks.resolve_task`, called by :func:`~trainset.train.run.prepare_run` first):

- ``data.num_classes`` sets the class count the model's head is built with (overriding the
  dataset's ``num_classes`` attribute); :func:`check_classes` refuses any label >= it. A task
  that is not classification (:attr:`~trainset.tasks.TaskSpec.classification`) refuses it.
- ``data.input_encoding: one_hot`` with ``data.vocab_size`` makes ``data`` token ids encoded
  over ``vocab_size``; a dataset whose ``data`` is float, or that stores another vocabulary
  size, is an error.
- ``data.variables`` restricts the variables the model is built for (unknown names are refused
  where the splits are opened, :func:`trainset.train.run.open_split`, before this runs).
"""

from __future__ import annotations

import copy
from typing import Any

from trainset.errors import TrainsetError
from trainset.tasks import TASKS

__all__ = ["apply_data_config", "check_classes"]


def apply_data_config(info: dict[str, Any], cfg: Any, where: Any) -> dict[str, Any]:
    """A copy of the dataset description ``info`` as the run's config shapes it (see the module)."""
    info = copy.deepcopy(info)
    data = cfg.data
    if data.variables is not None:
        _restrict(info, data.variables)
    if data.num_classes is not None:
        _classes(info, data.num_classes, where)
    if data.input_encoding == "one_hot":
        _tokens(info, data.vocab_size, where)
    return info


def _restrict(info: dict[str, Any], names: tuple[str, ...]) -> None:
    stored = info.get("variables") or {}
    info["variables"] = {name: spec for name, spec in stored.items() if name in names}


def _classes(info: dict[str, Any], num_classes: int, where: Any) -> None:
    """``data.num_classes`` sizes a classification head; any other task has none to size."""
    spec = TASKS.get(info.get("task"))
    if spec is None or not spec.classification:
        raise TrainsetError(f"{where}: data.num_classes is {num_classes}, but task {info.get('task')!r} is not a "
                            "classification task (it has no class ids to count). Fix: remove data.num_classes")
    info["num_classes"] = int(num_classes)


def _tokens(info: dict[str, Any], vocab_size: int, where: Any) -> None:
    data = (info.get("variables") or {}).get("data")
    if data is None:
        raise TrainsetError(f"{where}: data.input_encoding is one_hot but the dataset has no 'data' variable. "
                            "Fix: remove data.input_encoding")
    if not str(data["dtype"]).startswith(("int", "uint")):
        raise TrainsetError(f"{where}: data.input_encoding is one_hot but the dataset's data is {data['dtype']}, "
                            "not integer token ids. Fix: remove data.input_encoding and data.vocab_size")
    stored = info.get("vocab_size")
    if stored is not None and int(stored) != int(vocab_size):
        raise TrainsetError(f"{where}: data.vocab_size is {vocab_size}, but the dataset stores vocab_size "
                            f"{stored}. Fix: set data.vocab_size: {stored}")
    info["vocab_size"] = int(vocab_size)
    info["input_encoding"] = "one_hot"  # build_model refuses a model that would read the ids as numbers


def check_classes(batch: dict, info: dict[str, Any], num_classes: int | None) -> None:
    """Refuse class ids >= ``data.num_classes`` in a batch's classification labels (vectorised)."""
    if num_classes is None:
        return
    spec = TASKS.get(info.get("task"))
    labels = batch.get(spec.target if spec is not None and spec.target else "labels")
    if labels is None or not hasattr(labels, "dtype") or labels.dtype.is_floating_point or labels.numel() == 0:
        return
    top = int(labels.max())
    if top >= num_classes:
        raise TrainsetError(f"data.num_classes is {num_classes}, but a label is {top}. "
                            f"Fix: set data.num_classes to at least {top + 1}, or remove it to use the dataset's count")
