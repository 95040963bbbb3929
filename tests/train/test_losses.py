"""Losses and penalties on small hand-computed cases; the objective; unknown names are errors."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainset.errors import TrainsetError
from trainset.train.losses import (LOSSES, PENALTIES, LossSpec, build_objective, horizon_weights)

T = torch.tensor


def close(a, b, tol=1e-6):
    a, b = (x.detach() if isinstance(x, torch.Tensor) else x for x in (a, b))
    return abs(float(a) - float(b)) < tol


# ----------------------------------------------------------------------------- mse / mae

def test_mse_mae_by_hand():
    pred = T([[1.0, 2.0], [3.0, 4.0]])
    target = T([[0.0, 2.0], [1.0, 1.0]])  # errors 1, 0, 2, 3
    assert close(LOSSES["mse"](pred, target), (1 + 0 + 4 + 9) / 4)
    assert close(LOSSES["mae"](pred, target), (1 + 0 + 2 + 3) / 4)
    row0 = T([True, False])  # mask over B aligns with the leading dim
    assert close(LOSSES["mse"](pred, target, row0), (1 + 0) / 2)
    assert close(LOSSES["mae"](pred, target, row0), (1 + 0) / 2)
    elem = T([[True, False], [False, True]])
    assert close(LOSSES["mse"](pred, target, elem), (1 + 9) / 2)


def test_mask_excludes_padding_exactly_even_nan():
    pred = T([[1.0, 2.0], [float("nan"), 5.0]], requires_grad=True)
    target = T([[0.0, 2.0], [float("nan"), 0.0]])
    mask = T([[True, True], [False, True]])
    loss = LOSSES["mse"](pred, target, mask)
    assert close(loss, (1 + 0 + 25) / 3)
    loss.backward()
    assert torch.isfinite(pred.grad).all()
    assert pred.grad[1, 0] == 0
    assert close(pred.grad[1, 1], 2 * 5 / 3)


def test_nothing_counted_is_zero():
    pred = torch.ones(2, 3)
    assert float(LOSSES["mse"](pred, torch.zeros(2, 3), torch.zeros(2, dtype=torch.bool))) == 0.0


def test_shape_and_mask_errors():
    with pytest.raises(TrainsetError, match=r"\[B\] vs|differ"):
        LOSSES["mse"](torch.zeros(4), torch.zeros(4, 1))
    with pytest.raises(TrainsetError, match="bool"):
        LOSSES["mse"](torch.zeros(4), torch.zeros(4), torch.ones(4))
    with pytest.raises(TrainsetError, match="does not fit"):
        LOSSES["mse"](torch.zeros(4, 2), torch.zeros(4, 2), torch.ones(3, dtype=torch.bool))


# ----------------------------------------------------------------------------- cross entropy

def test_cross_entropy_by_hand():
    logits = T([[0.0, math.log(3.0)]])  # softmax [0.25, 0.75]
    assert close(LOSSES["cross_entropy"](logits, T([1])), -math.log(0.75))
    assert close(LOSSES["cross_entropy"](logits, T([0])), -math.log(0.25))


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_equals_torch(smoothing):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 4, generator=g)
    target = torch.randint(0, 4, (6,), generator=g)
    ours = LOSSES["cross_entropy"](logits, target, label_smoothing=smoothing)
    assert torch.allclose(ours, F.cross_entropy(logits, target, label_smoothing=smoothing))
    seq = torch.randn(3, 5, 4, generator=g)  # [B, T, C]
    ids = torch.randint(0, 4, (3, 5), generator=g)
    ours = LOSSES["cross_entropy"](seq, ids, label_smoothing=smoothing)
    ref = F.cross_entropy(seq.permute(0, 2, 1), ids, label_smoothing=smoothing)
    assert torch.allclose(ours, ref)
    mask = torch.rand(3, 5, generator=g) > 0.4
    padded = torch.where(mask, ids, torch.full_like(ids, 99))  # bad ids where padded
    ours = LOSSES["cross_entropy"](seq, padded, mask, label_smoothing=smoothing)
    ref = F.cross_entropy(seq.permute(0, 2, 1), torch.where(mask, ids, -100), ignore_index=-100,
                          label_smoothing=smoothing)
    assert torch.allclose(ours, ref)


def test_cross_entropy_refuses_float_targets_and_bad_ids():
    with pytest.raises(TrainsetError, match="integer class ids"):
        LOSSES["cross_entropy"](torch.zeros(2, 3), torch.zeros(2))
    with pytest.raises(TrainsetError, match="0..2"):
        LOSSES["cross_entropy"](torch.zeros(2, 3), T([0, 3]))


# ----------------------------------------------------------------------------- bce

def test_bce_by_hand_and_equals_torch():
    assert close(LOSSES["bce"](T([0.0]), T([1.0])), math.log(2.0))
    # logit ln 3 -> p = 0.75; target 0 -> -ln(0.25); with pos_weight a positive counts double
    assert close(LOSSES["bce"](T([math.log(3.0)]), T([0.0])), -math.log(0.25))
    assert close(LOSSES["bce"](T([math.log(3.0)]), T([1.0]), pos_weight=2.0), -2 * math.log(0.75))
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(8, 11, generator=g)
    target = (torch.rand(8, 11, generator=g) > 0.5).float()
    assert torch.allclose(LOSSES["bce"](logits, target), F.binary_cross_entropy_with_logits(logits, target))
    pw = [float(i + 1) for i in range(11)]
    ref = F.binary_cross_entropy_with_logits(logits, target, pos_weight=torch.tensor(pw))
    assert torch.allclose(LOSSES["bce"](logits, target, pos_weight=pw), ref)
    rows = T([True] * 5 + [False] * 3)
    ref = F.binary_cross_entropy_with_logits(logits[:5], target[:5])
    assert torch.allclose(LOSSES["bce"](logits, target, rows), ref)


def test_bce_refuses_targets_outside_unit_interval():
    with pytest.raises(TrainsetError, match=r"\[0, 1\]"):
        LOSSES["bce"](torch.zeros(2), T([0.0, 2.0]))


# ----------------------------------------------------------------------------- gap loss

def test_gap_loss_by_hand():
    pred = T([[0.5, 1.0, 0.0], [2.0, 1.0, 0.0]])
    target = T([0, 0])
    # sample 0: max(0, 1.0-0.5+0.2)=0.7, max(0, 0.0-0.5+0.2)=0 -> 0.7 ; sample 1: all below -> 0
    assert close(LOSSES["gap_loss"](pred, target), (0.7 + 0.0) / 2)
    # margin 1.5: sample 0: 2.0 + 1.0 = 3.0 ; sample 1: 0.5 + 0 = 0.5
    assert close(LOSSES["gap_loss"](pred, target, margin=1.5), (3.0 + 0.5) / 2)
    assert close(LOSSES["gap_loss"](pred, target, T([True, False]), margin=1.5), 3.0)
    # the true class never contributes its own margin: a lone confident class costs 0
    assert float(LOSSES["gap_loss"](T([[5.0, 0.0]]), T([0]))) == 0.0
    seq = pred[None]  # [1, 2, 3] with ids [1, 2]
    assert close(LOSSES["gap_loss"](seq, T([[0, 0]]), T([[True, False]])), 0.7)


# ----------------------------------------------------------------------------- final timestep

def test_final_timestep_mse_by_hand():
    pred = T([[1.0, 2.0, 3.0], [0.0, 0.0, -2.0]])
    target = T([[9.0, 9.0, 1.0], [9.0, 9.0, 0.0]])  # only the last column matters: errors 2, -2
    assert close(LOSSES["final_timestep_zero_mse"](pred, target), (4 + 4) / 2)
    assert close(LOSSES["final_timestep_zero_mse"](pred, torch.zeros_like(pred)), (9 + 4) / 2)
    assert close(LOSSES["final_timestep_zero_mse"](pred, target, T([True, False])), 4.0)
    steps = T([[True, True, False], [True, True, True]])  # sample 0's final step is padding
    assert close(LOSSES["final_timestep_zero_mse"](pred, target, steps), 4.0)


# ----------------------------------------------------------------------------- horizons

@pytest.mark.parametrize("kind", ["uniform", "exponential", "impact"])
@pytest.mark.parametrize("n", [1, 2, 41])
def test_horizon_weights_sum_to_one(kind, n):
    w = horizon_weights(kind, n, dtype=torch.float64)
    assert w.shape == (n,) and close(w.sum(), 1.0, 1e-12) and (w > 0).all()


def test_horizon_weights_closed_forms():
    H = 40
    assert torch.allclose(horizon_weights("uniform", H + 1, dtype=torch.float64),
                          torch.full((H + 1,), 1 / 41, dtype=torch.float64))
    e = horizon_weights("exponential", H + 1, dtype=torch.float64)
    z = sum(math.exp(-h / 20) for h in range(H + 1))
    for h in (0, 1, 20, 40):
        assert close(e[h], math.exp(-h / 20) / z, 1e-12)
    i = horizon_weights("impact", H + 1, dtype=torch.float64)
    assert close(i[0], 0.3, 1e-12) and torch.allclose(i[1:], torch.full((H,), 0.7 / 40, dtype=torch.float64))
    assert torch.allclose(horizon_weights("impact", 3), T([0.3, 0.35, 0.35]))


def test_horizon_mse_by_hand():
    pred = torch.zeros(1, 1, 3, 1)
    target = T([1.0, 2.0, 3.0]).reshape(1, 1, 3, 1)
    # impact weights [0.3, 0.35, 0.35]: 0.3*1 + 0.35*4 + 0.35*9 = 4.85
    assert close(LOSSES["horizon_mse"](pred, target, weights="impact"), 4.85, 1e-5)
    assert close(LOSSES["horizon_mae"](pred, target, weights="impact"), 0.3 + 0.7 + 1.05, 1e-5)
    assert close(LOSSES["horizon_mse"](pred, target), (1 + 4 + 9) / 3, 1e-5)  # uniform = plain MSE


def test_horizon_uniform_equals_plain_mse():
    g = torch.Generator().manual_seed(2)
    pred, target = torch.randn(4, 3, 41, 3, generator=g), torch.randn(4, 3, 41, 3, generator=g)
    assert torch.allclose(LOSSES["horizon_mse"](pred, target), F.mse_loss(pred, target))
    assert torch.allclose(LOSSES["horizon_mse"](pred[:, 0], target[:, 0]), F.mse_loss(pred[:, 0], target[:, 0]))


def test_horizon_mask_counts_every_real_shock_and_no_padding():
    g = torch.Generator().manual_seed(3)
    pred, target = torch.randn(2, 2, 5, 3, generator=g), torch.randn(2, 2, 5, 3, generator=g)
    pred[1, 1], target[1, 1] = float("nan"), 1e6  # sample 1 has one real shock, then padding
    mask = T([[True, True], [True, False]])
    w = horizon_weights("exponential", 5, tau=2.0)
    expected = sum(float((w[:, None] * (pred[b, s] - target[b, s]) ** 2).sum(0).mean())
                   for b, s in [(0, 0), (0, 1), (1, 0)]) / 3
    loss = LOSSES["horizon_mse"](pred, target, mask, weights="exponential", tau=2.0)
    assert close(loss, expected, 1e-5)
    moved = pred.clone()
    moved[0, 1] += 1.0  # shock 1 of a real sample changes the loss (the old code trained shock 0 only)
    assert not close(LOSSES["horizon_mse"](moved, target, mask), LOSSES["horizon_mse"](pred, target, mask))


def test_smoothness_term_by_hand():
    p = T([0.0, 1.0, 4.0, 9.0]).reshape(1, 1, 4, 1)  # h^2: second differences all 2 -> squared 4
    assert close(LOSSES["horizon_mse"](p, p.clone(), lambda_smooth=0.5), 0.5 * 4.0)
    q = T([0.0, 1.0, 0.0, 1.0]).reshape(1, 1, 4, 1)  # second differences -2, 2 -> mean square 4
    target = torch.zeros_like(q)  # data term (0 + 1 + 0 + 1) / 4 = 0.5
    assert close(LOSSES["horizon_mse"](q, target, lambda_smooth=0.1), 0.5 + 0.1 * 4.0)
    both = torch.cat([p, q.new_full(q.shape, float("nan"))], dim=1)
    assert close(LOSSES["horizon_mse"](both, both.nan_to_num(), T([[True, False]]), lambda_smooth=0.5), 2.0)


# ----------------------------------------------------------------------------- penalties

def _tiny_model():
    model = nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2))
    with torch.no_grad():
        model[0].weight.copy_(T([[1.0, -2.0], [3.0, -4.0]]))
        model[0].bias.copy_(T([100.0, 100.0]))  # biases and norm scales are not penalised
    return model


def test_l1_l2_weight_matrices_only():
    model = _tiny_model()
    assert close(PENALTIES["l1"](model), 1 + 2 + 3 + 4)
    assert close(PENALTIES["l2"](model), 1 + 4 + 9 + 16)
    emb = nn.Embedding(2, 1)
    with torch.no_grad():
        emb.weight.copy_(T([[0.5], [-1.5]]))
    assert close(PENALTIES["l1"](nn.ModuleList([model, emb])), 10 + 2.0)


def test_monotonicity_by_hand():
    p = T([[0.9, 0.95, 0.5], [0.8, 0.6, 0.7]])
    # k=1: mean(relu(.05), relu(-.2)) = .025 ; k=2: mean(relu(-.45), relu(.1)) = .05
    assert close(PENALTIES["monotonicity"](None, pred=p, logits=False), 0.075)
    assert close(PENALTIES["monotonicity"](None, pred=torch.logit(p)), 0.075, 1e-5)
    assert float(PENALTIES["monotonicity"](None, pred=T([[0.9, 0.5, 0.1]]), logits=False)) == 0.0


# ----------------------------------------------------------------------------- objective

def test_objective_sums_weighted_terms():
    model = _tiny_model()
    pred = T([[0.5, 1.0, 0.0], [2.0, 1.0, 0.0]])
    target = T([0, 0])
    obj = build_objective([{"name": "cross_entropy"}, {"name": "gap_loss", "weight": 0.3, "params": {"margin": 0.2}},
                           LossSpec("l2", 0.01), "gap_loss"])
    total, terms = obj(pred, target, model=model)
    assert list(terms) == ["cross_entropy", "gap_loss", "l2", "gap_loss#2"]
    ce = F.cross_entropy(pred, target)
    assert close(terms["cross_entropy"], ce) and close(terms["gap_loss"], 0.35) and close(terms["l2"], 30)
    assert close(total, ce + 0.3 * 0.35 + 0.01 * 30 + 0.35, 1e-5)
    assert total.requires_grad and not terms["l2"].requires_grad


def test_unknown_names_and_params_raise():
    with pytest.raises(TrainsetError, match="unknown loss 'top_gap_los'.*cross_entropy"):
        LossSpec("top_gap_los")
    with pytest.raises(TrainsetError, match=r"losses\[1\].*nope"):
        build_objective(["mse", {"name": "nope"}])
    with pytest.raises(TrainsetError, match="margn"):
        LossSpec("gap_loss", params={"margn": 0.2})
    with pytest.raises(TrainsetError, match="weights"):
        LossSpec("horizon_mse", params={"weights": "linear"})
    with pytest.raises(TrainsetError, match="weight"):
        LossSpec("mse", weight=-1)
    with pytest.raises(TrainsetError, match="unknown keys"):
        LossSpec.from_dict({"name": "mse", "scale": 2})
    with pytest.raises(TrainsetError, match="at least one"):
        build_objective([])
    with pytest.raises(TrainsetError, match="needs the model"):
        build_objective(["l1"])(torch.zeros(2), torch.zeros(2))
    with pytest.raises(TrainsetError, match="unknown horizon weights"):
        horizon_weights("linear", 3)


# ----------------------------------------------------------------------------- seed-001 losses by name

def test_top_gap_loss_by_hand():
    pred = T([[0.5, 1.0, 0.8], [2.0, 1.0, 0.0]])
    target = T([0, 0])
    # sample 0: top rival 1.0, max(0, 0.2 - (0.5 - 1.0)) = 0.7 (gap_loss would add 0.5 for class 2)
    # sample 1: top rival 1.0, max(0, 0.2 - (2.0 - 1.0)) = 0
    assert close(LOSSES["top_gap_loss"](pred, target), 0.7 / 2)
    assert close(LOSSES["top_gap_loss"](pred, target, margin=1.5), (2.0 + 0.5) / 2)
    assert close(LOSSES["top_gap_loss"](pred, target, T([False, True]), margin=1.5), 0.5)
    assert close(LOSSES["top_gap_loss"](pred[None], T([[0, 0]])), 0.7 / 2)  # [B, T, C] logits


def test_rich_margin_loss_by_hand():
    pred = T([[1.0, 0.0], [0.0, 2.0]])
    target = T([0, 1])
    # the true logit minus m = 0.5, times s = 2: rows [1.0, 0.0] and [0.0, 3.0]
    want = (math.log(1 + math.exp(-1.0)) + math.log(1 + math.exp(-3.0))) / 2
    assert close(LOSSES["rich_margin_loss"](pred, target, margin=0.5, scale=2.0), want)
    plain = LOSSES["cross_entropy"](pred, target)
    assert close(LOSSES["rich_margin_loss"](pred, target, margin=0.0, scale=1.0), plain)
    assert float(LOSSES["rich_margin_loss"](pred, target)) > float(plain)  # the default margin costs


def test_mse_gradient_cutoff_by_hand():
    pred = T([0.5, 3.0, -2.0], requires_grad=True)
    target = T([0.0, 0.0, 0.0])
    # cutoff 1: 0.5^2 = 0.25 ; 2*1*3 - 1 = 5 ; 2*1*2 - 1 = 3
    loss = LOSSES["mse_gradient_cutoff"](pred, target, cutoff=1.0)
    assert close(loss, (0.25 + 5 + 3) / 3)
    loss.backward()
    assert torch.allclose(pred.grad, T([2 * 0.5, 2.0, -2.0]) / 3)  # 2e, clipped to +-2c
    assert close(LOSSES["mse_gradient_cutoff"](pred, target, cutoff=10.0), LOSSES["mse"](pred, target))
    assert close(LOSSES["mse_gradient_cutoff"](pred, target, cutoff=1.0),
                 2 * F.huber_loss(pred, target, delta=1.0))


def test_autoregressive_loss_by_hand():
    inputs = T([[[1.0], [2.0], [4.0]]])            # [B=1, T=3, D=1]
    pred = T([[[2.5], [3.0], [100.0]]])            # step 2 has no next input: never counted
    # (2.5 - 2)^2 = 0.25 ; (3 - 4)^2 = 1
    assert close(LOSSES["autoregressive_loss"](pred, inputs), (0.25 + 1) / 2)
    # a [B, T] mask: pair (1, 2) has a padded step 2
    assert close(LOSSES["autoregressive_loss"](pred, inputs, T([[True, True, False]])), 0.25)
    with pytest.raises(TrainsetError, match="T >= 2"):
        LOSSES["autoregressive_loss"](pred[:, :1], inputs[:, :1])


def test_autoregressive_cross_entropy_by_hand():
    logits = T([[[0.0, math.log(3.0)], [math.log(4.0), 0.0], [9.0, -9.0]]])  # [1, 3, V=2]
    ids = T([[0, 1, 0]])
    # step 0 vs token 1: p = 3/4 ; step 1 vs token 0: p = 4/5 ; step 2 has no next token
    want = (-math.log(3 / 4) - math.log(4 / 5)) / 2
    assert close(LOSSES["autoregressive_cross_entropy"](logits, ids), want, 1e-5)
    assert close(LOSSES["autoregressive_cross_entropy"](logits, F.one_hot(ids, 2).float()), want, 1e-5)
    assert close(LOSSES["autoregressive_cross_entropy"](logits, ids[..., None]), want, 1e-5)
    with pytest.raises(TrainsetError, match="one-hot"):
        LOSSES["autoregressive_cross_entropy"](logits, torch.full((1, 3, 2), 0.5))


@pytest.mark.parametrize("name", ["reg_J_loss", "get_off_the_ground_loss", "exp_high_state_penalty",
                                  "gravity_quantization_loss", "branching_loss"])
def test_soen_specific_losses_refused_by_name(name):
    from trainset.train.config import TrainingConfig

    with pytest.raises(TrainsetError, match=f"{name}' is not available in trainset: .*SOEN"):
        TrainingConfig.from_dict({"training": {"losses": [{"name": name, "weight": 1.0, "params": {}}]}})
