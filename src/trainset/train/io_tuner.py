"""Loader throughput per batch size x worker count (x WebDataset packing), and the fastest setting.

Seed 002 tuned its loader in a notebook (batch size x workers x shard packing). Here the same
measurement reads batches through exactly the loaders a training run uses
(:func:`~trainset.train.run.prepare_run`: shuffled, the WebDataset batching itself), so the
numbers are what the trainer will see.

The figures are machine-dependent by nature: they depend on the cores, the disk, the page cache
and whatever else runs at the time, so the JSON records the machine (CPU count) beside the
table, and a rerun elsewhere (or later) may choose differently. Treat the choice as a default
for this machine, not as a property of the dataset.

Each setting is measured on its own: one warm-up batch (worker start-up, file opening), then
batches for at most ``seconds`` (and at least three); epochs are restarted as needed, and the
start-up of a new epoch's loader counts, as it does in training.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Sequence

import numpy as np
import torch

from trainset.errors import TrainsetError
from trainset.provenance import write_json
from trainset.versions import stamp

logger = logging.getLogger(__name__)

__all__ = ["IO_TUNER_OPTIONS", "MIN_BATCHES", "best_setting", "tune_io", "write_io_result"]

IO_TUNER_OPTIONS = ("split", "batch_sizes", "workers", "seconds", "samples_per_member", "max_samples", "tolerance")
"""Arguments of :func:`tune_io` that the workflow's ``tuning.io_tuner`` may set (the schema's keys)."""

MIN_BATCHES = 3
"""Timed batches per setting, whatever ``seconds`` says."""


def tune_io(dataset_path: str | os.PathLike, split: str = "train", batch_sizes: Sequence[int] = (64, 256, 1024),
            workers: Sequence[int] = (0, 1, 2), seconds: float = 2.0,
            samples_per_member: int | Sequence[int] | None = None, seed: int = 0, *,
            max_samples: int = 50_000, tolerance: float = 0.0,
            workdir: str | os.PathLike | None = None, device: str = "cpu") -> dict[str, Any]:
    """Measure loader throughput for every setting and pick the fastest.

    Parameters
    ----------
    dataset_path : path
        A stored dataset (any format trainset writes).
    split : str
        The split read (training reads ``train``).
    batch_sizes, workers : sequence of int
        The grid: every batch size with every ``num_workers``.
    seconds : float
        Time budget per setting after the warm-up batch.
    samples_per_member : int or list of int, optional
        WebDataset only: also vary the packing. The first ``max_samples`` samples of ``split``
        (the dataset's prefix up to the last of them, so the interleaving of splits is kept)
        are rewritten with each packing (and the stored shard size) into a temporary folder,
        which is measured and removed. This loads the whole dataset into memory once. Without
        it the dataset is measured as stored (its packing is reported).
    seed : int
        Shuffle seed of the loaders.
    max_samples : int
        Samples of ``split`` in each rewritten copy.
    tolerance : float
        Settings within this fraction of the fastest count as tied; ties go to the smaller batch,
        then fewer workers, then the smaller packing (0: only exact ties).
    workdir : path, optional
        Where the temporary copies go (default: the system's temporary folder).
    device : str
        The run's ``training.device``: each batch is copied there as training copies it (pinned
        memory and asynchronous copies on CUDA), so the figures include the transfer.

    Returns
    -------
    dict
        ``results`` (one ``{batch_size, num_workers, [samples_per_member,] samples_per_s,
        batches, seconds}`` per setting), ``best`` (one of them), ``machine`` (``cpus``,
        ``torch_threads``, ``device``) and the ``dataset``, ``split``, ``seconds`` and ``seed`` measured.

    Raises
    ------
    TrainsetError
        An empty grid or bad value, ``samples_per_member`` for a dataset that is not a
        WebDataset, an empty split.
    """
    from trainset.io.base import guess_format

    batch_sizes, workers = _ints(batch_sizes, "batch_sizes", 1), _ints(workers, "workers", 0)
    packings = None if samples_per_member is None else _ints(
        [samples_per_member] if isinstance(samples_per_member, int) else samples_per_member, "samples_per_member", 1)
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise TrainsetError(f"tune_io: seconds must be a number > 0, got {seconds!r}")
    if not 0 <= tolerance < 1:
        raise TrainsetError(f"tune_io: tolerance must lie in [0, 1), got {tolerance!r}")
    from trainset.train.device import resolve_device

    target = resolve_device(device)
    fmt = guess_format(dataset_path)
    packed = fmt.packing_option is not None  # packing (samples per tar member) is a streamed store's block
    if packings is not None and not packed:
        raise TrainsetError(f"{dataset_path}: samples_per_member applies to WebDataset datasets only (formats with "
                            f"a packing option), this is {fmt.name}. Fix: drop samples_per_member")
    results: list[dict[str, Any]] = []
    if packings is None:
        stored = int(fmt.reader(dataset_path).block_size) if packed else None
        results += _grid(dataset_path, split, batch_sizes, workers, seconds, seed, stored, target)
    else:
        collection, splits, kept = _prefix(dataset_path, split, max_samples, fmt)
        with tempfile.TemporaryDirectory(prefix="trainset-io-", dir=workdir) as tmp:
            for packing in packings:
                copy = Path(tmp) / f"TS_packing{packing}{fmt.suffix}"  # the suffix: opened as training opens it
                fmt.write(collection, copy, splits, **{fmt.packing_option: packing}, **kept)
                results += _grid(copy, split, batch_sizes, workers, seconds, seed, packing, target)
                shutil.rmtree(copy)
    best = best_setting(results, tolerance)
    logger.info("fastest loader setting for %s (%s): %s", dataset_path, split, best)
    return {"results": results, "best": best,
            "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": str(target)},
            "dataset": str(dataset_path), "split": split, "seconds": float(seconds), "seed": int(seed)}


def best_setting(results: list[dict[str, Any]], tolerance: float = 0.0) -> dict[str, Any]:
    """The fastest result; those within ``tolerance`` of it tie: smaller batch, fewer workers win."""
    if not results:
        raise TrainsetError("tune_io: no setting was measured")
    top = max(r["samples_per_s"] for r in results)
    tied = [r for r in results if r["samples_per_s"] >= top * (1.0 - tolerance)]
    return dict(min(tied, key=lambda r: (r["batch_size"], r["num_workers"], r.get("samples_per_member") or 0,
                                         -r["samples_per_s"])))


def write_io_result(result: dict[str, Any], path: str | os.PathLike) -> None:
    """Write the tuner's result JSON atomically, with its format version."""
    write_json({**result, **stamp("io_tuning")}, path)


def _ints(values: Any, name: str, low: int) -> list[int]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TrainsetError(f"tune_io: {name} must be a list of integers, got {values!r}")
    values = list(values)
    if not values or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low for v in values):
        raise TrainsetError(f"tune_io: {name} must be a non-empty list of integers >= {low}, got {values!r}")
    return sorted({int(v) for v in values})


def _grid(path: str | os.PathLike, split: str, batch_sizes: list[int], workers: list[int], seconds: float,
          seed: int, packing: int | None, device: torch.device) -> list[dict[str, Any]]:
    rows = []
    for batch_size in batch_sizes:
        for num_workers in workers:
            rate, count, elapsed = _measure(path, split, batch_size, num_workers, seconds, seed, device)
            row: dict[str, Any] = {"batch_size": batch_size, "num_workers": num_workers}
            if packing is not None:
                row["samples_per_member"] = packing
            row.update({"samples_per_s": rate, "batches": count, "seconds": elapsed})
            logger.info("loader %s: %.0f samples/s", row, rate)
            rows.append(row)
    return rows


def _measure(path: str | os.PathLike, split: str, batch_size: int, num_workers: int, seconds: float,
             seed: int, device: torch.device) -> tuple[float, int, float]:
    """(samples/s, timed batches, timed seconds) of one setting, through the training loaders
    and onto ``device`` (waiting for the copies to finish)."""
    from trainset.train.device import to_device
    from trainset.train.run import prepare_run

    cfg = SimpleNamespace(training=SimpleNamespace(seed=seed, batch_size=batch_size, num_workers=num_workers))
    factory = prepare_run(cfg, path, splits={split: True}, model=False, info={}, device=device).batches(split, True)
    epoch = 1
    iterator = iter(factory(epoch))
    if next(iterator, None) is None:  # the warm-up batch
        raise TrainsetError(f"{path}: split {split!r} gave no batch. Fix: measure a split with samples")
    samples = count = 0
    started = time.perf_counter()
    try:
        while True:
            batch = next(iterator, None)
            if batch is None:  # the epoch ended: start the next, as training does
                epoch += 1
                iterator = iter(factory(epoch))
                continue
            to_device(batch, device)
            samples += _batch_len(batch)
            count += 1
            if count >= MIN_BATCHES and time.perf_counter() - started >= seconds:
                break
    finally:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed = time.perf_counter() - started
        del iterator  # shuts the workers down
    return samples / max(elapsed, 1e-9), count, elapsed


def _batch_len(batch: Any) -> int:
    """Samples in a batch: its ``index`` length, else the first tensor's leading size."""
    if isinstance(batch, dict):
        if isinstance(batch.get("index"), torch.Tensor):
            return int(batch["index"].shape[0])
        for value in batch.values():
            if isinstance(value, torch.Tensor) and value.ndim:
                return int(value.shape[0])
    if isinstance(batch, (list, tuple)):
        return len(batch)
    raise TrainsetError(f"tune_io: cannot count the samples of a {type(batch).__name__} batch")


def _prefix(path: str | os.PathLike, split: str, max_samples: int, fmt: Any = None
            ) -> tuple[Any, dict[str, np.ndarray], dict[str, Any]]:
    """The dataset's prefix holding the first ``max_samples`` samples of ``split``, its splits, and
    the writer options that keep its stored layout (:meth:`~trainset.io.base.Format.kept_options`:
    a WebDataset's shard size)."""
    from trainset.collection import SAMPLE, Collection
    from trainset.io.base import guess_format
    from trainset.open import dataset_splits

    if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1:
        raise TrainsetError(f"tune_io: max_samples must be an integer >= 1, got {max_samples!r}")
    fmt = fmt or guess_format(path)
    kept = fmt.kept_options(fmt.reader(path))
    collection, stored = fmt.load(path)
    splits = dataset_splits(path, stored, len(collection))
    if split not in splits or not splits[split].size:
        raise TrainsetError(f"{path}: no samples in split {split!r} (splits: {sorted(splits)}). "
                            "Fix: measure a split with samples")
    chosen = np.sort(splits[split])[:max_samples]
    end = int(chosen[-1]) + 1
    parts = {}
    for name, part in collection.parts.items():
        first = collection.offsets[name]
        keep = min(int(part.sizes[SAMPLE]), end - first)
        if keep > 0:
            parts[name] = part.isel({SAMPLE: slice(0, keep)})
    prefix = Collection(parts, dict(collection.attrs))
    logger.info("tune_io: rewriting the first %d samples (%d of split %s) of %s", end, chosen.size, split, path)
    return prefix, {name: ix[ix < end] for name, ix in splits.items()}, kept
