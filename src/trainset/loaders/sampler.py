"""Batch samplers that shuffle while keeping reads chunk-aligned.

Chunked and compressed stores are 5-100x faster when a batch is read as whole chunks than
sample by sample (anchors section 5). :class:`BlockShuffleSampler` shuffles the order of
blocks of ``block_size`` consecutive positions, pools ``window`` blocks at a time, shuffles the
samples inside the pool and cuts it into batches: every batch touches at most ``window``
chunks, and the order changes every epoch. Draws depend only on (seed, epoch).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
from torch.utils.data import Sampler


class BlockShuffleSampler(Sampler[list[int]]):
    """Yield batches (lists of dataset positions) for ``DataLoader(batch_sampler=...)``.

    Parameters
    ----------
    size : int
        Number of samples in the dataset (positions 0..size-1).
    batch_size : int
    block_size : int
        Positions per storage block (the reader's chunk).
    shuffle : bool
        Without shuffling, batches are consecutive positions in stored order.
    window : int
        Blocks pooled before shuffling samples (1 = a batch never spans two chunks' pools).
    seed : int
    drop_last : bool
    rank, world : int
        Under DistributedDataParallel, rank r takes positions r, r+world, ... of every global
        batch, so all ranks run the same number of steps and together see each batch once.
    arrays : bool
        Yield int64 arrays instead of lists (what :func:`~trainset.loaders.mapped.make_loader`
        asks for: a batch's positions then never become 256 Python ints and back).
    """

    def __init__(self, size: int, batch_size: int, block_size: int = 256, shuffle: bool = True,
                 window: int = 1, seed: int = 0, drop_last: bool = False, rank: int = 0, world: int = 1,
                 arrays: bool = False):
        self.size, self.batch_size, self.block_size = int(size), int(batch_size), max(1, int(block_size))
        self.shuffle, self.window, self.seed, self.drop_last = shuffle, max(1, int(window)), int(seed), drop_last
        self.epoch = 0
        self.rank, self.world = int(rank), max(1, int(world))
        self.arrays = arrays

    def set_epoch(self, epoch: int) -> None:
        """Change the shuffle for a new epoch (call before iterating)."""
        self.epoch = int(epoch)

    def order(self) -> np.ndarray:
        """All positions in the order they will be batched this epoch."""
        if not self.shuffle:
            return np.arange(self.size)
        rng = np.random.default_rng([self.seed, self.epoch, 0xB10C])
        starts = np.arange(0, self.size, self.block_size)
        full = starts[starts + self.block_size <= self.size]
        # the short last block goes last, so it cannot shift every later batch off the chunk grid
        starts = np.concatenate([full[rng.permutation(full.size)], starts[full.size:]])
        if self.window == 1:  # a pool is one block: the same draws, without building and indexing it
            ends = np.minimum(starts + self.block_size, self.size)
            pieces = [start + rng.permutation(end - start) for start, end in zip(starts.tolist(), ends.tolist())]
            return np.concatenate(pieces).astype(np.int64, copy=False) if pieces else np.arange(0)
        pieces = []
        for first in range(0, starts.size, self.window):
            pool = np.concatenate([np.arange(s, min(s + self.block_size, self.size)) for s in starts[first:first + self.window]])
            pieces.append(pool[rng.permutation(pool.size)])
        return np.concatenate(pieces) if pieces else np.arange(0)

    def __iter__(self) -> Iterator[list[int]]:
        order = self.order()
        stop = (order.size // self.batch_size) * self.batch_size if self.drop_last else order.size
        for begin in range(0, stop, self.batch_size):
            batch = order[begin:begin + self.batch_size]
            if batch.size < self.world:
                continue  # a tail too short to give every rank a sample (DDP steps must match)
            # under DDP each rank takes its share of the same global batch
            mine = batch[self.rank::self.world]
            yield mine if self.arrays else mine.tolist()

    def __len__(self) -> int:
        if self.drop_last:
            return self.size // self.batch_size
        return -(-self.size // self.batch_size)
