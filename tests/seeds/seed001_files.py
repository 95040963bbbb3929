"""The seed-001 guide's example files, written with h5py exactly as its code writes them (N smaller).

Shared by the ``--config`` tests (test_seed001.py) and the workflow tests (test_seed001_workflow.py).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def write_pulse(path: Path, N: int = 60, train: int = 40, val: int = 10, T: int = 64,
                D: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The pulse-detection file, pre-split (train/val/test groups, no ``index``): the first
    ``train`` rows, the next ``val``, the rest."""
    np.random.seed(0)
    num_classes = 3
    data = np.random.randn(N, T, D).astype(np.float32)
    labels = np.random.randint(0, num_classes, size=(N,), dtype=np.int64)
    for i in range(N):
        if labels[i] == 1:  # Single pulse
            pulse_pos = np.random.randint(10, T-10)
            data[i, pulse_pos:pulse_pos+5, 0] += 2.0
        elif labels[i] == 2:  # Double pulse
            pos1 = np.random.randint(5, T//2)
            pos2 = np.random.randint(T//2, T-5)
            data[i, pos1:pos1+3, 0] += 1.5
            data[i, pos2:pos2+3, 0] += 1.5
    with h5py.File(path, "w") as f:
        train_group = f.create_group("train")
        train_group.create_dataset("data", data=data[:train])
        train_group.create_dataset("labels", data=labels[:train])
        val_group = f.create_group("val")
        val_group.create_dataset("data", data=data[train:train + val])
        val_group.create_dataset("labels", data=labels[train:train + val])
        test_group = f.create_group("test")
        test_group.create_dataset("data", data=data[train + val:])
        test_group.create_dataset("labels", data=labels[train + val:])
    return data, labels


def write_forecasting(path: Path, N: int = 50, input_len: int = 24, forecast_len: int = 8,
                      D: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The forecasting file, single layout: inputs with a trend, labels continuing it."""
    np.random.seed(1)
    data = np.random.randn(N, input_len, D).astype(np.float32)
    for i in range(N):
        trend = np.linspace(0, np.random.uniform(-1, 1), input_len)
        data[i, :, 0] += trend
    labels = np.random.randn(N, forecast_len, D).astype(np.float32)
    for i in range(N):
        last_val = data[i, -1, 0]
        trend_continuation = np.linspace(last_val, last_val + np.random.uniform(-0.5, 0.5), forecast_len)
        labels[i, :, 0] = trend_continuation
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=data)
        f.create_dataset("labels", data=labels)  # Shape: [N, forecast_len, D]
    return data, labels
