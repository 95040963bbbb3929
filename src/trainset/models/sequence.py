"""A GRU or temporal-convolution model for the six sequence tasks of seed 001.

The encoder turns ``data`` ``[B, T, D]`` into hidden states ``[B, T, hidden]``; the head depends
on ``info["task"]``:

=========================  =====================================  ==========================
task                       head                                   ``pred`` (``target``)
=========================  =====================================  ==========================
seq2static_classification  time pooling, linear                   ``[B, C]`` logits (labels)
seq2static_regression      time pooling, linear                   ``[B, K]`` (labels)
summary                    time pooling, linear                   ``[B, K]`` (labels)
seq2seq_classification     linear at every step                   ``[B, T, C]`` logits (labels)
seq2seq_regression         linear at every step when T' = T;      ``[B, T', K]`` (labels)
                           else linear ``hidden -> T' * K`` on
                           the last hidden state (a forecast of
                           the T' steps after the inputs)
reconstruction             linear at every step                   ``[B, T, D]`` (``data``)
=========================  =====================================  ==========================

Classification logits keep the class axis last; ``C = info["num_classes"]``. Time pooling
(``time_pooling: {name: final|mean|max|mean_last_n, params: {scale, n}}``) reduces the hidden
states over time and multiplies by ``scale``, as seed 001's ``model.time_pooling`` does.

Token inputs (``info["vocab_size"]`` set): ``data`` holds integer ids ``[B, T]`` or ``[B, T, 1]``,
one-hot encoded with :func:`trainset.tokens.one_hot`, which refuses out-of-range ids instead of
clipping them. For reconstruction the target is then the one-hot encoding.

Both encoders are causal (a step sees only the past), so a seq2seq prediction at step t never
uses later inputs, and steps padded at the end never change earlier hidden states. When the
batch carries ``time_mask`` (bool ``[B, T]``, True = real step; the trainer adds it when it pads
to ``target_seq_len``), pooling and the forecast head ignore padded steps and per-step outputs
return it as ``mask``, so padded steps never count in the loss.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import torch
from torch import nn

from trainset.errors import TrainsetError
from trainset.models.mlp import (ConfiguredModel, check_choice, check_float, check_int, num_classes, resolve_params,
                                 variable)
from trainset.tasks import TASKS, get_task, sequence_tasks
from trainset.tokens import check_vocab_size, one_hot

logger = logging.getLogger(__name__)

__all__ = ["POOLINGS", "SequenceModel", "last_real", "pool_time"]

POOLINGS = ("final", "mean", "max", "mean_last_n")


def pool_time(hidden: torch.Tensor, name: str, scale: float = 1.0, n: int = 5,
              mask: torch.Tensor | None = None) -> torch.Tensor:
    """``scale * pool(hidden)`` over the time axis of ``[B, T, H]``: final, mean, max or mean_last_n.

    ``mask`` (bool ``[B, T]``, True = real step, e.g. the trainer's ``time_mask`` after padding to
    ``target_seq_len``) keeps padded steps out: ``final`` is the last real step, ``mean_last_n``
    the last ``n`` real steps. Every sample needs at least one real step.
    """
    if name not in POOLINGS:
        raise TrainsetError(f"time pooling {name!r} unknown. Fix: use one of {list(POOLINGS)}")
    if mask is None:  # the fast path: every step is real
        if name == "final":
            return scale * hidden[:, -1]
        if name == "max":
            return scale * hidden.amax(dim=1)
        return scale * (hidden[:, -n:] if name == "mean_last_n" else hidden).mean(dim=1)
    mask = mask.to(torch.bool)
    if name == "final":
        return scale * last_real(hidden, mask)
    if name == "max":
        return scale * hidden.masked_fill(~mask[:, :, None], float("-inf")).amax(dim=1)
    if name == "mean_last_n":
        from_end = mask.flip(1).cumsum(1).flip(1)  # real steps at or after each step
        mask = mask & (from_end <= n)
    weights = mask[:, :, None].to(hidden.dtype)
    return scale * (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def last_real(hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``[B, H]`` hidden state at each sample's last real step (the last step without a mask)."""
    if mask is None:
        return hidden[:, -1]
    steps = torch.arange(hidden.shape[1], device=hidden.device)
    last = torch.where(mask, steps, torch.full_like(steps, -1)).amax(dim=1).clamp(min=0)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def _check_pooling(model: str, value: Any) -> dict[str, Any]:
    """``{name, params: {scale, n}}`` with defaults filled in; unknown keys are errors."""
    if not isinstance(value, dict) or set(value) - {"name", "params"}:
        raise TrainsetError(f"model {model!r}: time_pooling must be {{name: ..., params: {{scale: 1.0, n: 5}}}}, "
                            f"got {value!r}. Fix: e.g. time_pooling: {{name: max, params: {{scale: 1.0}}}}")
    name = check_choice(model, "time_pooling.name", value.get("name", "mean"), POOLINGS)
    params = resolve_params(model, {"scale": 1.0, "n": 5}, value.get("params") or {})
    return {"name": name, "params": {"scale": check_float(model, "time_pooling.params.scale", params["scale"],
                                                          -1e9, 1e9),
                                     "n": check_int(model, "time_pooling.params.n", params["n"])}}


class _CausalConvBlock(nn.Module):
    """Dilated causal conv -> ReLU -> dropout, with a residual connection."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.pad = (kernel_size - 1) * dilation
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, C, T]
        return x + self.drop(torch.relu(self.conv(nn.functional.pad(x, (self.pad, 0)))))


class _TemporalConv(nn.Module):
    """1x1 input projection, then ``layers`` causal blocks with dilations 1, 2, 4, ..."""

    def __init__(self, in_dim: int, hidden: int, layers: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        self.proj = nn.Conv1d(in_dim, hidden, 1)
        self.blocks = nn.Sequential(*(_CausalConvBlock(hidden, kernel_size, 2**i, dropout) for i in range(layers)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, D] -> [B, T, hidden]
        return self.blocks(self.proj(x.transpose(1, 2))).transpose(1, 2)


class SequenceModel(ConfiguredModel):
    """GRU (``kind: gru``) or temporal-conv (``kind: tcn``) encoder with a head for the task.

    Params
    ------
    kind : "gru" | "tcn", default "gru"
    hidden : int, default 64
    layers : int, default 2 (GRU layers, or conv blocks with dilations 1, 2, 4, ...)
    kernel_size : int, default 3 (tcn only)
    dropout : float, default 0.0
    time_pooling : dict, default {name: mean, params: {scale: 1.0, n: 5}} (seq2static tasks)
    """

    name = "sequence"
    reads_tokens = True
    """One-hot encodes integer ``data`` (``info["vocab_size"]``): ``data.input_encoding: one_hot`` may pick it."""
    DEFAULTS: ClassVar[dict[str, Any]] = {"kind": "gru", "hidden": 64, "layers": 2, "kernel_size": 3, "dropout": 0.0,
                                          "time_pooling": {"name": "mean", "params": {"scale": 1.0, "n": 5}}}

    def __init__(self, params: dict[str, Any], info: dict[str, Any]) -> None:
        super().__init__(params, info)
        self.task = get_task(info.get("task", "")).name if info.get("task") else ""
        if self.task not in sequence_tasks():
            static_first = sorted(sequence_tasks(), key=lambda name: not TASKS[name].static)
            raise TrainsetError(f"model {self.name!r}: task {info.get('task')!r} is not a sequence task. "
                                f"Fix: use it on a dataset of one of {static_first}")
        data_shape, data_dtype = variable(info, "data", self.name)
        self.vocab = check_vocab_size(info["vocab_size"]) if info.get("vocab_size") is not None else None
        if self.vocab is None and (len(data_shape) != 2 or data_dtype.startswith(("int", "uint"))):
            raise TrainsetError(f"model {self.name!r}: data is {data_dtype} {data_shape} per sample; expected float "
                                "[T, D]. Fix: for token ids set data.input_encoding: one_hot and data.vocab_size")
        self.steps = data_shape[0]
        self.in_dim = self.vocab or data_shape[1]
        width, kind = params["hidden"], params["kind"]
        if kind == "gru":
            self.encoder: nn.Module = nn.GRU(self.in_dim, width, num_layers=params["layers"], batch_first=True,
                                            dropout=params["dropout"] if params["layers"] > 1 else 0.0)
        else:
            self.encoder = _TemporalConv(self.in_dim, width, params["layers"], params["kernel_size"],
                                         params["dropout"])
        self.out_shape, self.from_last = self._out_shape(info), False
        if self.task == "seq2seq_regression" and self.out_shape[0] != self.steps:
            self.from_last = True  # forecast T' != T steps from the last hidden state
            self.head = nn.Linear(width, self.out_shape[0] * self.out_shape[1])
        else:
            self.head = nn.Linear(width, self.out_shape[-1])

    def _out_shape(self, info: dict[str, Any]) -> list[int]:
        """Per-sample shape of ``pred``."""
        if TASKS[self.task].target == "data":  # reconstruction: the inputs are the targets
            return [self.steps, self.in_dim]
        labels, _ = variable(info, "labels", self.name)
        if self.task == "seq2static_classification":
            return [num_classes(info, self.name)]
        if self.task == "seq2seq_classification":
            if labels != [self.steps]:
                raise TrainsetError(f"model {self.name!r}: seq2seq classification labels {labels} must be [T] with "
                                    f"T = {self.steps}. Fix: apply target_seq_len to inputs and labels alike")
            return [self.steps, num_classes(info, self.name)]
        if self.task == "seq2seq_regression":
            if len(labels) != 2:
                raise TrainsetError(f"model {self.name!r}: seq2seq regression labels {labels} must be [T', K]")
            return labels
        if len(labels) != 1:
            raise TrainsetError(f"model {self.name!r}: {self.task} labels {labels} must be [K]")
        return labels

    @classmethod
    def from_config(cls, params: dict[str, Any] | None, info: dict[str, Any]) -> "SequenceModel":
        """Validate ``params`` against :attr:`DEFAULTS` and build the model for ``info``'s task."""
        params = resolve_params(cls.name, cls.DEFAULTS, params)
        check_choice(cls.name, "kind", params["kind"], ("gru", "tcn"))
        for key in ("hidden", "layers", "kernel_size"):
            params[key] = check_int(cls.name, key, params[key])
        params["dropout"] = check_float(cls.name, "dropout", params["dropout"], 0.0, 1.0)
        params["time_pooling"] = _check_pooling(cls.name, params["time_pooling"])
        return cls(params, info)

    def inputs(self, data: torch.Tensor) -> torch.Tensor:
        """Float ``[B, T, D]`` inputs: token ids one-hot encoded (out-of-range ids are an error)."""
        if self.vocab is not None and not data.dtype.is_floating_point:
            return one_hot(data, self.vocab)
        if data.dim() != 3 or data.shape[2] != self.in_dim:
            raise TrainsetError(f"model {self.name!r}: data has shape {list(data.shape)}, expected [B, T, "
                                f"{self.in_dim}]. Fix: use the dataset the model was built for")
        return data.float()

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """``pred`` by task (see the module table), ``target`` and optionally ``mask``."""
        x = self.inputs(batch["data"])
        time_mask = batch.get("time_mask")
        hidden = self.encoder(x)
        if isinstance(hidden, tuple):  # nn.GRU returns (outputs, last state)
            hidden = hidden[0]
        per_step = False
        if TASKS[self.task].static:
            pooling = self.params["time_pooling"]
            pred = self.head(pool_time(hidden, pooling["name"], **pooling["params"], mask=time_mask))
        elif self.from_last:
            pred = self.head(last_real(hidden, time_mask)).reshape(x.shape[0], *self.out_shape)
        else:
            pred, per_step = self.head(hidden), True
        target_name = TASKS[self.task].target
        target = x if target_name == "data" else batch[target_name]
        result = {"pred": pred, "target": target}
        if per_step and time_mask is not None:
            result["mask"] = time_mask.to(torch.bool)  # [B, T]: aligned with pred's leading dims
        return result
