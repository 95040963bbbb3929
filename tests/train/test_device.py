"""training.device and training.precision on a machine without a GPU (issue 15).

What runs here for real: ``auto`` picks the CPU, ``cuda`` is refused naming the key, ``amp`` is
translated, fp16 autocast with torch's GradScaler trains on the CPU and resumes exactly (the
scaler's state is in the checkpoint), checkpoints record their device and load with
``map_location``, and the determinism switches are set. The CUDA *selection* logic (which GPU a
rank takes, ``cuda:N`` out of range) is checked with ``torch.cuda`` patched; that checks the
choice only, not training on a GPU (tests/gpu does, where a GPU exists).
"""

from __future__ import annotations

import json
import os

import pytest
import torch

from tests.conftest import stored_sequences
from trainset.errors import TrainsetError
from trainset.train import device as dev
from trainset.train.config import TrainingConfig
from trainset.train.run import configure_torch, train_run
from trainset.train.trainer import checkpoint_meta, load_checkpoint

RUN = {"name": "dev", "model": {"name": "sequence", "params": {"kind": "gru", "hidden": 4, "layers": 1}},
       "training": {"losses": [{"name": "cross_entropy"}], "epochs": 2, "batch_size": 16, "lr": 0.02,
                    "device": "cpu", "save_every_n_epochs": 0}}


def config(**training) -> TrainingConfig:
    return TrainingConfig.from_dict({**RUN, "training": {**RUN["training"], **training}})


@pytest.fixture(scope="module")
def pulses(tmp_path_factory):
    return stored_sequences(tmp_path_factory.mktemp("device"), "pulses", 48, seed=1, length=20)


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dev, "_mps_available", lambda: False)


@pytest.fixture
def two_gpus(monkeypatch):
    """torch.cuda as a 2-GPU machine would answer (for the choice of device only)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)


# ----------------------------------------------------------------------------- choosing the device

def test_auto_picks_the_cpu_without_a_gpu(no_gpu):
    assert dev.resolve_device("auto") == torch.device("cpu")
    assert dev.resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_auto_is_the_cpu_on_this_machine():
    assert dev.resolve_device("auto") == torch.device("cpu")


def test_cuda_without_a_gpu_is_refused_naming_the_key(no_gpu):
    for spec in ("cuda", "cuda:1"):
        with pytest.raises(TrainsetError, match=r"training\.device: cuda(:1)? asked for, but torch sees no CUDA GPU"
                                                r".*Fix: .*training\.device: cpu"):
            dev.resolve_device(spec)
    with pytest.raises(TrainsetError, match=r"training\.device: mps asked for.*no Apple MPS"):
        dev.resolve_device("mps")


def test_cuda_refused_before_anything_is_written(no_gpu, pulses, tmp_path):
    with pytest.raises(TrainsetError, match="training.device: cuda asked for"):
        train_run(config(device="cuda"), pulses, tmp_path / "run")
    assert not (tmp_path / "run").exists()  # no partial output


def test_device_spelling_is_checked_in_the_config():
    for bad in ("gpu", "cuda:x", "CPU", 0):
        with pytest.raises(TrainsetError, match=r"training\.device: expected (auto, cpu, cuda, cuda:N or mps|a string)"):
            config(device=bad)
    assert config(device="cuda:3").training.device == "cuda:3"  # availability is checked when the run starts
    assert TrainingConfig().training.device == "auto" and TrainingConfig().training.precision == "fp32"


def test_gpu_choice_with_patched_cuda(two_gpus, monkeypatch):
    """Selection logic only: which GPU a process or a torchrun rank takes."""
    assert dev.resolve_device("auto") == torch.device("cuda", 0)
    assert dev.resolve_device("cuda") == torch.device("cuda", 0)
    assert dev.resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(TrainsetError, match=r"training\.device: cuda:2 needs GPU 2, but torch sees 2"):
        dev.resolve_device("cuda:2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert dev.resolve_device("cuda") == torch.device("cuda", 1)  # one GPU per rank
    assert dev.resolve_device("auto") == torch.device("cuda", 1)
    with pytest.raises(TrainsetError, match=r"cuda:0 under torchrun would put every rank on one GPU"):
        dev.resolve_device("cuda:0")
    monkeypatch.setenv("LOCAL_RANK", "2")
    with pytest.raises(TrainsetError, match=r"one GPU per rank: start at most 2 processes per node"):
        dev.resolve_device("cuda")


def test_batches_are_pinned_only_for_cuda():
    assert dev.pin_memory(torch.device("cuda", 0)) and not dev.pin_memory(torch.device("cpu"))
    batch = {"data": torch.ones(2), "part": ["a", "b"], "nested": [torch.zeros(1)]}
    moved = dev.to_device(batch, torch.device("meta"))
    assert moved["data"].device.type == "meta" and moved["nested"][0].device.type == "meta"
    assert moved["part"] == ["a", "b"] and batch["data"].device.type == "cpu"


# ----------------------------------------------------------------------------- precision

def test_amp_is_translated_to_precision():
    assert TrainingConfig.from_dict({"training": {"amp": True}}).training.precision == "bf16"
    assert TrainingConfig.from_dict({"training": {"amp": False}}).training.precision == "fp32"
    assert "amp" not in TrainingConfig.from_dict({"training": {"amp": True}}).to_dict()["training"]
    with pytest.raises(TrainsetError, match=r"training\.amp: given together with training\.precision"):
        TrainingConfig.from_dict({"training": {"amp": True, "precision": "fp16"}})
    with pytest.raises(TrainsetError, match=r"training\.amp: expected true or false.*training\.precision"):
        TrainingConfig.from_dict({"training": {"amp": "bf16"}})
    with pytest.raises(TrainsetError, match=r"training\.precision: expected one of \['fp32', 'bf16', 'fp16'\]"):
        config(precision="fp8")


def test_precision_the_device_cannot_run_is_refused_with_the_reason():
    for precision in ("fp32", "bf16", "fp16"):  # torch >= 2.x autocasts fp16 and bf16 on the CPU
        dev.check_precision(precision, torch.device("cpu"))
    with pytest.raises(TrainsetError, match=r"training\.precision: fp16 autocast on meta is not supported.*"
                                            r"unsupported autocast device_type.*Fix: use precision fp32"):
        dev.check_precision("fp16", torch.device("meta"))
    assert dev.grad_scaler("fp16", torch.device("cpu")) is not None
    assert dev.grad_scaler("bf16", torch.device("cpu")) is None and dev.grad_scaler("fp32", torch.device("cpu")) is None


def test_fp16_resume_is_exact_with_the_scaler_state(pulses, tmp_path):
    cfg = config(precision="fp16")
    train_run(cfg, pulses, tmp_path / "straight")
    train_run(cfg, pulses, tmp_path / "split", max_epochs=1)
    assert json.loads((tmp_path / "split/history.json").read_text())[-1]["epoch"] == 1
    train_run(cfg, pulses, tmp_path / "split")  # resumes at epoch 2 from last.pt
    a, b = load_checkpoint(tmp_path / "straight/final.pt"), load_checkpoint(tmp_path / "split/final.pt")
    assert a["grad_scaler"] == b["grad_scaler"]
    assert a["grad_scaler"]["_growth_tracker"] == 6  # 3 steps an epoch, none skipped: restored, not restarted
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert (tmp_path / "straight/final.pt").read_bytes() == (tmp_path / "split/final.pt").read_bytes()


# ----------------------------------------------------------------------------- checkpoints

def test_checkpoint_records_the_device_and_loads_anywhere(pulses, tmp_path):
    train_run(config(epochs=1), pulses, tmp_path / "run")
    state = load_checkpoint(tmp_path / "run/best.pt")
    meta = checkpoint_meta(state)
    assert meta["device"] == "cpu" and meta["gpu_name"] is None
    moved = load_checkpoint(tmp_path / "run/best.pt", map_location="meta")  # tensors go where asked
    assert {t.device.type for t in moved["model"].values()} == {"meta"}


def test_evaluation_loads_on_the_run_device(pulses, tmp_path, no_gpu):
    from trainset.evaluate.predict import load_trained

    cfg = config(epochs=1)
    train_run(cfg, pulses, tmp_path / "run")
    model, meta, _ = load_trained(cfg, tmp_path / "run/best.pt", pulses, None)
    assert dev.model_device(model) == torch.device("cpu") and meta["device"] == "cpu"
    with pytest.raises(TrainsetError, match="training.device: cuda asked for"):
        load_trained(config(epochs=1, device="cuda"), tmp_path / "run/best.pt", pulses, None)


# ----------------------------------------------------------------------------- determinism

def test_deterministic_sets_torch_cudnn_and_cublas(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        configure_torch(config(deterministic=False))
        assert not torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.deterministic
        assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
        configure_torch(config(deterministic=True))
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
