"""Loss and penalty registries, and the weighted objective a config's loss list builds.

The old trainers looked losses up by name and *skipped* names they did not know with a warning,
so a typo trained a different model than the config described (seed 001 even documented a loss
that was never registered). Here every name resolves through :data:`LOSSES` or
:data:`PENALTIES`, and anything else is a :class:`~trainset.errors.TrainsetError` listing the
registered names. Parameters are checked against each function's signature when the spec is
made, so ``{margn: 0.2}`` fails at config time, not after an hour of training. The names, their
parameters and :class:`LossSpec` live in the torch-free :mod:`trainset.train.names`, which the
workflow's start-up checks read; registering here declares them there.

Conventions shared by every loss ``loss(pred, target, mask=None, **params) -> scalar``:

- ``mask`` is a bool tensor, True = the element counts. Its dimensions align with the *leading*
  dimensions of what the loss averages over (``[B]`` or ``[B, T]`` for ``[B, T, K]``
  predictions; ``[B, S]`` shocks for ``[B, S, H+1, V]`` IRFs), size-1 dimensions broadcast.
- The result is the mean over counted elements, so padding changes neither the value nor the
  gradient (padded inputs are zeroed before the arithmetic, so even NaN padding is harmless).
  With nothing counted the loss is 0.
- Shapes must agree exactly; a ``[B]`` vs ``[B, 1]`` pair is an error, never a broadcast.

Penalties ``penalty(model, pred=None, **params) -> scalar`` score the model (or its output)
rather than a prediction against a target. :func:`build_objective` mixes both kinds in one
weighted sum.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainset.errors import TrainsetError
from trainset.train.names import CHECKS, HORIZON_WEIGHTS, LossSpec, declare_term

logger = logging.getLogger(__name__)

__all__ = ["LOSSES", "PENALTIES", "LossSpec", "Objective", "build_objective",
           "horizon_weights", "register_loss", "register_penalty"]

LossFn = Callable[..., Tensor]
LOSSES: dict[str, LossFn] = {}
"""Loss name -> ``loss(pred, target, mask=None, **params)``."""
PENALTIES: dict[str, LossFn] = {}
"""Penalty name -> ``penalty(model, pred=None, **params)``."""


def register_loss(name: str, check: Callable[[dict[str, Any]], None] | None = None):
    """Register a loss under ``name``; ``check(params)`` validates its parameters up front."""
    return _register(LOSSES, "loss", name, check)


def register_penalty(name: str, check: Callable[[dict[str, Any]], None] | None = None):
    """Register a model penalty under ``name`` (see :func:`register_loss`)."""
    return _register(PENALTIES, "penalty", name, check)


def _register(registry: dict[str, LossFn], kind: str, name: str, check):
    def decorator(fn: LossFn) -> LossFn:
        if name in LOSSES or name in PENALTIES:
            raise TrainsetError(f"loss/penalty {name!r} is already registered")
        params = tuple(n for n, p in inspect.signature(fn).parameters.items()
                       if p.kind == inspect.Parameter.KEYWORD_ONLY)
        declare_term(kind, name, params, check)  # the torch-free names LossSpec checks against
        registry[name] = fn
        return fn
    return decorator


# --------------------------------------------------------------------------- masking helpers

def _expand_mask(mask: Tensor | None, shape: torch.Size | tuple[int, ...], what: str) -> Tensor | None:
    """``mask`` aligned on the leading dims of ``shape`` and broadcast to it (bool)."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        raise TrainsetError(f"{what}: mask must be a bool tensor (True = counts), got "
                            f"{getattr(mask, 'dtype', type(mask).__name__)}. Fix: pass mask.bool()")
    shape = tuple(shape)
    if mask.ndim > len(shape):
        raise TrainsetError(f"{what}: mask shape {tuple(mask.shape)} has more dims than {shape}")
    m = mask.reshape(tuple(mask.shape) + (1,) * (len(shape) - mask.ndim))
    try:
        if torch.broadcast_shapes(m.shape, shape) != torch.Size(shape):
            raise RuntimeError
    except RuntimeError:
        raise TrainsetError(f"{what}: mask shape {tuple(mask.shape)} does not fit {shape} "
                            "(mask dims align with the leading dims)") from None
    return m.expand(shape)


def _zero_out(x: Tensor, m: Tensor | None) -> Tensor:
    """``x`` with uncounted elements set to 0, so padding never reaches values or gradients."""
    return x if m is None else torch.where(m, x, torch.zeros((), dtype=x.dtype, device=x.device))


def _masked_mean(values: Tensor, m: Tensor | None) -> Tensor:
    if m is None:
        return values.mean()
    total = _zero_out(values, m).sum()
    return total / m.sum().clamp(min=1).to(values.dtype)


def _same_shape(pred: Tensor, target: Tensor, what: str) -> None:
    if pred.shape != target.shape:
        raise TrainsetError(f"{what}: pred {tuple(pred.shape)} and target {tuple(target.shape)} "
                            "differ. Fix: reshape in the model so both match exactly")


def _class_inputs(pred: Tensor, target: Tensor, mask: Tensor | None, what: str):
    """Flattened logits [N, C], class ids [N] and mask [N] (uncounted rows zeroed)."""
    if target.is_floating_point() or target.dtype == torch.bool:
        raise TrainsetError(f"{what}: target must hold integer class ids, got {target.dtype}. "
                            "Fix: store classification labels as int64 (use mse/bce for floats)")
    if pred.ndim != target.ndim + 1 or pred.shape[:-1] != target.shape:
        raise TrainsetError(f"{what}: logits {tuple(pred.shape)} need target {tuple(pred.shape[:-1])}, "
                            f"got {tuple(target.shape)}")
    n_classes = pred.shape[-1]
    m = _expand_mask(mask, target.shape, what)
    logits, ids = pred.reshape(-1, n_classes), target.reshape(-1).long()
    m = None if m is None else m.reshape(-1)
    if m is not None:
        ids = _zero_out(ids, m)
        logits = _zero_out(logits, m[:, None])
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= n_classes):
        raise TrainsetError(f"{what}: class ids must lie in 0..{n_classes - 1}, got "
                            f"{int(ids.min())}..{int(ids.max())}. Fix: check num_classes or mask padding")
    return logits, ids, m


# --------------------------------------------------------------------------- losses

@register_loss("mse")
def mse(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared error over counted elements."""
    _same_shape(pred, target, "mse")
    m = _expand_mask(mask, pred.shape, "mse")
    return _masked_mean((_zero_out(pred, m) - _zero_out(target, m)) ** 2, m)


@register_loss("mae")
def mae(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean absolute error over counted elements."""
    _same_shape(pred, target, "mae")
    m = _expand_mask(mask, pred.shape, "mae")
    return _masked_mean((_zero_out(pred, m) - _zero_out(target, m)).abs(), m)


@register_loss("cross_entropy", CHECKS["cross_entropy"])
def cross_entropy(pred: Tensor, target: Tensor, mask: Tensor | None = None, *,
                  label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross entropy: logits ``[B, C]`` or ``[B, T, C]``, int target ``[B]`` or ``[B, T]``.

    Equals :func:`torch.nn.functional.cross_entropy` (mean reduction, and with masked positions
    given ``ignore_index``); averaged over counted positions, never over classes.
    """
    logits, ids, m = _class_inputs(pred, target, mask, "cross_entropy")
    per = F.cross_entropy(logits, ids, reduction="none", label_smoothing=float(label_smoothing))
    return _masked_mean(per, m)


@register_loss("bce", CHECKS["bce"])
def bce(pred: Tensor, target: Tensor, mask: Tensor | None = None, *,
        pos_weight: float | list[float] | None = None) -> Tensor:
    """Binary cross entropy with logits; float targets in [0, 1] of the same shape as ``pred``.

    ``pos_weight`` (one number, or one per entry of the last dim) up-weights positives as in
    :func:`torch.nn.functional.binary_cross_entropy_with_logits`.
    """
    _same_shape(pred, target, "bce")
    m = _expand_mask(mask, pred.shape, "bce")
    target = _zero_out(target.to(pred.dtype), m)
    if target.numel() and (float(target.min()) < 0 or float(target.max()) > 1):
        raise TrainsetError("bce: targets must lie in [0, 1]. Fix: pass probabilities or 0/1 labels")
    pw = None if pos_weight is None else torch.as_tensor(pos_weight, dtype=pred.dtype, device=pred.device)
    per = F.binary_cross_entropy_with_logits(_zero_out(pred, m), target, pos_weight=pw, reduction="none")
    return _masked_mean(per, m)


@register_loss("gap_loss", CHECKS["gap_loss"])
def gap_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None, *, margin: float = 0.2) -> Tensor:
    """Margin loss (seed 001): per sample, sum over wrong classes of ``max(0, z_c - z_y + margin)``.

    Averaged over counted samples (or positions, for ``[B, T, C]`` logits).
    """
    logits, ids, m = _class_inputs(pred, target, mask, "gap_loss")
    z_true = logits.gather(1, ids[:, None])
    hinge = F.relu(logits - z_true + margin)
    wrong = torch.ones_like(hinge, dtype=torch.bool).scatter(1, ids[:, None], False)
    return _masked_mean(_zero_out(hinge, wrong).sum(dim=1), m)


@register_loss("final_timestep_zero_mse")
def final_timestep_zero_mse(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """MSE on the final timestep only: ``pred[:, -1]`` against ``target[:, -1]``.

    Seed 001 lists this loss as "MSE on final timestep only" without saying against what; we
    compare with the target's final step (pass a zero target to pull the final output to
    zero, which is what the name suggests). ``pred`` and ``target`` are ``[B, T, ...]``;
    ``mask`` is per sample ``[B]`` or per step ``[B, T, ...]`` (its final step is used).
    """
    _same_shape(pred, target, "final_timestep_zero_mse")
    if pred.ndim < 2:
        raise TrainsetError(f"final_timestep_zero_mse: needs [B, T, ...] tensors, got {tuple(pred.shape)}")
    if mask is not None and mask.ndim >= 2:
        mask = mask[:, -1]
    return mse(pred[:, -1], target[:, -1], mask)


# --------------------------------------------------------------------------- seed-001 losses by their names

@register_loss("top_gap_loss", CHECKS["top_gap_loss"])
def top_gap_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None, *, margin: float = 0.2) -> Tensor:
    """Top-rival margin loss (seed 001's "variant of gap loss focusing on top predictions").

    Per sample ``max(0, margin - (z_y - max_{j != y} z_j))``: only the highest wrong-class logit
    is pushed ``margin`` below the true one (the multiclass hinge of Crammer & Singer, 2001, "On
    the algorithmic implementation of multiclass kernel-based vector machines", JMLR 2, with a
    configurable margin; :func:`gap_loss` instead sums the hinge over every wrong class).
    Averaged over counted samples (or positions, for ``[B, T, C]`` logits); needs C >= 2.
    """
    logits, ids, m = _class_inputs(pred, target, mask, "top_gap_loss")
    if logits.shape[1] < 2:
        raise TrainsetError("top_gap_loss: needs at least 2 classes")
    z_true = logits.gather(1, ids[:, None])[:, 0]
    rivals = logits.scatter(1, ids[:, None], float("-inf")).amax(dim=1)
    return _masked_mean(F.relu(margin - (z_true - rivals)), m)


@register_loss("rich_margin_loss", CHECKS["rich_margin_loss"])
def rich_margin_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None, *, margin: float = 0.35,
                     scale: float = 1.0) -> Tensor:
    """Additive-margin softmax cross entropy (seed 001's "advanced margin-based loss").

    ``CE(scale * (z - margin * onehot(y)), y)``: the true-class logit must beat the others by
    ``margin`` before its loss vanishes (AM-Softmax: Wang, Cheng, Liu & Liu, 2018, "Additive
    margin softmax for face verification", IEEE Signal Processing Letters 25(7)). The paper
    applies it to cosine logits with ``scale`` 30; trainset's models give unnormalised logits,
    so ``scale`` defaults to 1 (``margin`` to the paper's 0.35). ``margin = 0, scale = 1`` is
    :func:`cross_entropy`. Averaged over counted samples or positions.
    """
    logits, ids, m = _class_inputs(pred, target, mask, "rich_margin_loss")
    shifted = logits - margin * F.one_hot(ids, logits.shape[1]).to(logits.dtype)
    return _masked_mean(F.cross_entropy(scale * shifted, ids, reduction="none"), m)


@register_loss("mse_gradient_cutoff", CHECKS["mse_gradient_cutoff"])
def mse_gradient_cutoff(pred: Tensor, target: Tensor, mask: Tensor | None = None, *, cutoff: float = 1.0) -> Tensor:
    """MSE whose gradient is cut at ``cutoff`` (seed 001: "MSE with gradient cutoff for stability").

    Per element, with ``e = pred - target`` and ``c = cutoff``: ``e^2`` for ``|e| <= c`` and
    ``2 c |e| - c^2`` beyond, so the value is the MSE's for small errors and the gradient
    ``2 e`` is clipped to ``+-2c`` (outliers pull with bounded force). This is twice Huber's
    loss with ``delta = c`` (Huber, 1964, "Robust estimation of a location parameter", Ann.
    Math. Statist. 35(1)). Averaged over counted elements.
    """
    _same_shape(pred, target, "mse_gradient_cutoff")
    m = _expand_mask(mask, pred.shape, "mse_gradient_cutoff")
    err = (_zero_out(pred, m) - _zero_out(target, m)).abs()
    per = torch.where(err <= cutoff, err ** 2, 2 * cutoff * err - cutoff ** 2)
    return _masked_mean(per, m)


def _next_step(mask: Tensor | None, shape: tuple[int, int], what: str) -> Tensor | None:
    """Counted (t, t+1) pairs ``[B, T-1]``: both steps count (per-sample masks count every step)."""
    m = _expand_mask(mask, shape, what)
    return None if m is None else m[:, :-1] & m[:, 1:]


@register_loss("autoregressive_loss")
def autoregressive_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Next-step prediction MSE with teacher forcing (seed 001's "for sequence generation tasks").

    ``pred`` ``[B, T, D]`` at step t is compared with the *next* input ``target[:, t+1]``:
    ``mean_{b, t < T-1, d} (pred[b, t, d] - target[b, t+1, d])^2`` (Graves, 2013, "Generating
    sequences with recurrent neural networks", arXiv:1308.0850). With the reconstruction task
    the target is the input sequence itself, and trainset's sequence encoders are causal, so
    step t has seen only inputs up to t. ``mask`` ``[B]`` or ``[B, T]``: a pair counts when
    both of its steps do. Needs T >= 2.
    """
    _same_shape(pred, target, "autoregressive_loss")
    if pred.ndim < 2 or pred.shape[1] < 2:
        raise TrainsetError(f"autoregressive_loss: needs [B, T, ...] with T >= 2, got {tuple(pred.shape)}")
    m = _next_step(mask, tuple(pred.shape[:2]), "autoregressive_loss")
    return mse(pred[:, :-1], target[:, 1:], m)


@register_loss("autoregressive_cross_entropy")
def autoregressive_cross_entropy(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Next-token cross entropy with teacher forcing (seed 001: "cross-entropy for autoregressive tasks").

    Logits ``pred`` ``[B, T, V]`` at step t against the token at ``t+1``:
    ``mean_{b, t < T-1} CE(pred[b, t], y[b, t+1])`` (Graves, 2013, arXiv:1308.0850; Bengio et
    al., 2003, "A neural probabilistic language model", JMLR 3). ``target`` holds the token ids
    ``[B, T]`` (or ``[B, T, 1]``), or their one-hot encoding ``[B, T, V]`` (what the
    reconstruction task's target is for ``input_encoding: one_hot``); anything else that is
    not exactly one-hot is refused. ``mask`` as in :func:`autoregressive_loss`.
    """
    what = "autoregressive_cross_entropy"
    if pred.ndim != 3 or pred.shape[1] < 2:
        raise TrainsetError(f"{what}: needs logits [B, T, V] with T >= 2, got {tuple(pred.shape)}")
    ids = _token_ids(target, pred.shape, what)
    m = _next_step(mask, tuple(pred.shape[:2]), what)
    return cross_entropy(pred[:, :-1], ids[:, 1:], m)


def _token_ids(target: Tensor, shape: torch.Size, what: str) -> Tensor:
    """Token ids ``[B, T]`` from ids ``[B, T]``/``[B, T, 1]`` or an exact one-hot ``[B, T, V]``."""
    if target.is_floating_point():
        if tuple(target.shape) != tuple(shape) or not bool(((target == 0) | (target == 1)).all()) \
                or not bool((target.sum(dim=-1) == 1).all()):
            raise TrainsetError(f"{what}: a float target must be the one-hot encoding {tuple(shape)} of the "
                                f"tokens, got {tuple(target.shape)} (not one-hot). Fix: use integer token ids "
                                "or input_encoding: one_hot with the reconstruction task")
        return target.argmax(dim=-1)
    if target.ndim == 3 and target.shape[-1] == 1:
        target = target[..., 0]
    if tuple(target.shape) != tuple(shape[:2]):
        raise TrainsetError(f"{what}: token ids must be [B, T] = {tuple(shape[:2])}, got {tuple(target.shape)}")
    return target


def horizon_weights(kind: str, n_horizons: int, tau: float = 20.0, *,
                    dtype: torch.dtype = torch.float32, device: Any = None) -> Tensor:
    """Weights over horizons ``h = 0..H`` (``n_horizons = H + 1``), summing to 1 (seed 003).

    ``uniform``: ``1 / (H+1)``; ``exponential``: ``exp(-h / tau)`` normalised;
    ``impact``: 0.3 at ``h = 0`` and ``0.7 / H`` after (all weight at 0 when ``H = 0``).
    """
    if kind not in HORIZON_WEIGHTS:
        raise TrainsetError(f"unknown horizon weights {kind!r}. Fix: use one of {list(HORIZON_WEIGHTS)}")
    if n_horizons < 1:
        raise TrainsetError(f"horizon weights need at least one horizon, got {n_horizons}")
    h = torch.arange(n_horizons, dtype=torch.float64)
    if kind == "uniform":
        w = torch.full((n_horizons,), 1.0 / n_horizons, dtype=torch.float64)
    elif kind == "exponential":
        w = torch.exp(-h / float(tau))
        w = w / w.sum()
    elif n_horizons == 1:
        w = torch.ones(1, dtype=torch.float64)
    else:
        w = torch.full((n_horizons,), 0.7 / (n_horizons - 1), dtype=torch.float64)
        w[0] = 0.3
    return w.to(dtype=dtype, device=device)


def _horizon_loss(pred, target, mask, what, elementwise, weights, tau, lambda_smooth) -> Tensor:
    _same_shape(pred, target, what)
    if pred.ndim == 3:  # single-shock output [B, H+1, V]
        pred, target = pred[:, None], target[:, None]
    if pred.ndim != 4:
        raise TrainsetError(f"{what}: needs IRFs [B, S, H+1, V] (or [B, H+1, V]), got {tuple(pred.shape)}")
    b, s, n_h, _ = pred.shape
    shocks = _expand_mask(mask, (b, s), what)
    m = None if shocks is None else shocks[:, :, None, None].expand(pred.shape)
    pred, target = _zero_out(pred, m), _zero_out(target, m)
    w = horizon_weights(weights, n_h, tau, dtype=pred.dtype, device=pred.device)
    per = (elementwise(pred - target) * w[:, None]).sum(dim=2)  # [B, S, V]
    loss = _masked_mean(per, None if shocks is None else shocks[:, :, None].expand(per.shape))
    if lambda_smooth and n_h >= 3:
        d2 = pred[:, :, 2:] - 2 * pred[:, :, 1:-1] + pred[:, :, :-2]
        m2 = None if m is None else m[:, :, 2:]
        loss = loss + lambda_smooth * _masked_mean(d2 ** 2, m2)
    return loss


@register_loss("horizon_mse", CHECKS["horizon_mse"])
def horizon_mse(pred: Tensor, target: Tensor, mask: Tensor | None = None, *, weights: str = "uniform",
                tau: float = 20.0, lambda_smooth: float = 0.0) -> Tensor:
    """Horizon-weighted IRF MSE (seed 003) plus ``lambda_smooth`` x mean squared 2nd difference.

    ``pred``/``target`` ``[B, S, H+1, V]``; ``mask`` ``[B, S]`` marks real shocks (padding of
    mixed-world batches excluded; every real shock counts). The data term is the mean over
    counted (sample, shock, variable) of ``sum_h w[h] (pred - target)^2``, so ``uniform`` equals
    plain MSE and the scale does not depend on how many shocks a world has. The smoothness term
    is the mean over counted elements of ``(p[h+1] - 2 p[h] + p[h-1])^2`` along ``h``.
    """
    return _horizon_loss(pred, target, mask, "horizon_mse", torch.square, weights, tau, lambda_smooth)


@register_loss("horizon_mae", CHECKS["horizon_mae"])
def horizon_mae(pred: Tensor, target: Tensor, mask: Tensor | None = None, *, weights: str = "uniform",
                tau: float = 20.0, lambda_smooth: float = 0.0) -> Tensor:
    """As :func:`horizon_mse` with absolute errors."""
    return _horizon_loss(pred, target, mask, "horizon_mae", torch.abs, weights, tau, lambda_smooth)


# --------------------------------------------------------------------------- penalties

def _weight_matrices(model: nn.Module | None, what: str) -> list[Tensor]:
    if model is None:
        raise TrainsetError(f"penalty {what!r} needs the model. Fix: call objective(..., model=model)")
    return [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]


@register_penalty("l1")
def l1(model: nn.Module | None, pred: Tensor | None = None) -> Tensor:
    """Sum of ``|w|`` over trainable weight matrices (ndim >= 2: linear, conv, embedding).

    Biases and norm scales (1-D) are left alone, and so are buffers such as fitted scalers (the
    old flight model stored its scalers as parameters, so weight decay shrank them).
    """
    ws = _weight_matrices(model, "l1")
    return torch.stack([w.abs().sum() for w in ws]).sum() if ws else torch.zeros(())


@register_penalty("l2")
def l2(model: nn.Module | None, pred: Tensor | None = None) -> Tensor:
    """Sum of ``w^2`` over trainable weight matrices (see :func:`l1`)."""
    ws = _weight_matrices(model, "l2")
    return torch.stack([w.square().sum() for w in ws]).sum() if ws else torch.zeros(())


@register_penalty("monotonicity", CHECKS["monotonicity"])
def monotonicity(model: nn.Module | None = None, pred: Tensor | None = None, *, logits: bool = True,
                 dim: int = -1) -> Tensor:
    """Ordered-threshold penalty (seed 002): ``sum_k mean relu(p_k - p_{k-1})``.

    ``p`` (``sigmoid(pred)`` when ``logits``) holds P(score > t_k) for increasing thresholds
    along ``dim``, so it must not increase; the mean runs over every other axis (the batch).
    The config's weight plays the role of the old ``monotonicity_lambda``.
    """
    if pred is None:
        raise TrainsetError("penalty 'monotonicity' needs the model output. Fix: pass pred")
    p = torch.sigmoid(pred) if logits else pred
    p = p.movedim(dim, -1)
    if p.shape[-1] < 2:
        return p.new_zeros(())
    up = F.relu(p[..., 1:] - p[..., :-1])
    return up.reshape(-1, up.shape[-1]).mean(dim=0).sum()


# --------------------------------------------------------------------------- specs and objective

class Objective:
    """A weighted sum of losses and penalties: ``objective(pred, target, mask, model)``.

    Returns ``(total, terms)``: ``total`` is the differentiable sum of ``weight * value``;
    ``terms`` maps each term's name (``name#2`` for a repeated name) to its *unweighted*
    value, detached, for logging.
    """

    def __init__(self, specs: Iterable[LossSpec]) -> None:
        self.specs: tuple[LossSpec, ...] = tuple(specs)
        if not self.specs:
            raise TrainsetError("the objective needs at least one loss. Fix: set training.losses")
        self.keys: tuple[str, ...] = _unique_keys([s.name for s in self.specs])

    def __call__(self, pred: Tensor, target: Tensor | None, mask: Tensor | None = None,
                 model: nn.Module | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        total: Tensor | None = None
        terms: dict[str, Tensor] = {}
        for key, spec in zip(self.keys, self.specs):
            if spec.kind == "loss":
                if target is None:
                    raise TrainsetError(f"loss {spec.name!r} needs a target; the model returned none")
                value = LOSSES[spec.name](pred, target, mask, **spec.params)
            else:
                value = PENALTIES[spec.name](model, pred=pred, **spec.params)
            value = value.to(pred.device)
            terms[key] = value.detach()
            total = spec.weight * value if total is None else total + spec.weight * value
        return total, terms

    def __repr__(self) -> str:
        return "Objective(" + " + ".join(f"{s.weight:g}*{s.name}" for s in self.specs) + ")"


def _unique_keys(names: list[str]) -> tuple[str, ...]:
    seen: dict[str, int] = {}
    keys = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        keys.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return tuple(keys)


def build_objective(specs: Iterable[LossSpec | Mapping[str, Any] | str]) -> Objective:
    """The :class:`Objective` of a loss list (``LossSpec``, ``{name, weight, params}`` or names)."""
    built = []
    for i, spec in enumerate(specs):
        try:
            built.append(LossSpec.from_dict(spec))
        except TrainsetError as err:
            raise TrainsetError(f"losses[{i}]: {err}") from None
    return Objective(built)
