"""One training configuration, read from YAML or a dict, validated whole before anything runs.

A :class:`TrainingConfig` has a ``model``, a ``training`` and a ``data`` section (frozen
dataclasses; every field has a default and a description below). :meth:`TrainingConfig.from_dict`
reports *every* problem at once, each naming its dotted key: an unknown key (``training.lr_max``,
with the valid keys and a close match), a wrong type (``training.epochs: expected an integer``),
a value out of range, an unregistered loss (with the registered names). :meth:`~TrainingConfig.
to_dict` gives plain JSON, and ``from_dict(to_dict(cfg)) == cfg`` exactly; :func:`config_hash`
hashes that JSON.

Three older layouts are accepted and translated (the seeds' users have such files; how each is
recognised: :mod:`trainset.train.legacy_config`):

- **seed 001** (sequence tasks): ``training: {paradigm, mapping, losses: [{name, weight,
  params}]}``, ``data: {data_path, num_classes, target_seq_len, input_encoding, vocab_size}``,
  ``model: {time_pooling: {name, params: {scale}}}``. ``data.data_path`` becomes ``dataset``;
  ``model.time_pooling`` is folded into ``model.params["time_pooling"]`` (a bare name becomes
  ``{name, params: {}}``). ``paradigm``/``mapping`` are checked against the dataset's task;
  ``target_seq_len`` is the *target's* length and is checked, never used to cut inputs silently
  (``data.target_seq_policy`` changes lengths on purpose).
- **seed 002** (flight forecasts), flat keys: ``learning_rate`` -> ``training.lr``,
  ``num_epochs`` -> ``epochs``, ``num_workers``, ``batch_size``, ``patience``; ``l1_lambda``,
  ``l2_lambda``, ``monotonicity_lambda`` -> penalty terms ``l1``, ``l2``, ``monotonicity`` of
  ``training.losses`` with that weight (after ``bce`` when no losses are given);
  ``deep_hidden_units``, ``cross_layers``, ``site_embedding_dim``, ``prediction_head_type``
  (multilabel -> independent, ordinal -> ordinal) -> the ``flight`` model's ``hidden``,
  ``cross_layers``, ``embedding_dim``, ``head``.
- **seed 003** (macro emulator), flat keys at the top level (or inside ``training``): ``lr,
  weight_decay, batch_size, epochs, grad_clip, warmup_epochs, scheduler, patience, min_delta,
  save_every_n_epochs, log_every_n_steps, seed`` map to the same ``training`` fields; when the
  layout is recognised (:func:`~trainset.train.legacy_config.detect_layout`: a top-level
  ``seed`` alone is not enough) omitted ones take seed 003's defaults, with a WARNING (lr 1e-4, 100 epochs, warm-up 5, patience 10, ``min_delta`` 1e-4
  *absolute*, save every 10); ``loss_fn`` (mse|mae), ``horizon_weights`` and ``lambda_smooth``
  become one loss ``horizon_<loss_fn>`` with params ``{weights, lambda_smooth}`` (seed-003
  defaults: mse, uniform, 0.01); ``checkpoint_dir`` and ``wandb_project`` are ignored with a
  warning (the workflow decides paths; nothing logs to W&B), ``save_best`` is ignored (the best
  checkpoint is always kept) and ``use_wandb`` must be false. :meth:`TrainingConfig.from_flat`
  builds a config from upstream's flat dict.

trainset's own older ``training.amp: true/false`` is read as ``training.precision: bf16/fp32``
(both keys together are an error).

PyYAML reads ``1e-3`` (no dot) as a string; float fields accept such numeric strings.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import yaml

from trainset.errors import TrainsetError
from trainset.rng import MAX_SEED
from trainset.train.coerce import in_range, validate_fields
from trainset.train.legacy_config import SEED002_KEYS, SEED003_FIELDS, translate_legacy
from trainset.train.names import LOSS_PARAMS, MODEL_NAMES, LossSpec

__all__ = ["DataSection", "LossSpec", "ModelSection", "TrainingConfig", "TrainingSection", "config_hash",
           "with_master_seed"]


@dataclass(frozen=True)
class ModelSection:
    """Which model to build (a registered name) and its parameters (checked by the model itself)."""

    name: str = "auto"
    """A model name in :data:`trainset.models.MODELS`, or ``auto``: the dataset task's natural model
    (:attr:`trainset.tasks.TaskSpec.model`: sequence, flight, world_mlp or diffusion), logged."""
    params: dict[str, Any] = field(default_factory=dict)
    """Keyword parameters of the model, plain JSON; seed-001 ``time_pooling`` lands here."""

    def __post_init__(self) -> None:
        validate_fields(self, "model")

    def _problems(self) -> list[str]:
        if self.name != "auto" and self.name not in MODEL_NAMES:  # torch-free: start-up checks must not load torch
            return [f"model.name: unknown model {self.name!r}. Fix: use one of {sorted(MODEL_NAMES)} or auto"]
        return []


@dataclass(frozen=True)
class TrainingSection:
    """How to optimise: task framing, objective, optimiser, schedule, stopping, runtime."""

    paradigm: Literal["supervised", "self_supervised"] | None = None
    """Seed 001's task framing, checked against the dataset's task before training (``self_supervised``:
    the targets are derived from the inputs); null: the dataset's task decides."""
    mapping: Literal["seq2static", "seq2seq"] | None = None
    """Sequence tasks: one output per sequence or per step, checked against the dataset's task; null:
    the dataset's task decides."""
    losses: tuple[LossSpec, ...] = (LossSpec("mse"),)
    """Weighted terms of the objective (losses and penalties), summed."""
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    """Optimiser; ``weight_decay`` is decoupled for adamw, L2-in-gradient for adam/sgd."""
    lr: float = 1e-3
    """Peak learning rate (reached at the end of warm-up)."""
    weight_decay: float = 0.01
    """Weight decay."""
    batch_size: int = 64
    """Samples per optimisation step."""
    epochs: int = 20
    """Maximum number of epochs."""
    warmup_epochs: int = 1
    """Epochs of linear warm-up from ``lr / warmup_steps`` to ``lr`` (0: none)."""
    scheduler: Literal["cosine", "exponential", "none"] = "cosine"
    """LR after warm-up: cosine to ``final_lr_fraction * lr``, ``lr * gamma**epoch``, or constant."""
    gamma: float = 0.95
    """Per-epoch decay factor of the exponential scheduler (seed 002)."""
    final_lr_fraction: float = 0.01
    """Cosine floor as a fraction of ``lr``."""
    grad_clip: float | None = 1.0
    """Max global gradient norm; null disables clipping."""
    patience: int | None = 5
    """Epochs without improvement before stopping; null never stops early."""
    min_delta: float = 1e-3
    """Improvement needed to count as better, relative or absolute (``min_delta_mode``)."""
    min_delta_mode: Literal["relative", "absolute"] = "relative"
    """``relative``: an epoch improves when ``val < best * (1 - min_delta)``; ``absolute``: when
    ``val < best - min_delta`` (seed 003's rule, the default of its flat layout)."""
    save_every_n_epochs: int = 5
    """Keep a periodic checkpoint every n epochs (0: only the best and the last)."""
    log_every_n_steps: int = 50
    """Every n optimisation steps (counted over the run), write a ``train`` row (mean loss since the
    last row, lr, samples/s) to the ``loggers`` and a DEBUG log line."""
    loggers: tuple[Literal["csv", "tensorboard"], ...] = ("csv",)
    """Where step and epoch metrics go besides the log: ``csv`` (the run folder's metrics.csv),
    ``tensorboard`` (event files in its tensorboard/; needs ``pip install -e '.[tensorboard]'``);
    an empty list for neither."""
    seed: int = 42
    """Seed for weight init, shuffling and augmentation; a workflow run without one takes the
    workflow's ``seed``."""
    device: str = "auto"
    """Where the model, batches and losses live: ``auto`` (CUDA when torch sees a GPU, then MPS,
    else the CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; under torchrun ``cuda`` is each rank's
    GPU ``LOCAL_RANK``. A device that is not there is refused when the run starts. Byte-identical
    artifacts hold on CPU; on a GPU, reruns match on the same machine and GPU model."""
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    """Autocast precision on the run's device: fp32 (none), bf16, or fp16 with a gradient scaler
    (its state is checkpointed, so resume stays exact). A precision the device cannot run is
    refused. The old ``amp: true/false`` is translated to bf16/fp32."""
    num_workers: int = 0
    """DataLoader worker processes (on 2 cores they only help for costly batches)."""
    threads: int = 1
    """Torch threads. Fixed by the config, never by the machine, so weights are identical
    whatever --cores a run gets (float reductions depend on the thread count)."""
    deterministic: bool = True
    """Use deterministic torch algorithms."""
    train_split: str = "train"
    """Split trained on."""
    val_split: str = "val"
    """Split used for early stopping and the best checkpoint."""

    def __post_init__(self) -> None:
        validate_fields(self, "training")

    def _problems(self) -> list[str]:
        p: list[str] = []
        if not self.losses:
            p.append(f"training.losses: needs at least one loss; registered: {sorted(LOSS_PARAMS)}")
        in_range(p, "training.lr", self.lr, 0, lo_open=True)
        in_range(p, "training.weight_decay", self.weight_decay, 0)
        in_range(p, "training.batch_size", self.batch_size, 1)
        in_range(p, "training.epochs", self.epochs, 1)
        in_range(p, "training.warmup_epochs", self.warmup_epochs, 0, self.epochs,
               fix="warm-up cannot be longer than training (training.epochs)")
        in_range(p, "training.gamma", self.gamma, 0, 1, lo_open=True)
        in_range(p, "training.final_lr_fraction", self.final_lr_fraction, 0, 1)
        in_range(p, "training.grad_clip", self.grad_clip, 0, lo_open=True, fix="use null to disable clipping")
        in_range(p, "training.patience", self.patience, 1, fix="use null to never stop early")
        if self.min_delta_mode == "relative":
            in_range(p, "training.min_delta", self.min_delta, 0, 1, hi_open=True,
                   fix="min_delta is relative, e.g. 1e-3 = 0.1% (or set training.min_delta_mode: absolute)")
        else:
            in_range(p, "training.min_delta", self.min_delta, 0)
        in_range(p, "training.save_every_n_epochs", self.save_every_n_epochs, 0)
        in_range(p, "training.log_every_n_steps", self.log_every_n_steps, 1)
        if len(set(self.loggers)) < len(self.loggers):
            p.append(f"training.loggers: a logger is listed twice: {list(self.loggers)}")
        in_range(p, "training.seed", self.seed, 0, MAX_SEED, fix="seeds are stored as signed 64-bit integers")
        in_range(p, "training.num_workers", self.num_workers, 0)
        in_range(p, "training.threads", self.threads, 1)
        p += device_problems(self.device)
        if self.train_split == self.val_split:
            p.append(f"training.val_split: must differ from training.train_split ({self.train_split!r})")
        return p


@dataclass(frozen=True)
class DataSection:
    """How samples become model inputs: sequence length, token encoding, scaling, variables."""

    target_seq_len: int | None = None
    """Time length of the target: the labels' steps (a forecast horizon, per-step labels), the
    inputs' for reconstruction and seq2static tasks. Checked against the data; null: not checked."""
    target_seq_policy: Literal["truncate", "pad", "resample"] | None = None
    """How a target of another length is brought to ``target_seq_len`` (per-step labels and their
    inputs alike); null: a length that differs is an error. Forecast inputs are never cut."""
    input_encoding: Literal["one_hot"] | None = None
    """``one_hot``: ``data`` holds token ids, encoded over ``vocab_size`` before any scaling."""
    vocab_size: int | None = None
    """Number of token ids (with ``input_encoding: one_hot``); a dataset storing another is an error."""
    num_classes: int | None = None
    """Classes of a classification task (the model's output size); overrides the dataset's count,
    and a label >= num_classes is an error."""
    scaler: str | None = None
    """Scaler kind fitted on ``data`` of the training split when no scaler file is given (the CLI
    without ``--scalers``); null: none. Workflow runs use the dataset's ``scalers:`` instead."""
    variables: tuple[str, ...] | None = None
    """Dataset variables to read (the others are never loaded); null reads all."""
    worlds: tuple[str, ...] | None = None
    """Macro datasets: train (and evaluate) on only these worlds of the store, in stored order;
    scalers fitted on the whole store apply. An unknown name is an error; null: every world."""
    split_fractions: dict[str, float] | None = None
    """Seed 001's auto-split of an HDF5 file without splits (root data/labels, no splits.json):
    split name -> share, summing to 1, seeded by ``training.seed`` and saved as the run folder's
    splits.json; null: the old code's train 0.7, val 0.2, test 0.1. Refused for a dataset with splits."""

    def __post_init__(self) -> None:
        validate_fields(self, "data")

    def _problems(self) -> list[str]:
        p: list[str] = []
        in_range(p, "data.target_seq_len", self.target_seq_len, 1)
        in_range(p, "data.num_classes", self.num_classes, 2)
        in_range(p, "data.vocab_size", self.vocab_size, 2)
        if self.input_encoding == "one_hot" and self.vocab_size is None:
            p.append("data.vocab_size: required when data.input_encoding is one_hot. "
                     "Fix: set data.vocab_size to the number of token ids")
        if self.vocab_size is not None and self.input_encoding is None:
            p.append("data.vocab_size: only used with data.input_encoding: one_hot. "
                     "Fix: add data.input_encoding: one_hot, or remove data.vocab_size")
        if self.target_seq_policy is not None and self.target_seq_len is None:
            p.append("data.target_seq_policy: set without data.target_seq_len. "
                     "Fix: set data.target_seq_len, or remove data.target_seq_policy")
        if self.scaler is not None:
            try:
                from trainset.scalers import KINDS
            except ImportError:  # pragma: no cover - the scaler registry is optional here
                KINDS = None
            if not self.scaler or (KINDS is not None and self.scaler not in KINDS):
                p.append(f"data.scaler: unknown scaler {self.scaler!r}. Fix: use one of {KINDS} "
                         "or null for no scaling")
        if self.split_fractions is not None:
            from trainset.train.autosplit import fraction_problems  # torch-free

            p += fraction_problems(self.split_fractions)
        if self.worlds is not None:
            if not self.worlds:
                p.append("data.worlds: must not be empty; use null to train on every world")
            dup = sorted({w for w in self.worlds if self.worlds.count(w) > 1})
            if dup:
                p.append(f"data.worlds: listed twice: {dup}")
        if self.variables is not None:
            if not self.variables:
                p.append("data.variables: must not be empty; use null to read every variable")
            dup = sorted({v for v in self.variables if self.variables.count(v) > 1})
            if dup:
                p.append(f"data.variables: listed twice: {dup}")
        return p


_SECTIONS: dict[str, type] = {"model": ModelSection, "training": TrainingSection, "data": DataSection}


DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:[0-9]+)?")
"""The values ``training.device`` accepts (matched whole)."""


def device_problems(value: object, key: str = "training.device") -> list[str]:
    """The problems of a ``training.device`` value: its spelling only (torch-free); whether the
    device is there is checked where the run starts (:func:`trainset.train.device.resolve_device`)."""
    if isinstance(value, str) and DEVICE_PATTERN.fullmatch(value):
        return []
    return [f"{key}: expected auto, cpu, cuda, cuda:N or mps, got {value!r}. "
            "Fix: e.g. training.device: cpu"]


def _field_names(cls: type) -> list[str]:
    return [f.name for f in fields(cls)]


def _unknown(key: str, valid: list[str]) -> str:
    leaf = key.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(leaf, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    where = key.rsplit(".", 1)[0] if "." in key else "the top level"
    return f"unknown key {key!r}{hint}. Valid keys in {where}: {', '.join(valid)}"


@dataclass(frozen=True)
class TrainingConfig:
    """A whole training run: what to train (model) on what (dataset, data) and how (training)."""

    name: str = "default"
    """Run name (results/train/<name>/...)."""
    dataset: str | None = None
    """Dataset name in the workflow config, or a path to a dataset trainset wrote."""
    format: str = "netcdf"
    """Dataset format: netcdf, hdf5, hdf5_presplit, zarr or webdataset."""
    model: ModelSection = field(default_factory=ModelSection)
    """Model section."""
    training: TrainingSection = field(default_factory=TrainingSection)
    """Training section."""
    data: DataSection = field(default_factory=DataSection)
    """Data section."""
    augment: dict[str, Any] = field(default_factory=dict)
    """Flu frames only: augmentation of the training split (options of trainset.augment.Augment: poisson, max_shift, shift_pad, rescale), seeded per (training.seed, epoch, sample index); empty: none."""

    def __post_init__(self) -> None:
        for key, cls in _SECTIONS.items():
            value = getattr(self, key)
            if isinstance(value, Mapping):
                unknown = [k for k in value if k not in _field_names(cls)]
                if unknown:
                    raise TrainsetError("\n".join(_unknown(f"{key}.{k}", _field_names(cls)) for k in unknown))
                object.__setattr__(self, key, cls(**value))
            elif not isinstance(value, cls):
                raise TrainsetError(f"{key}: expected a {cls.__name__} or a mapping, got {type(value).__name__}")
        validate_fields(self, "")

    def _problems(self) -> list[str]:
        # the formats, then their variants (e.g. HDF5's presplit copy); trainset.workflow's plain
        # copy of trainset.io.base.stored_copies(), so checking a run imports no format adapter
        from trainset.workflow import STORED_COPIES

        known = list(STORED_COPIES)
        p = [] if self.name else ["name: must not be empty"]
        if self.format not in known:
            p.append(f"format: unknown dataset format {self.format!r}. Fix: use one of {known}")
        if self.dataset == "":
            p.append("dataset: must not be empty")
        from trainset.augment import config_problems

        p += config_problems(self.augment)
        if self.data.split_fractions is not None:  # the auto-split must make the splits training reads
            from trainset.train.autosplit import split_name_problems

            p += split_name_problems(self.data.split_fractions, self.training.train_split, self.training.val_split)
        return p

    # ----------------------------------------------------------------- dict / YAML

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, *, layout: str | None = None) -> TrainingConfig:
        """Validate and build a config from a nested dict (seed-001, -002 and -003 layouts accepted).

        ``layout`` forces the seed layout (see :func:`~trainset.train.legacy_config.detect_layout`).

        Raises
        ------
        TrainsetError
            Listing every problem, one per line, each naming its dotted key and the fix.
        """
        if d is None:
            d = {}
        if not isinstance(d, Mapping):
            raise TrainsetError(f"a training config must be a mapping, got {type(d).__name__}")
        d = copy.deepcopy(dict(d))
        problems: list[str] = []
        sections: dict[str, dict[str, Any]] = {}
        for key in _SECTIONS:
            value = d.pop(key, None)
            if value is None:
                value = {}
            if not isinstance(value, Mapping):
                problems.append(f"{key}: expected a mapping, got {value!r} ({type(value).__name__})")
                value = {}
            sections[key] = dict(value)
        translate_legacy(d, sections, problems, layout)

        top_valid = _field_names(cls)
        for key in list(d):
            if key not in top_valid:
                problems.append(_unknown(str(key), top_valid + list(SEED003_FIELDS) + list(SEED002_KEYS)))
                d.pop(key)
        built: dict[str, Any] = {}
        for key, section_cls in _SECTIONS.items():
            valid = _field_names(section_cls)
            raw = sections[key]
            for k in [k for k in raw if k not in valid]:
                problems.append(_unknown(f"{key}.{k}", valid))
                raw.pop(k)
            try:
                built[key] = section_cls(**raw)
            except TrainsetError as err:
                problems.extend(str(err).splitlines())
        try:  # with a broken section, still check the top-level keys against default sections
            config = cls(**d, **built)
        except TrainsetError as err:
            problems.extend(str(err).splitlines())
        if not problems:
            return config
        raise TrainsetError("invalid training config:\n  - " + "\n  - ".join(problems))

    @classmethod
    def from_flat(cls, d: Mapping[str, Any] | None = None, **sections: Any) -> TrainingConfig:
        """The one constructor for seed 003's flat ``TrainingConfig(**d)`` dict.

        ``d`` holds exactly seed 003's fields (:data:`~trainset.train.legacy_config.SEED003_FIELDS`:
        ``lr, weight_decay, batch_size, epochs, grad_clip, warmup_epochs, scheduler, patience,
        min_delta, checkpoint_dir, save_every_n_epochs, save_best, log_every_n_steps, use_wandb,
        wandb_project, seed, loss_fn, horizon_weights, lambda_smooth``); any other key is an error.
        Omitted fields take seed 003's defaults (``min_delta`` absolute, as upstream compared it).
        ``sections`` adds today's top-level keys (``name``, ``dataset``, ``format``, ``model``, ``data``).
        """
        d = dict(d or {})
        other = sorted(str(k) for k in d if k not in SEED003_FIELDS)
        if other:
            raise TrainsetError(f"from_flat: {other} are not fields of seed 003's TrainingConfig. "
                                f"Fix: use only {list(SEED003_FIELDS)}, or TrainingConfig.from_dict for nested configs")
        if "training" in sections:
            raise TrainsetError("from_flat: training keys come flat in d. Fix: use TrainingConfig.from_dict")
        return cls.from_dict({**sections, **d}, layout="seed003")

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> TrainingConfig:
        """Read a YAML file (see :meth:`from_dict`); errors name the file."""
        try:
            with open(path, encoding="utf-8") as fh:
                raw = yaml.safe_load(fh)
        except FileNotFoundError:
            raise TrainsetError(f"{path}: training config not found") from None
        except yaml.YAMLError as err:
            raise TrainsetError(f"{path}: not valid YAML: {err}") from None
        try:
            return cls.from_dict(raw)
        except TrainsetError as err:
            raise TrainsetError(f"{path}: {err}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able nested dict; ``TrainingConfig.from_dict(cfg.to_dict()) == cfg``."""
        def plain(obj: Any) -> Any:
            if isinstance(obj, LossSpec):
                return obj.to_dict()
            if hasattr(obj, "__dataclass_fields__"):
                return {f.name: plain(getattr(obj, f.name)) for f in fields(obj)}
            if isinstance(obj, (list, tuple)):
                return [plain(v) for v in obj]
            if isinstance(obj, dict):
                return copy.deepcopy(obj)
            return obj
        return plain(self)


def with_master_seed(run: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """``run`` (a run config as written under ``runs:``) with the workflow's master ``seed`` as its
    ``training.seed`` when it states none (neither ``training.seed`` nor seed 003's flat ``seed``).

    The workflow builds every run through this, so ``seed:`` in the workflow config seeds training
    too; ``python -m trainset train`` keeps :attr:`TrainingSection.seed` (42) unless the file says.
    """
    out = copy.deepcopy(dict(run))
    training = out.get("training")
    if "seed" in out or (isinstance(training, Mapping) and "seed" in training):
        return out
    if training is not None and not isinstance(training, Mapping):
        return out  # the config check reports the wrong type
    out["training"] = {**(training or {}), "seed": int(seed)}
    return out


def config_hash(cfg: TrainingConfig) -> str:
    """SHA-256 (hex) of the canonical JSON of ``cfg.to_dict()`` (sorted keys, no spaces)."""
    text = json.dumps(cfg.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
