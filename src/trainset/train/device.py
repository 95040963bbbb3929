"""Where a run computes (``training.device``) and in which precision (``training.precision``).

One place turns the two keys into a :class:`torch.device`, an autocast context and (for fp16) a
gradient scaler, so training, the LR finder, the I/O tuner and evaluation agree. Nothing is
changed silently: a device that is not there (``cuda`` without a GPU) or a precision the device
cannot run is refused with the reason and the key to change.

``auto`` picks CUDA when torch sees a GPU, then Apple's MPS, else the CPU. Under ``torchrun`` a
rank's GPU is ``cuda:LOCAL_RANK`` (one GPU per rank); :func:`trainset.train.distributed.agree_device`
makes the ranks agree. On CPU every artifact is byte-identical for a config and seed; on a GPU,
``training.deterministic`` makes reruns on the same machine and GPU model identical
(:func:`configure_determinism`), not results across GPU models or against the CPU.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from typing import Any

import torch

from trainset.errors import TrainsetError
from trainset.train.config import device_problems

logger = logging.getLogger(__name__)

__all__ = ["PRECISIONS", "autocast", "check_precision", "configure_determinism", "device_meta", "grad_scaler",
           "model_device", "pin_memory", "resolve_device", "to_device"]

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
"""``training.precision`` -> autocast dtype (None: no autocast)."""
CUBLAS_WORKSPACE = ":4096:8"
"""``CUBLAS_WORKSPACE_CONFIG`` that makes cuBLAS deterministic (NVIDIA's documented value)."""


def resolve_device(spec: str, key: str = "training.device") -> torch.device:
    """The device ``spec`` names on this machine, or a TrainsetError saying why it is not here.

    Under ``torchrun`` (``LOCAL_RANK`` set) ``cuda`` and ``auto`` mean this rank's own GPU,
    ``cuda:LOCAL_RANK``; an explicit ``cuda:N`` would put every rank on one GPU and is refused.
    """
    problems = device_problems(spec, key)
    if problems:
        raise TrainsetError(problems[0])
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "auto":
        if torch.cuda.is_available():
            return _cuda(_local_rank(), key, spec)
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec == "mps":
        if not _mps_available():
            raise TrainsetError(f"{key}: mps asked for, but torch sees no Apple MPS device "
                                f"(torch.backends.mps.is_available() is False). Fix: set {key}: cpu or auto")
        return torch.device("mps")
    if not torch.cuda.is_available():
        raise TrainsetError(f"{key}: {spec} asked for, but torch sees no CUDA GPU (torch.cuda.is_available() is "
                            f"False; torch {torch.__version__}, built for CUDA {torch.version.cuda}). Fix: run on a "
                            f"GPU node with a CUDA build of torch, or set {key}: cpu (or auto)")
    if spec == "cuda":
        return _cuda(_local_rank(), key, spec)
    if _local_rank() is not None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise TrainsetError(f"{key}: {spec} under torchrun would put every rank on one GPU. Fix: set {key}: cuda "
                            "(each rank takes GPU LOCAL_RANK), and choose GPUs with CUDA_VISIBLE_DEVICES")
    return _cuda(int(spec.split(":")[1]), key, spec)


def _cuda(index: int | None, key: str, spec: str) -> torch.device:
    count = torch.cuda.device_count()
    index = 0 if index is None else index
    if index >= count:
        raise TrainsetError(f"{key}: {spec} needs GPU {index}, but torch sees {count} (LOCAL_RANK "
                            f"{os.environ.get('LOCAL_RANK', 'unset')}). Fix: one GPU per rank: start at most "
                            f"{count} processes per node, or name a GPU below {count}")
    return torch.device("cuda", index)


def _local_rank() -> int | None:
    value = os.environ.get("LOCAL_RANK")
    return int(value) if value not in (None, "") else None


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of a model's first weight (CPU for a model without weights)."""
    first = next(iter(model.parameters()), None)
    return first.device if first is not None else torch.device("cpu")


# --------------------------------------------------------------------------- precision

def check_precision(precision: str, device: torch.device, key: str = "training.precision") -> None:
    """Refuse a precision ``device`` cannot run, with torch's reason (never fall back to fp32)."""
    if precision not in PRECISIONS:
        raise TrainsetError(f"{key}: expected one of {list(PRECISIONS)}, got {precision!r}")
    dtype = PRECISIONS[precision]
    if dtype is None:
        return
    if device.type == "cuda" and dtype is torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise TrainsetError(f"{key}: bf16 on {torch.cuda.get_device_name(device)}: this GPU has no bfloat16 "
                            "support (torch.cuda.is_bf16_supported() is False). Fix: use precision fp16 or fp32")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            context = torch.autocast(device.type, dtype=dtype)
        except (RuntimeError, ValueError) as error:
            raise TrainsetError(f"{key}: {precision} autocast on {device} is not supported by torch "
                                f"{torch.__version__} ({error}). Fix: use precision fp32") from None
    refusals = [w for w in caught if "autocast" in str(w.message).lower() or "support" in str(w.message).lower()]
    if not getattr(context, "_enabled", True) or refusals:  # other warnings (deprecations) are not refusals
        reason = "; ".join(str(w.message) for w in refusals) or "autocast disabled itself"
        raise TrainsetError(f"{key}: {precision} autocast on {device} is not supported by torch "
                            f"{torch.__version__} ({reason}). Fix: use precision fp32")


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast to the precision's dtype on ``device`` (a no-op context for fp32)."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler | None:
    """fp16's loss scaler (its state goes into every checkpoint); None for fp32 and bf16,
    whose exponent range needs none."""
    if precision != "fp16":
        return None
    return torch.amp.GradScaler(device.type)


# --------------------------------------------------------------------------- placement

def pin_memory(device: torch.device) -> bool:
    """Page-locked loader batches when copying to a GPU (then copies are asynchronous)."""
    return device.type == "cuda"


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor on ``device`` (nested dicts and lists; other values kept);
    on CUDA the copies are ``non_blocking`` (from pinned memory they overlap compute)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=device.type == "cuda")
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and any(isinstance(v, (torch.Tensor, dict, list, tuple)) for v in batch):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def device_meta(device: torch.device) -> dict[str, Any]:
    """What the checkpoint's provenance records of the device: its name and, on CUDA, the GPU's."""
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {"device": str(device), "gpu_name": gpu}


def configure_determinism(deterministic: bool) -> None:
    """``training.deterministic``: deterministic torch algorithms, and on CUDA deterministic
    cuDNN (no autotuning) and cuBLAS.

    ``CUBLAS_WORKSPACE_CONFIG`` is read when cuBLAS starts, so this runs before any CUDA work
    (a value the environment already holds is kept). Ops with no deterministic kernel warn
    (``warn_only``) rather than stop the run; the warning names the op. Guarantee: on CPU the
    same config and seed give byte-identical artifacts; on a GPU, identical results on the same
    machine and GPU model with the same torch/CUDA versions, not across GPU models or vs the CPU.
    """
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        if os.environ["CUBLAS_WORKSPACE_CONFIG"] not in (CUBLAS_WORKSPACE, ":16:8"):
            logger.warning("CUBLAS_WORKSPACE_CONFIG=%s is not one of cuBLAS's deterministic settings (:4096:8, "
                           ":16:8); GPU matrix products may vary between reruns", os.environ["CUBLAS_WORKSPACE_CONFIG"])
    torch.use_deterministic_algorithms(bool(deterministic), warn_only=True)
    torch.backends.cudnn.deterministic = bool(deterministic)
    torch.backends.cudnn.benchmark = not deterministic
