"""LR schedules against their closed forms at every step; resume; relative early stopping."""

import io
import math

import pytest
import torch

from trainset.errors import TrainsetError
from trainset.train.config import TrainingSection
from trainset.train.schedule import EarlyStopping, lr_at, make_scheduler, scheduler_from_config

PEAK = 0.1


def _optimizer(lr=PEAK):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def _run(opt, sched, steps):
    """The LR each optimisation step used (read before the step, as the optimiser sees it)."""
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def _cosine_closed_form(s, total, warm, peak, frac):
    if s < warm:
        return peak * (s + 1) / warm
    p = (s - (warm - 1)) / (total - warm)
    return frac * peak + (1 - frac) * peak * 0.5 * (1 + math.cos(math.pi * p))


def test_cosine_scheduler_matches_closed_form_at_every_step():
    total, warm = 50, 5
    opt = _optimizer()
    lrs = _run(opt, make_scheduler(opt, total, warm, final_fraction=0.01), total)
    for s, lr in enumerate(lrs):
        assert lr == pytest.approx(_cosine_closed_form(s, total, warm, PEAK, 0.01), rel=1e-12)
        assert lr == pytest.approx(lr_at(s, total, warm, PEAK, 0.01), rel=1e-12)
    assert lrs[0] == pytest.approx(PEAK / warm) and lrs[0] > 0  # warm-up never starts at zero
    assert lrs[warm - 1] == pytest.approx(PEAK)  # peak at the end of warm-up
    assert lrs[-1] == pytest.approx(0.01 * PEAK)  # the final fraction on the last step
    assert all(a < b for a, b in zip(lrs[:warm - 1], lrs[1:warm]))
    assert all(a >= b for a, b in zip(lrs[warm - 1:], lrs[warm:]))  # monotone decay
    assert lr_at(total + 10, total, warm, PEAK) == pytest.approx(0.01 * PEAK)  # stays at the floor


def test_without_warmup_starts_at_peak():
    assert lr_at(0, 10, 0, PEAK) == pytest.approx(PEAK)
    assert lr_at(9, 10, 0, PEAK, 0.0) == pytest.approx(0.0, abs=1e-15)
    assert lr_at(0, 1, 0, PEAK) == pytest.approx(PEAK)


def test_exponential_and_none():
    spe, warm, total = 10, 10, 60
    opt = _optimizer()
    lrs = _run(opt, make_scheduler(opt, total, warm, kind="exponential", gamma=0.5, steps_per_epoch=spe), total)
    assert lrs[:10] == pytest.approx([PEAK * (s + 1) / 10 for s in range(10)])
    for s in range(10, total):
        assert lrs[s] == pytest.approx(PEAK * 0.5 ** ((s - 10) // 10))
    # seed 002 shape: no warm-up, decay per epoch from epoch 1
    assert [lr_at(s, 30, 0, 1.0, kind="exponential", gamma=0.9, steps_per_epoch=10) for s in (0, 9, 10, 29)] \
        == pytest.approx([1.0, 1.0, 0.9, 0.81])
    assert [lr_at(s, 30, 2, 1.0, kind="none") for s in (0, 1, 2, 29)] == pytest.approx([0.5, 1.0, 1.0, 1.0])


def test_state_dict_round_trip_continues_identically():
    total, warm, cut = 40, 4, 13
    opt = _optimizer()
    sched = make_scheduler(opt, total, warm)
    _run(opt, sched, cut)
    buf = io.BytesIO()
    torch.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)  # plain values only: loads without unpickling code
    rest = _run(opt, sched, total - cut)

    opt2 = _optimizer()
    sched2 = make_scheduler(opt2, 999, 0, kind="none")  # settings come back from the state
    sched2.load_state_dict(state["sched"])  # scheduler alone already sets the right LR
    assert opt2.param_groups[0]["lr"] == pytest.approx(rest[0], rel=1e-15)
    opt2.load_state_dict(state["opt"])
    assert _run(opt2, sched2, total - cut) == rest


def test_from_config_and_errors():
    opt = _optimizer(1.0)
    sched = scheduler_from_config(opt, TrainingSection(epochs=3, warmup_epochs=1, lr=1.0), steps_per_epoch=4)
    lrs = _run(opt, sched, 12)
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0]) and lrs[-1] == pytest.approx(0.01)
    with pytest.raises(TrainsetError, match="warmup_steps"):
        lr_at(0, 10, 11, PEAK)
    with pytest.raises(TrainsetError, match="unknown scheduler"):
        lr_at(0, 10, 1, PEAK, kind="linear")
    with pytest.raises(TrainsetError, match="gamma"):
        make_scheduler(_optimizer(), 10, 1, kind="exponential", gamma=1.5)


def test_early_stopping_relative_delta_at_tiny_losses():
    stop = EarlyStopping(patience=3, min_delta=1e-3)
    losses = [1.0e-6, 0.9e-6, 0.8e-6]
    assert [stop.step(v) for v in losses] == [True, True, True]
    old_absolute = [v < best - 1e-4 for best, v in zip(losses, losses[1:])]
    assert old_absolute == [False, False]  # the old rule never saw these improvements
    assert stop.best == pytest.approx(0.8e-6) and stop.best_epoch == 2
    # 0.7995e-6 is < 0.1% better than 0.8e-6: not an improvement
    assert [stop.step(0.7995e-6) for _ in range(2)] == [False, False] and not stop.should_stop
    state = stop.state_dict()
    assert stop.step(0.7995e-6) is False and stop.should_stop  # stops after `patience` bad epochs
    resumed = EarlyStopping()
    resumed.load_state_dict(state)
    assert resumed.state_dict() == state
    assert resumed.step(0.7e-6) is True and resumed.best_epoch == 5 and not resumed.should_stop


def test_early_stopping_nan_max_mode_and_no_patience():
    stop = EarlyStopping(patience=1)
    assert stop.step(float("nan")) is False and stop.best is None and stop.should_stop
    up = EarlyStopping(patience=2, min_delta=0.1, mode="max")
    assert up.step(1.0) and not up.step(1.05) and up.step(1.2)
    never = EarlyStopping(patience=None)
    for _ in range(50):
        never.step(1.0)
    assert not never.should_stop and never.best_epoch == 0
    with pytest.raises(TrainsetError, match="relative"):
        EarlyStopping(min_delta=1.5)
    with pytest.raises(TrainsetError, match="patience"):
        EarlyStopping(patience=0)
