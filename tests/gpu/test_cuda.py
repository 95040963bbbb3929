"""Every demo run trains on a CUDA GPU: the loss falls, resume is exact, the checkpoint loads and
evaluates on the CPU, bf16 runs, and two-process DDP goes over NCCL when two GPUs exist.

Marked ``gpu`` and skipped, saying why, where torch sees no CUDA device. Runs from the source
tree without installing anything beyond torch's and trainset's own dependencies:

    PYTHONPATH=src:. python -m pytest -m gpu tests/gpu -q      (or: bash benchmarks/gpu_check.sh)

Parts needing a package that is missing (e.g. the evaluation report's plotting) skip with the
package named. Each demo run of config/config.yaml keeps its model and losses; its data is a tiny
stand-in built in memory (tests/gpu/demo_data.py), 2 epochs, ``training.device: cuda``.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the GPU tests need torch")

from tests.gpu.demo_data import REPO, demo_runs, store  # noqa: E402

CUDA = torch.cuda.is_available()
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not CUDA, reason=f"no CUDA device: torch.cuda.is_available() is False (torch "
                                        f"{torch.__version__}, built for CUDA {torch.version.cuda})"),
]
RUNS = demo_runs()
TOLERANCE = 1e-4
"""Relative difference allowed between DDP and one-process validation losses (summation order)."""


def config(run: dict, **training):
    from trainset.train.config import TrainingConfig

    return TrainingConfig.from_dict({**run, "training": {**run["training"], **training}})


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Dataset name -> (stored dataset, scalers), each built once."""
    folder = tmp_path_factory.mktemp("data")
    return {name: store(name, folder) for name in {run["dataset"] for run in RUNS.values()}}


@pytest.fixture(scope="module", params=sorted(RUNS))
def trained(request, data, tmp_path_factory):
    """One demo run trained on CUDA for 2 epochs without a break: (name, folder, history)."""
    from trainset.train.run import train_run

    name = request.param
    run = RUNS[name]
    folder = tmp_path_factory.mktemp(name) / "straight"
    history = train_run(config(run), *data[run["dataset"]][:1], folder, data[run["dataset"]][1])
    return name, folder, history


def tensors(path: Path) -> dict:
    from trainset.train.trainer import load_checkpoint

    return load_checkpoint(path, map_location="cpu")["model"]


def differing(want, got, where: str = "") -> list[str]:
    """Keys (dotted) whose values differ between two state dicts, nested entries included."""
    if isinstance(want, dict) and isinstance(got, dict):
        if want.keys() != got.keys():
            return [where or "(keys)"]
        return [bad for key in want for bad in differing(want[key], got[key], f"{where}.{key}".lstrip("."))]
    if isinstance(want, torch.Tensor) and isinstance(got, torch.Tensor):
        return [] if torch.equal(want, got) else [where]
    return [] if want == got else [where]


def on_devices(state) -> set[str]:
    if isinstance(state, dict):
        return {device for value in state.values() for device in on_devices(value)}
    return {state.device.type} if isinstance(state, torch.Tensor) else set()


def test_demo_run_trains_on_cuda_and_its_loss_falls(trained):
    from trainset.train.trainer import checkpoint_meta, load_checkpoint

    name, folder, history = trained
    assert len(history) == 2, name
    assert history[1]["train_loss"] < history[0]["train_loss"], (name, history)
    meta = checkpoint_meta(load_checkpoint(folder / "final.pt"))
    assert meta["device"].startswith("cuda") and meta["gpu_name"] == torch.cuda.get_device_name(0), meta


def test_resume_on_cuda_is_exact(trained, data):
    """One epoch, stop, resume for the second: the same weights as the run without a break
    (``deterministic: true`` on the same GPU; README: Training on a GPU)."""
    from trainset.train.run import train_run

    name, folder, history = trained
    run = RUNS[name]
    path, scalers = data[run["dataset"]]
    resumed = folder.parent / "resumed"
    train_run(config(run), path, resumed, scalers, max_epochs=1)
    again = train_run(config(run), path, resumed, scalers)
    assert [h["train_loss"] for h in again] == [h["train_loss"] for h in history], name
    assert not differing(tensors(folder / "final.pt"), tensors(resumed / "final.pt")), name


def test_cuda_checkpoint_loads_and_evaluates_on_the_cpu(trained, data, tmp_path):
    """Trained on CUDA, the best checkpoint is evaluated on a CPU-only config (map_location)."""
    from trainset.evaluate.stage import evaluate_run

    name, folder, _ = trained
    assert on_devices(tensors(folder / "best.pt")) == {"cpu"}
    run = RUNS[name]
    on_cpu = copy.deepcopy(run)
    on_cpu["training"]["device"] = "cpu"
    try:
        evaluate_run(on_cpu, folder, *data[run["dataset"]], tmp_path / "report", split="test", generated=8)
    except ModuleNotFoundError as missing:
        pytest.skip(f"evaluation needs {missing.name}, not installed here")
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics, name


@pytest.mark.parametrize("name", sorted(RUNS))
def test_bf16_autocast_trains_on_cuda(name, data, tmp_path):
    from trainset.train.run import train_run

    if not torch.cuda.is_bf16_supported():
        pytest.skip(f"{torch.cuda.get_device_name(0)} has no bf16")
    run = RUNS[name]
    history = train_run(config(run, precision="bf16", epochs=1), *data[run["dataset"]][:1], tmp_path,
                        data[run["dataset"]][1])
    assert history and all(torch.isfinite(torch.tensor(h["train_loss"])) for h in history)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_process_ddp_over_nccl_matches_one_gpu(data, tmp_path):
    """torchrun, 2 ranks, one GPU each (LOCAL_RANK): gradients over NCCL, validation losses as
    one process gets them (up to summation order)."""
    import yaml

    if torch.cuda.device_count() < 2:
        pytest.skip(f"DDP over NCCL needs 2 GPUs; this machine has {torch.cuda.device_count()}")
    run = copy.deepcopy(RUNS["forecast_tcn"])
    path, scalers = data[run["dataset"]]
    run["dataset"] = str(path)
    run["training"].update(epochs=2, grad_clip=None)
    config_file = tmp_path / "run.yaml"
    config_file.write_text(yaml.safe_dump(run))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    train = ["-m", "trainset", "train", "--config", str(config_file), "--scalers", str(scalers)]
    one = subprocess.run([sys.executable, *train, "--out", str(tmp_path / "one")], capture_output=True, text=True,
                         timeout=600, env=env)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--nnodes", "1",
                          "--master_addr", "127.0.0.1", "--master_port", str(free_port()), *train,
                          "--out", str(tmp_path / "two")], capture_output=True, text=True, timeout=600, env=env)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "gradients over nccl" in two.stderr, two.stderr[-3000:]
    a, b = (json.loads((tmp_path / out / "history.json").read_text()) for out in ("one", "two"))
    assert len(a) == len(b) == 2
    for x, y in zip(a, b):
        assert abs(x["val_loss"] - y["val_loss"]) <= TOLERANCE * abs(x["val_loss"]), (x, y)
