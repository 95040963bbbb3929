"""Two-process DistributedDataParallel training (gloo on CPU, torchrun) matches one process."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
import yaml

from tests.conftest import stored_sequences

TOLERANCE = 1e-4
"""Relative difference allowed between DDP and single-process validation losses: gradients are
averaged in a different order across processes, so only floating-point rounding may differ."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def run_config(tmp_path):
    path = stored_sequences(tmp_path, "statistics", 256, seed=2, length=16)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "name": "ddp", "dataset": str(path),
        "model": {"name": "mlp", "params": {"hidden": [32]}},
        "training": {"losses": [{"name": "mse"}], "epochs": 3, "batch_size": 32, "lr": 0.01, "grad_clip": None},
    }))
    return config


def test_two_process_ddp_matches_single_process(run_config, tmp_path):
    single = subprocess.run([sys.executable, "-m", "trainset", "train", "--config", str(run_config),
                             "--out", str(tmp_path / "single")], capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--nnodes", "1",
                          "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
                          "-m", "trainset", "train", "--config", str(run_config), "--out", str(tmp_path / "ddp")],
                         capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one = json.loads((tmp_path / "single/history.json").read_text())
    two = json.loads((tmp_path / "ddp/history.json").read_text())
    assert len(one) == len(two) == 3
    for a, b in zip(one, two):
        assert abs(a["val_loss"] - b["val_loss"]) <= TOLERANCE * abs(a["val_loss"]), (a, b)
    assert (tmp_path / "ddp/final.pt").exists()


def test_ddp_refuses_cuda_on_every_rank_without_a_gpu(run_config, tmp_path):
    """Each rank resolves training.device; a rank without the GPU it asks for stops them all
    (no rank waits forever for a gradient exchange that never comes), and nothing is written."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    config = yaml.safe_load(run_config.read_text())
    config["training"]["device"] = "cuda"
    run_config.write_text(yaml.safe_dump(config))
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--nnodes", "1",
                          "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
                          "-m", "trainset", "train", "--config", str(run_config), "--out", str(tmp_path / "ddp")],
                         capture_output=True, text=True, timeout=120)
    assert ddp.returncode != 0
    assert "training.device: cuda asked for, but torch sees no CUDA GPU" in ddp.stderr
    assert not (tmp_path / "ddp").exists()
