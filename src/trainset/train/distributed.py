"""Data-parallel training under ``torchrun``: process group, batch sharding, reductions.

``torchrun --nproc_per_node 2 -m trainset train --config run.yaml`` runs the same trainer in
two processes (gloo on CPU). The sampler still draws the *global* batches of
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


def launched() -> bool:
    """Whether this process was started by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init() -> tuple[int, int]:
    """Join the process group (gloo) when launched by torchrun; return (rank, world size)."""
    if not launched():
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
        logger.info("rank %d of %d joined the process group", dist.get_rank(), dist.get_world_size())
    return dist.get_rank(), dist.get_world_size()


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
    return torch.nn.parallel.DistributedDataParallel(model)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DDP wrapper (its state dict has no ``module.`` prefix)."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def finish() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
