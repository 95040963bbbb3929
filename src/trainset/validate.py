"""Check a stored dataset: its format's structure, then its task type's shapes, dtypes and values.

Used by the ``validate_dataset`` rule and ``python -m trainset validate PATH --task TASK``.
Every problem is reported (not just the first), each with its fix.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from trainset.errors import TrainsetError
from trainset.io.base import get_format, guess_format


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
    problems = check_task(source.parts, task, reader=source, vocab_size=vocab_size, num_classes=num_classes)
    return _report(path, fmt.name, task, len(source), problems + split_problems(path, source))


def split_problems(path: str | os.PathLike, source: Any) -> list[str]:
    """Problems of the splits the loaders would serve: those stored in the dataset and a
    ``splits.json`` beside it (the workflow's splits artifact), each through the one split
    checker against the dataset's sample count."""
    from trainset.splits import check_splits, read_splits

    problems = []
    try:
        if source.splits:
            check_splits(source.splits, len(source), f"{path}: stored splits")
    except TrainsetError as error:
        problems.append(str(error))
    beside = Path(path).parent / "splits.json"
    if beside.is_file():
        try:
            read_splits(beside, n=len(source))
        except TrainsetError as error:
            problems.append(str(error))
    return problems


def _report(path, fmt, task, samples, problems) -> dict[str, Any]:
    return {"path": str(path), "format": fmt, "task": task, "samples": int(samples),
            "problems": list(problems), "valid": not problems}
