"""What an opened dataset holds, in the words people know from xarray and Hugging Face datasets.

``ds.features`` (variable -> :class:`~trainset.io.base.VariableInfo`: per-sample shape and
dtype) and ``repr(ds)`` come from the reader's metadata alone, so neither reads a sample. The
repr names the format, the path, the split, the length and each variable::

    MappedDataset(format=hdf5, path=results/datasets/X/TS_X.h5, split=train, length=240)
      data    float32 (20, 3)
      labels  float32 (5, 2)

Parts (macro worlds) may differ in per-sample shape: ``features`` then gives ``None`` for an
axis whose length differs between parts, and the repr lists each part's shapes.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from trainset.io.base import PartInfo, VariableInfo


def features_of(parts: Sequence[PartInfo], variables: Sequence[str] | None = None) -> dict[str, VariableInfo]:
    """Variable -> per-sample shape and dtype over all ``parts`` (only ``variables`` when given).

    An axis whose length differs between parts is ``None``; a variable whose rank or dtype
    differs keeps the first part's dtype and gets ``None`` for every axis it cannot agree on.
    """
    merged: dict[str, VariableInfo] = {}
    for part in parts:
        for name, info in part.variables.items():
            if variables is not None and name not in variables:
                continue
            seen = merged.get(name)
            if seen is None:
                merged[name] = info
                continue
            shape = tuple(a if a == b else None for a, b in zip(seen.shape, info.shape))
            if len(seen.shape) != len(info.shape):
                shape = (None,) * max(len(seen.shape), len(info.shape))
            merged[name] = VariableInfo(shape, seen.dtype)  # type: ignore[arg-type]
    return merged


def describe(kind: str, fields: dict[str, Any], parts: Sequence[PartInfo],
             variables: Sequence[str] | None = None) -> str:
    """The repr text: ``kind(field=value, ...)`` then one line per variable (per part when parts differ)."""
    head = f"{kind}({', '.join(f'{k}={v}' for k, v in fields.items())})"
    features = features_of(parts, variables)
    lines = [head]
    width = max((len(name) for name in features), default=0)
    if len(parts) > 1:
        lines.append(f"  parts: {', '.join(f'{p.name} ({p.size})' for p in parts)}")
    for name, info in features.items():
        if None in info.shape and len(parts) > 1:
            shapes = ", ".join(f"{p.name} {_shape(p.variables[name].shape)}" for p in parts if name in p.variables)
            lines.append(f"  {name:<{width}}  {np.dtype(info.dtype).name} per part: {shapes}")
        else:
            lines.append(f"  {name:<{width}}  {np.dtype(info.dtype).name} {_shape(info.shape)}")
    return "\n".join(lines)


def _shape(shape: tuple) -> str:
    return "(" + ", ".join(str(a) for a in shape) + ("," if len(shape) == 1 else "") + ")"
