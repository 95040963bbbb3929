"""Integer token ids -> one-hot inputs, refusing ids the vocabulary does not have.

The sequence-task guide (seed 001) lets ``data`` hold token ids, ``[N, T]`` or ``[N, T, 1]``,
that the model sees one-hot encoded over ``vocab_size`` classes. The old code encoded after
scaling and clipped bad ids with a warning, so a corrupt id silently became another token. Here
an id outside ``0..vocab_size-1`` is an error that names how many there are and where the first
one is; nothing is ever clipped. Encoding is a pure function of the ids, so it belongs before
any scaling, and it works on numpy arrays and torch tensors alike (returning the same kind).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trainset.errors import TrainsetError


def one_hot(tokens: Any, vocab_size: int) -> Any:
    """One-hot encode token ids.

    Parameters
    ----------
    tokens : numpy.ndarray or torch.Tensor
        Integer ids, shape ``[N, T]`` or ``[N, T, 1]``.
    vocab_size : int
        Number of distinct tokens; valid ids are ``0..vocab_size-1``.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        float32 ``[N, T, vocab_size]``, the same kind (and torch device) as ``tokens``.

    Raises
    ------
    TrainsetError
        Wrong shape or dtype, a bad ``vocab_size``, or ids outside the vocabulary.
    """
    vocab_size = check_vocab_size(vocab_size)
    if _is_torch(tokens):
        return _one_hot_torch(tokens, vocab_size)
    ids = token_matrix(np.asarray(tokens), "tokens")
    bad = out_of_range(ids, vocab_size)
    if bad is not None:
        raise TrainsetError(describe_out_of_range(bad, vocab_size, "tokens"))
    out = np.zeros((*ids.shape, vocab_size), dtype=np.float32)
    np.put_along_axis(out, ids.astype(np.intp)[..., None], np.float32(1.0), axis=2)
    return out


def check_vocab_size(vocab_size: Any) -> int:
    """``vocab_size`` as a positive int, or a clear error."""
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)) or vocab_size < 1:
        raise TrainsetError(f"vocab_size must be a positive integer, got {vocab_size!r}. "
                            "Fix: set data.vocab_size to the number of distinct token ids")
    return int(vocab_size)


def token_matrix(ids: np.ndarray, what: str) -> np.ndarray:
    """``[N, T]`` view of integer ids given as ``[N, T]`` or ``[N, T, 1]``."""
    if ids.dtype.kind not in "iu":
        raise TrainsetError(f"{what}: token ids must be integers, got dtype {ids.dtype}. "
                            "Fix: store the ids as int64 [N, T] (one-hot encoding never rounds floats)")
    if ids.ndim == 3 and ids.shape[2] == 1:
        return ids[..., 0]
    if ids.ndim != 2:
        raise TrainsetError(f"{what}: token ids must have shape [N, T] or [N, T, 1], got {list(ids.shape)}. "
                            "Fix: store one id per time step")
    return ids


def out_of_range(ids: np.ndarray, vocab_size: int) -> tuple[int, tuple[int, ...], int] | None:
    """``(count, position of the first, its value)`` of ids outside ``0..vocab_size-1``, or None."""
    bad = (ids < 0) | (ids >= vocab_size)
    count = int(np.count_nonzero(bad))
    if not count:
        return None
    position = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape))
    return count, position, int(ids[position])


def describe_out_of_range(bad: tuple[int, tuple[int, ...], int], vocab_size: int, what: str) -> str:
    """The error message for :func:`out_of_range`'s finding."""
    count, position, value = bad
    sample, step = position[0], position[1] if len(position) > 1 else 0
    return (f"{what}: {count} token id(s) outside 0..{vocab_size - 1} (first at sample {sample}, "
            f"step {step}: {value}). Fix: raise vocab_size to cover every id, or repair the ids; "
            "they are never clipped")


def _is_torch(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "dtype") and hasattr(value, "device")


def _one_hot_torch(tokens: Any, vocab_size: int) -> Any:
    import torch

    if tokens.dtype.is_floating_point or tokens.dtype.is_complex or tokens.dtype == torch.bool:
        raise TrainsetError(f"tokens: token ids must be integers, got {tokens.dtype}. "
                            "Fix: pass a long tensor [N, T] (one-hot encoding never rounds floats)")
    if tokens.dim() == 3 and tokens.shape[2] == 1:
        tokens = tokens[..., 0]
    if tokens.dim() != 2:
        raise TrainsetError(f"tokens: token ids must have shape [N, T] or [N, T, 1], got {list(tokens.shape)}. "
                            "Fix: pass one id per time step")
    bad = (tokens < 0) | (tokens >= vocab_size)
    count = int(bad.sum())
    if count:
        sample, step = (int(i) for i in bad.nonzero()[0])
        raise TrainsetError(describe_out_of_range((count, (sample, step), int(tokens[sample, step])),
                                                  vocab_size, "tokens"))
    return torch.nn.functional.one_hot(tokens.long(), vocab_size).to(torch.float32)
