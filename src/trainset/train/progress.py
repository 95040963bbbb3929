"""What a person following a training run sees: a progress bar, one log line per epoch, metrics files.

- **Progress bar**: one tqdm bar per epoch over its batches (loss, samples/s, ETA), on stderr and
  only when stderr is a terminal (``disable=None``), so a Snakemake rule's log holds log lines,
  never bar redraws.
- **Epoch line**: one INFO line per epoch: train and validation loss, learning rate, samples/s,
  seconds, the process's peak resident memory and, on CUDA, the peak GPU memory allocated.
- **metrics.csv** (``training.loggers`` holds ``csv``, the default) beside ``history.json``:
  ``step, epoch, split, loss, lr, samples_per_s``. A ``train`` row every
  ``training.log_every_n_steps`` optimisation steps (counted over the whole run; ``loss`` is the
  mean over the steps since the last row of that epoch, ``lr`` the rate of the row's step) and one
  row of the validation split per epoch (at the epoch's last step; ``samples_per_s`` empty). Rows
  are appended as training goes, so ``tail -f`` works; on resume the rows of epochs after the
  resume point are dropped first, so a resumed run's file equals a straight run's in every column
  but ``samples_per_s``, a timing, which differs from run to run (so metrics.csv is not one of the
  byte-identical artifacts).
- **TensorBoard** (``tensorboard`` in ``training.loggers``, an optional extra): event files in the
  run folder's ``tensorboard/``, with the same scalars (``loss/train``, ``loss/<val split>``, ``lr``,
  ``samples_per_s``) at the same steps; a resumed run purges the steps after the resume point.
  Event files hold wall-clock times and the host name: never byte-identical.

Only the main process (rank 0 under DDP) writes, draws or logs.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from trainset.errors import TrainsetError
from trainset.provenance import atomic_path

logger = logging.getLogger(__name__)

COLUMNS = ("step", "epoch", "split", "loss", "lr", "samples_per_s")
"""The columns of metrics.csv, in order."""
METRICS = "metrics.csv"
TENSORBOARD = "tensorboard"
REFRESH_S = 0.5
"""Seconds between redraws of the bar (tqdm's ``mininterval``)."""
INSTALL = "pip install -e '.[tensorboard]' (or pip install tensorboard)"


def check_loggers(loggers: Any) -> None:
    """Refuse ``training.loggers`` this environment cannot serve, before anything trains.

    Checked when training starts rather than when a config is read, so a run trained with
    TensorBoard can still be evaluated where the package is not installed.
    """
    if "tensorboard" in loggers and importlib.util.find_spec("tensorboard") is None:
        raise TrainsetError(f"training.loggers: tensorboard is asked for but the tensorboard package is not "
                            f"installed. Fix: {INSTALL}, or remove tensorboard from training.loggers")


class RunProgress:
    """The progress bar, epoch lines, metrics.csv and TensorBoard events of one run folder.

    Parameters
    ----------
    folder : path
        The run folder (metrics.csv and tensorboard/ go here).
    training : TrainingSection
        ``loggers``, ``log_every_n_steps``, ``epochs`` and ``val_split`` are used.
    steps_per_epoch : int
        Optimisation steps per epoch (steps are numbered over the whole run from 1).
    model : nn.Module
        Its device decides whether GPU memory is reported.
    main : bool
        Whether this process writes, draws and logs (rank 0).
    """

    def __init__(self, folder: str | Path, training: Any, steps_per_epoch: int, model: torch.nn.Module,
                 main: bool = True) -> None:
        loggers = tuple(getattr(training, "loggers", ("csv",)))
        check_loggers(loggers)
        self.folder, self.training, self.model, self.main = Path(folder), training, model, main
        self.steps_per_epoch = int(steps_per_epoch)
        self.csv = main and "csv" in loggers
        self.tensorboard = main and "tensorboard" in loggers
        self._writer: Any = None
        self._purge_step: int | None = None
        self._started = time.perf_counter()
        self._train_seconds = 0.0

    # ------------------------------------------------------------------ run
    def start(self, epochs_done: int) -> None:
        """Begin (``epochs_done == 0``) or resume after ``epochs_done`` epochs: keep only what
        those epochs logged, so the files continue as if the run had never stopped."""
        if not self.main:
            return
        path = self.folder / METRICS
        if self.csv:
            _keep_rows(path, epochs_done)
        elif epochs_done == 0:
            path.unlink(missing_ok=True)  # an earlier, different run's rows would mislead
        if epochs_done == 0:
            _remove_events(self.folder / TENSORBOARD)
        else:
            self._purge_step = epochs_done * self.steps_per_epoch + 1

    def carried(self, epochs_done: int) -> dict[str, str]:
        """What ``last.pt`` carries of metrics.csv: its rows of epochs 1..``epochs_done`` without the
        timing column (so last.pt stays byte-identical between runs). Snakemake deletes a failed
        job's declared outputs, metrics.csv among them; :meth:`restore` brings the rows back."""
        if not self.csv:
            return {}
        rows = [[*row[:-1], ""] for row in _read_rows(self.folder / METRICS, epochs_done)]
        return {"metrics_csv": _csv_text(rows)}

    def restore(self, state: dict[str, Any]) -> None:
        """Rewrite a deleted metrics.csv from a checkpoint's copy (:meth:`carried`) before resuming."""
        text, path = state.get("metrics_csv"), self.folder / METRICS
        if not (self.csv and isinstance(text, str)) or path.exists():
            return
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
        logger.info("%s: restored the rows of epochs 1-%s from the checkpoint (samples_per_s left empty)", path,
                    state.get("epoch"))

    def epoch(self, epoch: int) -> EpochProgress:
        """The bar and step rows of one epoch (steps continue from the epochs before it)."""
        self._started, self._train_seconds = time.perf_counter(), 0.0
        device = _device(self.model)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        return EpochProgress(self, epoch)

    def epoch_done(self, record: dict[str, Any], samples: int) -> None:
        """Log the epoch line and write the validation row (``record``: the history entry; ``samples``:
        trained on in the epoch, over all ranks). Samples/s is over the training steps; seconds
        include validation."""
        seconds = max(time.perf_counter() - self._started, 1e-9)
        rate = samples / max(self._train_seconds or seconds, 1e-9)
        if not self.main:
            return
        epoch, step = int(record["epoch"]), int(record["epoch"]) * self.steps_per_epoch
        self.row(step, epoch, self.training.val_split, record["val_loss"], record["lr"], None)
        logger.info("epoch %d/%d: train loss %.6g, val loss %.6g, lr %.3g, %.0f samples/s, %.1f s%s", epoch,
                    self.training.epochs, record["train_loss"], record["val_loss"], record["lr"],
                    rate, seconds, memory_note(_device(self.model)))
        if self._writer is not None:
            self._writer.add_scalar("loss/train_epoch", record["train_loss"], step)
            self._writer.flush()

    def row(self, step: int, epoch: int, split: str, loss: float, lr: float, samples_per_s: float | None) -> None:
        """One metrics row: appended to metrics.csv and sent to TensorBoard, as configured."""
        if self.csv:
            with open(self.folder / METRICS, "a", encoding="utf-8", newline="") as fh:
                if fh.tell() == 0:
                    fh.write(",".join(COLUMNS) + "\n")
                rate = "" if samples_per_s is None else f"{samples_per_s:.1f}"
                fh.write(f"{step},{epoch},{split},{float(loss)!r},{float(lr)!r},{rate}\n")
        if self.tensorboard:
            writer = self._tensorboard()
            writer.add_scalar(f"loss/{split}", loss, step)
            if samples_per_s is not None:
                writer.add_scalar("lr", lr, step)
                writer.add_scalar("samples_per_s", samples_per_s, step)

    def close(self) -> None:
        """Flush and close the TensorBoard writer (metrics.csv is closed after every row)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _tensorboard(self) -> Any:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.folder / TENSORBOARD), purge_step=self._purge_step)
        return self._writer


class EpochProgress:
    """One epoch: the tqdm bar, and a ``train`` metrics row every ``log_every_n_steps`` steps.

    The loss of a row is averaged over the steps since the previous row *of this epoch*, so the
    rows of an epoch do not depend on whether the run stopped before it.
    """

    def __init__(self, run: RunProgress, epoch: int) -> None:
        self.run, self.epoch = run, epoch
        self.step_no = (epoch - 1) * run.steps_per_epoch
        self.every = int(run.training.log_every_n_steps)
        self.loss, self.samples, self.started = 0.0, 0, time.perf_counter()
        self.epoch_samples, self.epoch_started = 0, self.started
        self.bar = tqdm(total=run.steps_per_epoch, desc=f"epoch {epoch}/{run.training.epochs}", unit="batch",
                        leave=False, dynamic_ncols=True, mininterval=REFRESH_S, file=sys.stderr,
                        disable=None if run.main else True)

    def step(self, loss: float, n: int, lr: float) -> None:
        """After an optimisation step: ``loss`` its mean over ``n`` samples, ``lr`` its learning rate."""
        self.step_no += 1
        self.loss, self.samples = self.loss + loss * n, self.samples + n
        self.epoch_samples += n
        if not self.bar.disable:
            rate = self.epoch_samples / max(time.perf_counter() - self.epoch_started, 1e-9)
            self.bar.set_postfix(loss=f"{loss:.4g}", samples_s=f"{rate:.0f}", refresh=False)
            self.bar.update(1)
        if self.step_no % self.every or not self.run.main:
            return
        seconds = max(time.perf_counter() - self.started, 1e-9)
        mean, rate = self.loss / max(self.samples, 1), self.samples / seconds
        logger.debug("epoch %d step %d: train loss %.6g, lr %.3g (%.0f samples/s)", self.epoch, self.step_no,
                     mean, lr, rate)
        self.run.row(self.step_no, self.epoch, "train", mean, lr, rate)
        self.loss, self.samples, self.started = 0.0, 0, time.perf_counter()

    def close(self) -> None:
        """The epoch's training steps are done: close the bar and note their duration."""
        self.bar.close()
        self.run._train_seconds = time.perf_counter() - self.epoch_started


def memory_note(device: torch.device) -> str:
    """``, peak RSS 812 MiB`` (and the peak GPU memory allocated on CUDA) for the epoch line."""
    note = ""
    rss = peak_rss_mib()
    if rss is not None:
        note += f", peak RSS {rss:.0f} MiB"
    if device.type == "cuda":
        note += f", peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB allocated"
    return note


def peak_rss_mib() -> float | None:
    """The process's peak resident memory in MiB (None where ``resource`` does not exist: Windows)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def _device(model: torch.nn.Module) -> torch.device:
    """Where the model's weights are (CPU for a model without any)."""
    first = next(iter(model.parameters()), None)
    return first.device if first is not None else torch.device("cpu")


def _read_rows(path: Path, epochs_done: int) -> list[list[str]]:
    """The rows of metrics.csv of epochs 1..``epochs_done`` (none when the file is missing).

    Rows are appended while training, so a killed run may leave rows of an unfinished epoch (or
    half a row): those belong to epochs after the resume point and are not read.
    """
    if not path.exists() or epochs_done <= 0:
        return []
    with open(path, encoding="utf-8", newline="") as fh:
        return [row for row in csv.reader(fh)
                if len(row) == len(COLUMNS) and row[1].isdigit() and 0 < int(row[1]) <= epochs_done]


def _csv_text(rows: list[list[str]]) -> str:
    out = io.StringIO()
    out.write(",".join(COLUMNS) + "\n")
    out.writelines(",".join(row) + "\n" for row in rows)
    return out.getvalue()


def _keep_rows(path: Path, epochs_done: int) -> None:
    """Rewrite metrics.csv with the rows of epochs 1..``epochs_done`` (a header alone for 0)."""
    text = _csv_text(_read_rows(path, epochs_done))
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _remove_events(folder: Path) -> None:
    """A fresh start: the TensorBoard events of an earlier run in this folder go (only event files)."""
    for events in folder.glob("events.out.tfevents.*"):
        events.unlink()
    if folder.is_dir() and not any(folder.iterdir()):
        shutil.rmtree(folder)
