"""Task types: which variables a dataset for each task needs, with their shapes, dtypes and values.

The sequence-task guide (seed 001) defines six task types by the shape and dtype of ``labels``
next to ``data`` [N, T, D] float32; the other seeds add flu ``frames``, the macro emulator's
``theta``/``irfs`` and the flight ``features``/``targets``. The old code found mismatches late
and badly: regression labels cast to integers, token layouts the guide documents rejected, bad
token ids clipped. :func:`check_task` instead lists every problem before training, each with its
fix, for any format (it reads only :class:`~trainset.io.base.PartInfo` metadata, and values
through a reader in whole blocks).

Shapes are symbolic: ``("N", "T", "K")`` means rank 3, samples first; a letter seen twice in one
part (``T`` in ``data`` and in seq2seq classification ``labels``) must have the same size, and a
digit is a literal size (the ``1`` of ``[N, T, 1]`` tokens).

:data:`TASKS` is the one registry of task facts: besides the variables, each :class:`TaskSpec`
holds the default scalers, the headline metric and its direction, the evaluation handler (by
name), the target variable and the sequence and per-world flags, which scalers, models,
training and evaluation read from here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from collections.abc import Iterable
from typing import Any

import numpy as np

from trainset.errors import TrainsetError
from trainset.io.base import PartInfo
from trainset.tokens import check_vocab_size

logger = logging.getLogger(__name__)

_SCAN_BYTES = 32 << 20


@dataclass(frozen=True)
class Rule:
    """What one variable of a task must look like.

    ``shapes`` are the accepted symbolic shapes (None: anything); ``dtype`` is an exact dtype name
    or ``"integer"`` (any integer kind); ``values`` names the value check: ``finite`` (no NaN or
    inf), ``classes`` (0..num_classes-1), ``tokens`` (0..vocab_size-1), ``binary`` (0 or 1).
    """

    name: str
    shapes: tuple[tuple[str, ...], ...] | None
    dtype: str | None
    values: str | None = "finite"
    required: bool = True
    meaning: str = ""


@dataclass(frozen=True)
class TaskSpec:
    """A task type and every fact the stages need about it, so a new task is one entry here.

    Parameters
    ----------
    name, description : str
        The canonical name (stored as the dataset attribute ``task``) and a one-line summary.
    rules : tuple of Rule
        The variables a dataset for the task holds (checked by :func:`check_task`).
    aliases : tuple of str
        Other names :func:`get_task` accepts (the guide's long names).
    tokens : bool
        Whether ``data`` may hold token ids instead of floats.
    sequence : {"static", "seq2seq"} or None
        Sequence tasks: one target per sequence (``static``: the model pools over time) or per
        time step (``seq2seq``: labels indexed by time are cut and padded with the inputs).
        None: not a sequence task, recognised by its variables when a dataset stores no task.
    labels_table : ((str, ...), (str, ...)) or None
        Sequence tasks: the key columns of the long labels table and the dims of the framed
        ``labels``; None where there is no labels table.
    scalers : tuple of (variable, kind)
        What is scaled by default: float inputs, and regression targets (their predictions are
        inverted back to data units). Integer labels, site ids and dates are never scaled. A
        dataset's ``scalers:`` config replaces this.
    target_scaler : str or None
        The variable whose scaler turns predictions back into data units (None: predictions are
        compared as the model gives them, e.g. logits).
    metric, baseline : str, str or None
        The headline number the report index compares runs by, and its best baseline's
        counterpart (None: no baseline).
    direction : {"min", "max"}
        Whether a lower or a higher ``metric`` is better.
    evaluation : str
        ``"module:function"`` of the evaluation handler (resolved by the evaluate stage, so this
        module stays free of torch and matplotlib).
    generative : bool
        The model draws samples rather than predicting targets: the handler gets the model and
        compares drawn with held-out samples instead of getting predictions.
    split_scores : str or None
        ``"module:function"`` scoring the model on every other held-out split too (the macro
        worlds' extrapolation splits).
    target : str or None
        The variable the model's predictions are compared with: ``labels`` for the sequence
        tasks, except ``data`` for reconstruction (its inputs are its targets); None where the
        model draws samples instead (generative).
    per_part : bool
        Each part is a world with shapes of its own: the model info lists the parts and each
        world's shapes even for a dataset of one part (models build one head per world).
    model : str
        The task's natural model (a name of :data:`trainset.models.MODELS`), built when a run
        config leaves ``model.name`` at ``auto`` (seed 001's configs name no model).
    paradigm : {"supervised", "self_supervised"} or None
        Seed 001's ``training.paradigm`` of the task (self-supervised: the targets derive from
        the inputs); None: neither fits (generative frames), so a run may not state one.
    """

    name: str
    description: str
    rules: tuple[Rule, ...]
    aliases: tuple[str, ...] = ()
    tokens: bool = False
    sequence: str | None = None
    labels_table: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    scalers: tuple[tuple[str, str], ...] = ()
    target_scaler: str | None = None
    metric: str = ""
    baseline: str | None = None
    direction: str = "min"
    evaluation: str = ""
    generative: bool = False
    split_scores: str | None = None
    target: str | None = "labels"
    per_part: bool = False
    model: str = "mlp"
    paradigm: str | None = "supervised"

    def __post_init__(self) -> None:
        if self.sequence not in (None, "static", "seq2seq") or self.direction not in ("min", "max"):
            raise ValueError(f"task {self.name}: sequence {self.sequence!r} or direction {self.direction!r} unknown")

    def layout(self) -> str:
        """One-line summary of the variables, e.g. ``data [N, T, D] float32; labels [N] int64``."""
        return "; ".join(_expected(rule, {}) for rule in self.rules)

    @property
    def static(self) -> bool:
        """One target per sequence: the sequence model pools its hidden states over time."""
        return self.sequence == "static"

    @property
    def seq2seq(self) -> bool:
        """Targets per time step: labels indexed by time follow the inputs' length policy."""
        return self.sequence == "seq2seq"

    @property
    def mapping(self) -> str | None:
        """Seed 001's ``training.mapping`` of the task: ``seq2static``, ``seq2seq`` or None."""
        return {"static": "seq2static", "seq2seq": "seq2seq"}.get(self.sequence or "")

    @property
    def classification(self) -> bool:
        """Labels are class ids (integer, cross entropy)."""
        return any(rule.values == "classes" for rule in self.rules)

    def default_scalers(self) -> dict[str, str]:
        """``{variable: kind}`` of :attr:`scalers`, in the order they are fitted."""
        return dict(self.scalers)


_DATA = Rule("data", (("N", "T", "D"),), "float32", meaning="input sequences")
_TOKENS = Rule("data", (("N", "T"), ("N", "T", "1")), "integer", "tokens", meaning="token ids")
_HANDLERS = "trainset.evaluate.tasks"
_CLASSIFY = {"scalers": (("data", "standard"),), "metric": "accuracy", "baseline": "baseline_accuracy",
             "direction": "max", "evaluation": f"{_HANDLERS}:classification"}
_REGRESS = {"scalers": (("data", "standard"), ("labels", "standard")), "target_scaler": "labels", "metric": "rmse",
            "baseline": "baseline_rmse", "direction": "min", "evaluation": f"{_HANDLERS}:regression"}


def _seq(name: str, description: str, labels: Rule | None, aliases: tuple[str, ...], sequence: str,
         labels_table: tuple[tuple[str, ...], tuple[str, ...]] | None, facts: dict[str, Any]) -> TaskSpec:
    rules = (_DATA,) if labels is None else (_DATA, labels)
    return TaskSpec(name, description, rules, aliases, tokens=True, sequence=sequence, labels_table=labels_table,
                    **{"model": "sequence", **facts})


# Order matters twice: describe_tasks lists tasks in it, and guess_task tries irf before frames
# before thresholds, as describe_dataset always did.
TASKS: dict[str, TaskSpec] = {spec.name: spec for spec in (
    _seq("seq2static_classification", "one class per sequence (cross entropy)",
         Rule("labels", (("N",),), "int64", "classes", meaning="one class id per sequence"),
         ("supervised_seq2static_classification",), "static", (("sample",), ("sample",)), _CLASSIFY),
    _seq("seq2static_regression", "K targets per sequence (MSE)",
         Rule("labels", (("N", "K"),), "float32", meaning="K float targets per sequence"),
         ("supervised_seq2static_regression",), "static", (("sample", "k"), ("sample", "target")), _REGRESS),
    _seq("seq2seq_classification", "one class per time step (cross entropy)",
         Rule("labels", (("N", "T"),), "int64", "classes", meaning="one class id per time step of data"),
         ("supervised_seq2seq_classification",), "seq2seq", (("sample", "t"), ("sample", "time")), _CLASSIFY),
    _seq("seq2seq_regression", "K targets per step of a horizon T' (forecasting, MSE)",
         Rule("labels", (("N", "T'", "K"),), "float32", meaning="K float targets per forecast step"),
         ("supervised_seq2seq_regression", "forecasting"), "seq2seq",
         (("sample", "t", "k"), ("sample", "step", "target")), _REGRESS),
    _seq("reconstruction", "the inputs are the targets (autoencoder); labels ignored",
         Rule("labels", None, None, None, required=False, meaning="ignored"),
         ("self_supervised_seq2seq_reconstruction", "self_supervised_reconstruction", "autoencoder"), "seq2seq",
         None, {**_REGRESS, "scalers": (("data", "standard"),), "target_scaler": None, "target": "data",
                "paradigm": "self_supervised"}),
    _seq("summary", "K float summaries derived from each sequence (MSE)",
         Rule("labels", (("N", "K"),), "float32", meaning="K float summaries per sequence"),
         ("self_supervised_seq2static_summary", "self_supervised_seq2static_summary_learning", "summary_learning"),
         "static", (("sample", "k"), ("sample", "target")), {**_REGRESS, "paradigm": "self_supervised"}),
    TaskSpec("irf", "macro emulator: parameters -> impulse responses, one part per world",
             (Rule("theta", (("N", "P"),), "float32", meaning="model parameters"),
              Rule("irfs", (("N", "S", "H+1", "V"),), "float32",
                   meaning="impulse responses [shock, horizon, variable]")),
             ("macro_irf", "emulator"), scalers=(("theta", "standard"), ("irfs", "standard")), target_scaler="irfs",
             metric="nrmse", baseline="baseline_nrmse", direction="min", evaluation=f"{_HANDLERS}:irfs",
             split_scores=f"{_HANDLERS}:irf_splits", target="irfs", per_part=True, model="world_mlp"),
    TaskSpec("frames", "flu frames: feature x season week x place images",
             (Rule("frames", (("N", "F", "W", "P"),), "float32", meaning="frames [sample, feature, week, place]"),),
             ("flu_frames",), scalers=(("frames", "sqrt_max"),), metric="ks_peak_size", direction="min",
             evaluation=f"{_HANDLERS}:generated_frames", generative=True, target=None, model="diffusion",
             paradigm=None),
    TaskSpec("thresholds", "flight scores: K binary 'score exceeds t' targets per site-day (BCE)",
             (Rule("features", (("N", "F"),), "float32", meaning="features per site-day"),
              Rule("targets", (("N", "K"),), "float32", "binary", meaning="0/1 threshold exceedances")),
             ("flight_thresholds",), scalers=(("features", "standard"),), metric="pooled_auc",
             baseline="baseline_auc", direction="max", evaluation=f"{_HANDLERS}:thresholds", target="targets",
             model="flight"),
)}

_ALIASES = {alias: spec.name for spec in TASKS.values() for alias in (spec.name, *spec.aliases)}


def get_task(task: str) -> TaskSpec:
    """The spec of ``task`` (a name or an alias such as ``supervised_seq2static_classification``)."""
    key = str(task).strip().lower().replace("-", "_").replace(" ", "_")
    if key not in _ALIASES:
        raise TrainsetError(f"unknown task type {task!r}. Fix: use one of {sorted(TASKS)} "
                            f"(also accepted: {sorted(set(_ALIASES) - set(TASKS))})")
    return TASKS[_ALIASES[key]]


def sequence_tasks() -> tuple[str, ...]:
    """The sequence tasks (``data`` [N, T, D] and labels by task), in registry order."""
    return tuple(name for name, spec in TASKS.items() if spec.sequence)


def guess_task(names: Iterable[str]) -> str | None:
    """The task of a dataset stored without one, from its variable names (None: no guess).

    Only tasks with distinctive variables are guessed (``theta``/``irfs``, ``frames``,
    ``features``/``targets``); sequence datasets (``data``/``labels``) must store their task.
    """
    present = set(names)
    for spec in TASKS.values():
        if spec.sequence is None and {rule.name for rule in spec.rules if rule.required} <= present:
            return spec.name
    return None


_LAYOUTS = ("labels [N] integer (seq2static_classification), [N, K] float (seq2static_regression, or summary "
            "with paradigm self_supervised), [N, T] integer (seq2seq_classification) or [N, T', K] float "
            "(seq2seq_regression); or paradigm: self_supervised with mapping: seq2seq (reconstruction)")


def task_from_paradigm(paradigm: str | None, mapping: str | None, labels_shape: Iterable[int] | None,
                       labels_dtype: Any, data_shape: Iterable[int]) -> str:
    """The sequence task seed 001 means by ``training.paradigm``/``mapping`` for a file storing none.

    The guide's files carry no task: the old code read it from the config's paradigm and
    mapping and the labels' shape and dtype. The labels decide where they are unambiguous;
    the paradigm decides what the shapes cannot tell (the guide's table):

    ======================  ===========  =========================================
    paradigm                mapping      labels (per sample) -> task
    ======================  ===========  =========================================
    self_supervised         seq2seq      anything or none -> ``reconstruction`` (targets = inputs)
    self_supervised         seq2static   ``[K]`` float -> ``summary``
    supervised or null      seq2static   ``[]`` integer -> ``seq2static_classification``,
    (null: any mapping)                  ``[K]`` float -> ``seq2static_regression``
    supervised or null      seq2seq      ``[T]`` integer (T of data) -> ``seq2seq_classification``,
                                         ``[T', K]`` float -> ``seq2seq_regression``
    null                    null/seq2seq no labels -> ``reconstruction``
    ======================  ===========  =========================================

    Parameters
    ----------
    paradigm, mapping : str or None
        ``training.paradigm`` and ``training.mapping`` (None: not stated).
    labels_shape : sequence of int or None
        Per-sample shape of ``labels`` (no sample axis); None when the file has no labels.
    labels_dtype : dtype-like or None
        Dtype of ``labels``.
    data_shape : sequence of int
        Per-sample shape of ``data`` (``[T, D]``).

    Raises
    ------
    TrainsetError
        The labels fit no task, or a task other than the paradigm/mapping say, naming the fix.
    """
    data_shape = tuple(int(s) for s in data_shape)
    if paradigm == "self_supervised" or (paradigm is None and labels_shape is None):
        return _self_supervised(mapping, labels_shape, labels_dtype, paradigm)
    if labels_shape is None:
        raise TrainsetError("the dataset has no 'labels', but training.paradigm is supervised. Fix: store labels, "
                            "or set training.paradigm: self_supervised with mapping: seq2seq (reconstruction)")
    shape, kind = tuple(int(s) for s in labels_shape), np.dtype(labels_dtype).kind
    integer, real = kind in "iu", kind == "f"
    task = {(0, True): "seq2static_classification", (1, False): "seq2static_regression",
            (2, False): "seq2seq_regression"}.get((len(shape), integer)) if integer or real else None
    if len(shape) == 1 and integer and data_shape[:1] == shape:
        task = "seq2seq_classification"
    stored = f"labels {_shape_text(shape)} {np.dtype(labels_dtype)}"
    if task is None:
        raise TrainsetError(f"{stored} fit no sequence task (data [N, {', '.join(map(str, data_shape))}]). "
                            f"Fix: store {_LAYOUTS}")
    if mapping is not None and TASKS[task].mapping != mapping:
        raise TrainsetError(f"{stored} are those of {task} (mapping {TASKS[task].mapping}), but training.mapping "
                            f"is {mapping}. Fix: set training.mapping: {TASKS[task].mapping}, or store {_LAYOUTS}")
    return task


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(["N", *map(str, shape)]) + "]"


def _self_supervised(mapping: str | None, labels_shape: Iterable[int] | None, labels_dtype: Any,
                     paradigm: str | None) -> str:
    if mapping in ("seq2seq", None) and (paradigm is None or mapping == "seq2seq"):
        return "reconstruction"
    if mapping == "seq2static":
        shape = None if labels_shape is None else tuple(labels_shape)
        if shape is not None and len(shape) == 1 and np.dtype(labels_dtype).kind == "f":
            return "summary"
        found = "no labels" if shape is None else f"labels {_shape_text(shape)} {np.dtype(labels_dtype)}"
        raise TrainsetError(f"self_supervised seq2static (summary) needs labels [N, K] float32, the summaries "
                            f"derived from each sequence; the dataset has {found}. Fix: store them, or use "
                            "mapping: seq2seq (reconstruction)")
    raise TrainsetError("training.paradigm: self_supervised needs training.mapping: seq2seq (reconstruction, the "
                        "inputs are the targets) or seq2static (summary, labels [N, K] float)")


def check_paradigm(task: str, paradigm: str | None, mapping: str | None) -> None:
    """Refuse a ``training.paradigm``/``mapping`` that contradicts the dataset's task.

    A dataset that stores its task (or whose variables name it, as flights, worlds and frames)
    decides; a stated paradigm or mapping must agree with it, so neither key is ever accepted
    and then ignored.
    """
    spec = get_task(task)
    if mapping is not None and spec.mapping != mapping:
        fix = f"set training.mapping: {spec.mapping}" if spec.mapping else "remove training.mapping"
        raise TrainsetError(f"training.mapping: {mapping}, but the dataset's task {spec.name} is "
                            f"{spec.mapping or 'not a sequence task'}. Fix: {fix}")
    if paradigm is not None and spec.paradigm != paradigm:
        fix = f"set training.paradigm: {spec.paradigm}" if spec.paradigm else "remove training.paradigm"
        why = f"is {spec.paradigm}" if spec.paradigm else "is generative (neither)"
        raise TrainsetError(f"training.paradigm: {paradigm}, but the dataset's task {spec.name} {why}. Fix: {fix}")


def resolve_task(info: dict[str, Any], paradigm: str | None, mapping: str | None) -> str | None:
    """The task of a described dataset (``info`` of :func:`trainset.models.describe_dataset`).

    Its stored (or recognised) task, checked by :func:`check_paradigm`; else, for ``data``
    [N, T, D] with or without ``labels``, :func:`task_from_paradigm`; else None.
    """
    if info.get("task"):
        check_paradigm(info["task"], paradigm, mapping)
        return get_task(info["task"]).name
    variables = info.get("variables") or {}
    data = variables.get("data")
    if data is None or len(data["shape"]) not in (1, 2):
        return None
    labels = variables.get("labels")
    task = task_from_paradigm(paradigm, mapping, None if labels is None else labels["shape"],
                              None if labels is None else labels["dtype"], data["shape"])
    logger.info("dataset stores no task: %s (paradigm %s, mapping %s, labels %s)", task, paradigm, mapping,
                "none" if labels is None else f"{labels['shape']} {labels['dtype']}")
    return task


def natural_model(task: str | None) -> str:
    """The model built for ``model.name: auto``: the task's :attr:`TaskSpec.model`.

    Raises
    ------
    TrainsetError
        When the task is unknown, naming the key to set.
    """
    if not task:
        raise TrainsetError("model.name: auto needs the dataset's task, and the dataset stores none that could be "
                            "recognised. Fix: set model.name (one of mlp, sequence, flight, world_mlp, diffusion) "
                            "or training.paradigm/mapping for a sequence dataset")
    return get_task(task).model


def check_task(parts: list[PartInfo], task: str, reader: Any = None, vocab_size: int | None = None,
               num_classes: int | None = None) -> list[str]:
    """Every problem that keeps ``parts`` from being a dataset for ``task``, each with its fix.

    Parameters
    ----------
    parts : list of PartInfo
        The parts as a reader describes them (names, sizes, per-sample shapes and dtypes).
    task : str
        A task name or alias (see :data:`TASKS`).
    reader : Reader, optional
        When given, values are checked too (NaN/inf in float variables, class ids, token ids,
        binary targets), reading whole blocks of ``reader.block_size`` samples.
    vocab_size : int, optional
        Inputs are token ids, ``data`` int ``[N, T]`` or ``[N, T, 1]`` in ``0..vocab_size-1``.
    num_classes : int, optional
        Classification labels must lie in ``0..num_classes-1`` (otherwise only ``>= 0``).

    Returns
    -------
    list of str
        Empty when the dataset fits the task.

    Raises
    ------
    TrainsetError
        Unknown task, or a ``vocab_size`` / ``num_classes`` that is not a positive integer.
    """
    spec = get_task(task)
    if vocab_size is not None:
        vocab_size = check_vocab_size(vocab_size)
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer))
                                    or num_classes < 1):
        raise TrainsetError(f"num_classes must be a positive integer, got {num_classes!r}. Fix: set data.num_classes")
    rules = _rules(spec, vocab_size)
    problems: list[str] = []
    for number, part in enumerate(parts):
        found, sound = _check_structure(spec, rules, part)
        problems += found
        if reader is not None and sound:
            problems += _check_values(spec, reader, number, part, sound, vocab_size, num_classes)
    return problems


def _rules(spec: TaskSpec, vocab_size: int | None) -> tuple[Rule, ...]:
    if not spec.tokens or vocab_size is None:
        return spec.rules
    return tuple(_TOKENS if rule.name == "data" else rule for rule in spec.rules)


def _check_structure(spec: TaskSpec, rules: tuple[Rule, ...], part: PartInfo) -> tuple[list[str], list[Rule]]:
    """Shape/dtype problems of one part, and the rules whose variables passed (to scan values)."""
    problems, sound, sizes = [], [], {"N": part.size}
    for rule in rules:
        where = f"part {part.name!r}, variable {rule.name!r}"
        info = part.variables.get(rule.name)
        if info is None:
            if rule.required:
                problems.append(f"{where}: missing; {spec.name} needs {_expected(rule, sizes)} ({rule.meaning}). "
                                f"Fix: store it under the name {rule.name!r}")
            continue
        shape, dtype = (part.size, *info.shape), np.dtype(info.dtype)
        fits = _fits(spec, rule.name, shape, dtype, sizes)
        found = [p for p in (_dtype_problem(spec, rule, dtype, where, fits),
                             _shape_problem(spec, rule, shape, sizes, where, fits)) if p]
        problems += found[:1]  # one message per variable: the dtype one already names the fitting task
        if not found and rule.values:
            sound.append(rule)
    return problems, sound


def _expected(rule: Rule, sizes: dict[str, int]) -> str:
    if rule.shapes is None:
        return f"{rule.name} (any shape)"
    shapes = " or ".join("[" + ", ".join(f"{s}={sizes[s]}" if s in sizes and s != "N" else s for s in shape) + "]"
                         for shape in rule.shapes)
    return f"{rule.name} {shapes} {rule.dtype}"


def _fits(spec: TaskSpec, name: str, shape: tuple[int, ...], dtype: np.dtype, sizes: dict[str, int]) -> str:
    """Other tasks whose rule for ``name`` accepts this exact shape and dtype (another task was meant?)."""
    others = [t.name for t in TASKS.values() if t is not spec for r in t.rules
              if r.name == name and r.shapes and r.dtype == str(dtype)
              and any(_match(p, shape, sizes) is not None for p in r.shapes)]
    return f"; as stored, {name} would fit {' or '.join(others)}" if others else ""


def _dtype_problem(spec: TaskSpec, rule: Rule, dtype: np.dtype, where: str, fits: str) -> str | None:
    if rule.dtype is None or (dtype.kind in "iu" if rule.dtype == "integer" else dtype == np.dtype(rule.dtype)):
        return None
    wanted = "an integer dtype" if rule.dtype == "integer" else rule.dtype
    head = f"{where}: dtype {dtype}, but {spec.name} needs {wanted} ({rule.meaning})"
    if rule.dtype in ("int64", "integer") and dtype.kind == "f":
        return (f"{head}. Fix: if the values are ids, store them with .astype('int64'); "
                f"if they are continuous values, use a regression task{fits}")
    if rule.dtype == "float32" and dtype.kind in "iub":
        return (f"{head}; integer regression targets are usually truncated floats. Fix: store the original "
                f"float values as float32 (never cast them to integers){fits}")
    return f"{head}. Fix: store it with .astype('{'int64' if rule.dtype == 'integer' else rule.dtype}'){fits}"


def _shape_problem(spec: TaskSpec, rule: Rule, shape: tuple[int, ...], sizes: dict[str, int], where: str,
                   fits: str) -> str | None:
    if rule.shapes is None:
        return None
    for pattern in rule.shapes:
        bound = _match(pattern, shape, sizes)
        if bound is not None:
            sizes.update(bound)
            return None
    return (f"{where}: shape {list(shape)}, but {spec.name} needs {_expected(rule, sizes)} ({rule.meaning}). "
            f"Fix: store {rule.name} with that shape{fits}")


def _match(pattern: tuple[str, ...], shape: tuple[int, ...], sizes: dict[str, int]) -> dict[str, int] | None:
    if len(pattern) != len(shape):
        return None
    bound = dict(sizes)
    for symbol, size in zip(pattern, shape):
        if symbol.isdigit():
            if size != int(symbol):
                return None
        elif bound.setdefault(symbol, size) != size:
            return None
    return bound


def _check_values(spec: TaskSpec, reader: Any, number: int, part: PartInfo, rules: list[Rule],
                  vocab_size: int | None, num_classes: int | None) -> list[str]:
    """Scan the values of ``rules``' variables in whole blocks; one message per kind of bad value."""
    names = [rule.name for rule in rules]
    per_sample = sum(np.dtype(part.variables[n].dtype).itemsize * int(np.prod(part.variables[n].shape))
                     for n in names)
    block = max(1, int(getattr(reader, "block_size", 256)))
    step = block * max(1, _SCAN_BYTES // max(1, per_sample * block))
    tallies: dict[tuple[str, str], list] = {}
    selected = int(reader.offsets()[number]) + np.arange(part.size, dtype=np.int64)
    for block in reader.iter_blocks(selected, names, rows=step):  # whole blocks; streamed readers too
        start = int(block.local[0])
        for rule in rules:
            for kind, bad in _bad_values(rule, np.asarray(block.arrays[rule.name]), vocab_size, num_classes):
                _tally(tallies, (rule.name, kind), bad, start)
    return [_describe(spec, part.name, name, kind, tally, vocab_size, num_classes)
            for (name, kind), tally in tallies.items()]


def _bad_values(rule: Rule, values: np.ndarray, vocab_size: int | None, num_classes: int | None):
    if rule.values == "finite" and values.dtype.kind in "fc":
        yield "nonfinite", ~np.isfinite(values)
    elif rule.values == "classes":
        yield "negative", values < 0
        if num_classes is not None:
            yield "classes", values >= num_classes
    elif rule.values == "tokens" and vocab_size is not None:
        yield "tokens", (values < 0) | (values >= vocab_size)
    elif rule.values == "binary":
        yield "binary", (values != 0) & (values != 1)


def _tally(tallies: dict, key: tuple[str, str], bad: np.ndarray, start: int) -> None:
    count = int(np.count_nonzero(bad))
    if not count:
        return
    tally = tallies.setdefault(key, [0, None])
    tally[0] += count
    if tally[1] is None:
        position = np.unravel_index(int(np.argmax(bad)), bad.shape)
        tally[1] = (start + int(position[0]), *(int(p) for p in position[1:]))


def _describe(spec: TaskSpec, part: str, name: str, kind: str, tally: list, vocab_size: int | None,
              num_classes: int | None) -> str:
    count, position = tally
    where = f"part {part!r}, variable {name!r}: {count} value(s)"
    at = f"(first at sample {position[0]}{', position ' + str(list(position[1:])) if len(position) > 1 else ''})"
    text = {
        "nonfinite": f"are NaN or infinite {at}. Fix: repair or drop those samples before writing; "
                     "a single NaN turns the loss into NaN",
        "negative": f"are negative class ids {at}. Fix: classes are numbered 0..num_classes-1; "
                    "use the reconstruction task if the labels are dummies",
        "classes": f"are >= num_classes={num_classes} {at}. Fix: raise num_classes or renumber the classes",
        "tokens": f"are token ids outside 0..{(vocab_size or 0) - 1} {at}. Fix: raise vocab_size or repair "
                  "the ids; they are never clipped",
        "binary": f"are neither 0 nor 1 {at}. Fix: {spec.name} targets are 0/1 exceedance indicators",
    }[kind]
    return f"{where} {text}"


def describe_tasks() -> list[str]:
    """One line per task for the CLI: name, description and expected variables."""
    return [f"{spec.name}: {spec.description} -- {spec.layout()}" for spec in TASKS.values()]


__all__ = ["TASKS", "Rule", "TaskSpec", "check_paradigm", "check_task", "describe_tasks", "get_task", "guess_task",
           "natural_model", "resolve_task", "sequence_tasks", "task_from_paradigm"]
