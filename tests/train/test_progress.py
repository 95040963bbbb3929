"""What a person following training sees (issue 15): metrics.csv rows, their continuation on
resume, the per-epoch log line, the progress bar only on a terminal, TensorBoard events and the
refusal of TensorBoard where it is not installed."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import logging
import sys

import pytest

from tests.conftest import stored_sequences
from trainset.errors import TrainsetError
from trainset.train.config import TrainingConfig
from trainset.train import progress
from trainset.train.progress import COLUMNS
from trainset.train.run import train_run

RUN = {
    "name": "progress",
    "model": {"name": "sequence", "params": {"kind": "gru", "hidden": 4, "layers": 1}},
    "training": {"losses": [{"name": "cross_entropy"}], "epochs": 3, "batch_size": 8, "lr": 0.02,
                 "log_every_n_steps": 2, "patience": None, "device": "cpu"},
}


@pytest.fixture(scope="module")
def pulses(tmp_path_factory):
    return stored_sequences(tmp_path_factory.mktemp("pulses"), "pulses", 48, seed=1, length=18)


def config(**training) -> TrainingConfig:
    return TrainingConfig.from_dict({**RUN, "training": {**RUN["training"], **training}})


def rows(folder) -> list[dict[str, str]]:
    with open(folder / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def untimed(folder) -> list[list[str]]:
    """metrics.csv without its timing column (samples_per_s differs from run to run)."""
    return [[row[c] for c in COLUMNS if c != "samples_per_s"] for row in rows(folder)]


def test_metrics_csv_has_a_train_row_every_n_steps_and_a_val_row_per_epoch(pulses, tmp_path):
    history = train_run(config(), pulses, tmp_path)
    text = (tmp_path / "metrics.csv").read_text()
    assert text.splitlines()[0] == "step,epoch,split,loss,lr,samples_per_s"
    table = rows(tmp_path)
    val = [r for r in table if r["split"] == "val"]
    train = [r for r in table if r["split"] == "train"]
    steps_per_epoch = int(val[0]["step"])
    assert steps_per_epoch >= 3
    assert [int(r["epoch"]) for r in val] == [1, 2, 3]
    assert [int(r["step"]) for r in val] == [steps_per_epoch * e for e in (1, 2, 3)]
    assert [float(r["loss"]) for r in val] == [h["val_loss"] for h in history]
    assert [float(r["lr"]) for r in val] == [h["lr"] for h in history]
    assert all(r["samples_per_s"] == "" for r in val)
    steps = [int(r["step"]) for r in train]
    assert steps == list(range(2, 3 * steps_per_epoch + 1, 2))  # every 2nd step over the whole run
    for r in train:
        assert int(r["epoch"]) == (int(r["step"]) - 1) // steps_per_epoch + 1
        assert float(r["loss"]) > 0 and float(r["lr"]) > 0 and float(r["samples_per_s"]) > 0
    assert json.loads((tmp_path / "history.json").read_text()) == history


def test_a_resumed_run_continues_metrics_csv_as_a_straight_run_wrote_it(pulses, tmp_path):
    cfg = config()
    train_run(cfg, pulses, tmp_path / "straight")
    train_run(cfg, pulses, tmp_path / "resumed", max_epochs=1)
    with open(tmp_path / "resumed/metrics.csv", "a") as fh:  # a run killed in epoch 2: its rows, half a row
        fh.write("99,2,train,0.5,0.01,100.0\n100,2,tra")
    train_run(cfg, pulses, tmp_path / "resumed")
    assert untimed(tmp_path / "resumed") == untimed(tmp_path / "straight")
    assert (tmp_path / "resumed/last.pt").read_bytes() == (tmp_path / "straight/last.pt").read_bytes()


def test_a_metrics_csv_deleted_before_a_rerun_comes_back_from_last_pt(pulses, tmp_path):
    cfg = config()
    train_run(cfg, pulses, tmp_path / "straight")
    train_run(cfg, pulses, tmp_path / "rerun", max_epochs=2)
    for name in ("metrics.csv", "best.pt", "history.json"):  # a failed job's outputs, as Snakemake deletes them
        (tmp_path / "rerun" / name).unlink()
    train_run(cfg, pulses, tmp_path / "rerun")
    assert untimed(tmp_path / "rerun") == untimed(tmp_path / "straight")
    table = rows(tmp_path / "rerun")
    assert all(r["samples_per_s"] == "" for r in table if r["epoch"] in ("1", "2"))  # timings are not carried
    assert all(r["samples_per_s"] for r in table if r["epoch"] == "3" and r["split"] == "train")


def test_a_fresh_start_drops_an_earlier_runs_rows_and_no_csv_logger_writes_none(pulses, tmp_path):
    train_run(config(epochs=2), pulses, tmp_path)
    assert {r["epoch"] for r in rows(tmp_path)} == {"1", "2"}
    train_run(config(epochs=1), pulses, tmp_path)  # another config: trains afresh in the same folder
    assert {r["epoch"] for r in rows(tmp_path)} == {"1"}
    train_run(config(epochs=1, loggers=[]), pulses, tmp_path)
    assert not (tmp_path / "metrics.csv").exists()


def test_one_info_line_per_epoch_with_losses_rate_time_and_memory(pulses, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="trainset.train.progress"):
        history = train_run(config(), pulses, tmp_path)
    lines = [r.getMessage() for r in caplog.records if r.name == "trainset.train.progress" and r.levelno == logging.INFO]
    assert len(lines) == 3
    for line, record in zip(lines, history):
        assert line.startswith(f"epoch {record['epoch']}/3: train loss {record['train_loss']:.6g}, "
                               f"val loss {record['val_loss']:.6g}, lr {record['lr']:.3g}, ")
        assert "samples/s" in line and " s, peak RSS " in line and line.endswith(" MiB")
        assert "GPU" not in line  # a CPU run


def test_no_progress_bar_when_stderr_is_not_a_terminal(pulses, tmp_path, capfd, monkeypatch):
    monkeypatch.setattr(progress, "REFRESH_S", 0)
    train_run(config(epochs=1), pulses, tmp_path)
    err = capfd.readouterr().err
    assert "epoch 1/1" not in err and "batch" not in err and "\r" not in err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_progress_bar_per_epoch_on_a_terminal(pulses, tmp_path, monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(progress, "REFRESH_S", 0)  # draw every step: these epochs take milliseconds
    train_run(config(epochs=2), pulses, tmp_path)
    drawn = terminal.getvalue()
    assert "epoch 1/2" in drawn and "epoch 2/2" in drawn and "loss=" in drawn and "samples_s=" in drawn


def test_tensorboard_without_the_package_is_refused_with_the_install_command(pulses, tmp_path, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else find_spec(name, *a))
    with pytest.raises(TrainsetError) as err:
        train_run(config(loggers=["csv", "tensorboard"]), pulses, tmp_path)
    assert "training.loggers" in str(err.value) and "pip install -e '.[tensorboard]'" in str(err.value)
    assert not list(tmp_path.glob("*.pt")) and not (tmp_path / "metrics.csv").exists()


def test_unknown_or_repeated_loggers_are_refused():
    with pytest.raises(TrainsetError, match=r"training.loggers\[0\]: expected one of \['csv', 'tensorboard'\]"):
        config(loggers=["wandb"])
    with pytest.raises(TrainsetError, match="training.loggers: a logger is listed twice"):
        config(loggers=["csv", "csv"])


def test_tensorboard_events_hold_the_csv_rows_and_a_resume_purges_later_steps(pulses, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from torch.utils.tensorboard import SummaryWriter

    cfg = config(loggers=["csv", "tensorboard"])
    train_run(cfg, pulses, tmp_path, max_epochs=2)
    steps_per_epoch = int(rows(tmp_path)[-1]["step"]) // 2
    killed = SummaryWriter(str(tmp_path / "tensorboard"))  # a run killed in epoch 3 logged a step of it
    killed.add_scalar("loss/train", 123.0, 2 * steps_per_epoch + 2)
    killed.close()
    train_run(cfg, pulses, tmp_path)  # resumes at epoch 3: TensorBoard drops the killed run's step
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    table = rows(tmp_path)
    for split in ("train", "val"):
        logged = [(e.step, e.value) for e in events.Scalars(f"loss/{split}")]
        expected = [(int(r["step"]), float(r["loss"])) for r in table if r["split"] == split]
        assert [s for s, _ in logged] == [s for s, _ in expected]
        assert [v for _, v in logged] == pytest.approx([v for _, v in expected], rel=1e-6)
