"""Check a stored dataset: its format's structure, then its task type's shapes, dtypes and values.

Used by the ``validate_dataset`` rule and ``python -m trainset validate PATH --task TASK``.
Every problem is reported (not just the first), each with its fix.
"""

from __future__ import annotations

import os
from typing import Any

from trainset.errors import TrainsetError
from trainset.io.base import Reader, get_format, guess_format


def validate_dataset(path: str | os.PathLike, task: str | None = None, format: str | None = None,
                     vocab_size: int | None = None, num_classes: int | None = None) -> dict[str, Any]:
    """Return ``{"path", "format", "task", "samples", "problems": [...], "valid": bool}``.

    ``task`` defaults to the ``task`` attribute the dataset was written with.
    """
    from trainset.tasks import check_task

    try:
        fmt = get_format(format) if format else guess_format(path)
    except TrainsetError as error:
        return _report(path, None, task, 0, [str(error)])
    problems = fmt.check(path)
    if problems:
        return _report(path, fmt.name, task, 0, problems)
    source = fmt.reader(path)
    task = task or source.attrs.get("task")
    if not task:
        return _report(path, fmt.name, task, len(source), [f"{path}: no task given and none stored. Fix: pass --task"])
    reader = source if isinstance(source, Reader) else StreamingReader(source)
    problems = check_task(source.parts, task, reader=reader, vocab_size=vocab_size, num_classes=num_classes)
    return _report(path, fmt.name, task, len(source), problems)


def _report(path, fmt, task, samples, problems) -> dict[str, Any]:
    return {"path": str(path), "format": fmt, "task": task, "samples": int(samples),
            "problems": list(problems), "valid": not problems}


class StreamingReader:
    """Sequential ``read`` over an iterable source (WebDataset), so value checks scan it too.

    ``check_task`` asks for consecutive ranges of rows in order; blocks are streamed shard by
    shard and dropped once served, so memory stays at about one scan block.
    """

    def __init__(self, source: Any):
        self.source, self.block_size = source, getattr(source, "block_size", 256)
        self._offsets = source.offsets() if hasattr(source, "offsets") else _offsets(source)
        self._blocks = self._stream(None)
        self._pending: dict | None = None
        self._start = 0

    def _stream(self, variables):
        for shard in range(len(self.source.shards)):
            for first, _, count, block in self.source.iter_blocks(shard, variables):
                yield first, count, block

    def read(self, part: int, local, variables: list[str] | None = None) -> dict:
        """Rows ``local`` of part ``part``; requests must come in increasing order."""
        import numpy as np

        local = np.asarray(local)
        lo, hi = int(self._offsets[part] + local[0]), int(self._offsets[part] + local[-1] + 1)
        if lo < self._start:
            raise TrainsetError("StreamingReader: rows requested out of order")
        while self._pending is None or self._start + _rows(self._pending) < hi:
            first, _, block = next(self._blocks)
            if self._pending is None:
                self._pending, self._start = dict(block), first
            else:
                self._pending = {k: np.concatenate([v, block[k]]) for k, v in self._pending.items()}
        rows = {k: v[lo - self._start:hi - self._start] for k, v in self._pending.items()
                if variables is None or k in variables}
        self._pending = {k: v[hi - self._start:] for k, v in self._pending.items()}
        self._start = hi
        return rows


def _rows(block: dict) -> int:
    return len(next(iter(block.values())))


def _offsets(source: Any):
    import numpy as np

    return np.cumsum([0, *(p.size for p in source.parts)])[:-1]
