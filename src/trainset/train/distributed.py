"""Data-parallel training under ``torchrun``: process group, batch sharding, reductions.

``torchrun --nproc_per_node 2 -m trainset train --config run.yaml`` runs the same trainer in
two processes. The process group starts on gloo (it carries the loss sums); when every rank's
``training.device`` is a GPU (one per rank: ``cuda:LOCAL_RANK``), gradients are averaged over
an NCCL group, else over gloo (:func:`agree_device`). The sampler still draws the *global* batches of
``training.batch_size``; rank r takes positions r, r+W, ... of each, and
DistributedDataParallel averages the gradients, so one step sees the same samples as a
single-process step. Losses are summed over ranks before they are reported, and only rank 0
writes files, so a DDP run's history and validation loss match a single-process run's to
floating-point tolerance.
"""

from __future__ import annotations

import logging
import os

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)

_GRADIENTS: dict[str, object] = {}
"""The process group DDP averages gradients over (``group``: NCCL when every rank has a GPU)."""


def launched() -> bool:
    """Whether this process was started by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init() -> tuple[int, int]:
    """Join the process group (gloo: CPU sums; see :func:`agree_device` for the gradients' group)
    when launched by torchrun; return (rank, world size)."""
    if not launched():
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
        logger.info("rank %d of %d joined the process group", dist.get_rank(), dist.get_world_size())
    return dist.get_rank(), dist.get_world_size()


def agree_device(spec: str, precision: str = "fp32") -> torch.device:
    """This rank's device for ``training.device`` and ``training.precision``, agreed by all ranks.

    A single process resolves it alone (:func:`trainset.train.run.run_device`). Under torchrun
    every rank resolves its own (its GPU is ``cuda:LOCAL_RANK``), then the ranks compare: if any
    rank cannot (no GPU for ``cuda``), it raises its reason and the others stop too, instead of
    waiting for it; with
    ``auto``, unless every rank found a GPU all train on the CPU. Gradients then go over NCCL
    when every rank is on a GPU, over gloo otherwise.
    """
    from types import SimpleNamespace

    from trainset.errors import TrainsetError
    from trainset.train.device import check_precision
    from trainset.train.run import run_device

    cfg = SimpleNamespace(training=SimpleNamespace(device=spec, precision=precision))
    if world() == 1:
        return run_device(cfg)
    try:
        device, error = run_device(cfg), None
    except TrainsetError as problem:
        device, error = torch.device("cpu"), problem
    failed, gpus = reduce_sums(float(error is not None), float(device.type == "cuda"))
    if error is not None:
        raise error
    if failed:
        raise TrainsetError(f"training.device {spec!r}: {int(failed)} rank(s) cannot use it (their logs say why); "
                            f"rank {rank()} stops too")
    every = int(gpus) == world()
    if device.type == "cuda" and not every:  # only auto gets here: an explicit cuda failed above
        logger.warning("training.device auto: %d of %d ranks have a GPU; all ranks train on the CPU",
                       int(gpus), world())
        device = torch.device("cpu")
        check_precision(precision, device)
    if every:
        torch.cuda.set_device(device)
        _GRADIENTS["group"] = dist.new_group(backend="nccl")
    logger.info("rank %d: device %s, gradients over %s", rank(), device, "nccl" if every else "gloo")
    return device


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """Only rank 0 writes checkpoints, history and logs of record."""
    return rank() == 0


def reduce_sums(*values: float) -> list[float]:
    """Sum plain numbers over ranks (identity in a single process)."""
    if world() == 1:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    """DistributedDataParallel around ``model`` when running under torchrun."""
    if world() == 1:
        return model
    from trainset.train.device import model_device

    device = model_device(model)
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device] if device.type == "cuda" else None, process_group=_GRADIENTS.get("group"))


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DDP wrapper (its state dict has no ``module.`` prefix)."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def finish() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        _GRADIENTS.clear()
        dist.destroy_process_group()
