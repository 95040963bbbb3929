"""Type checks of the config dataclasses: coerce each field to its hint, collect every problem.

A field's type hint is the whole specification of what it accepts, so the sections of
:mod:`trainset.train.config` only add value checks (:func:`in_range`). Errors name the dotted key
and what was expected, e.g. ``training.epochs: expected an integer, got 'ten' (str)``.
"""

from __future__ import annotations

import json
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any, Literal, Union

from trainset.errors import TrainsetError
from trainset.train.names import LossSpec

__all__ = ["coerce", "coerce_options", "in_range", "validate_fields"]


class _Mismatch(TrainsetError):
    def __init__(self, key: str, hint: Any, value: Any) -> None:
        self.key = key
        super().__init__(f"{key}: expected {_describe(hint)}, got {value!r} ({type(value).__name__})")


_EXACT = {
    bool: lambda value: isinstance(value, bool),
    int: lambda value: isinstance(value, int) and not isinstance(value, bool),  # True is not a count
    str: lambda value: isinstance(value, str),
}
"""Types a config value must already have: nothing is converted to them."""


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return "null or " + " or ".join(_describe(a) for a in inner)
    if origin is Literal:
        return f"one of {list(args)}"
    if origin is tuple:
        if typing.get_origin(args[0]) is Literal:
            return f"a list of {list(typing.get_args(args[0]))}"
        return "a list of strings" if args[0] is str else "a list of losses {name, weight, params}"
    if origin is dict:
        return "a mapping"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false",
            LossSpec: "a loss {name, weight, params}"}.get(hint, str(hint))


def _json_value(value: Any, key: str) -> Any:
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise TrainsetError(f"{key}: must hold plain JSON values (strings, numbers, lists, mappings): {err}") from None


def coerce(value: Any, hint: Any, key: str) -> Any:
    """``value`` checked against (and normalised to) the type ``hint``; errors name ``key``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        try:
            return coerce(value, inner[0], key)
        except _Mismatch as err:
            if err.key == key:
                raise _Mismatch(key, hint, value) from None
            raise
    if origin is Literal:
        if isinstance(value, str) and value in args:
            return value
        raise _Mismatch(key, hint, value)
    if hint in _EXACT:
        if _EXACT[hint](value):
            return value
        raise _Mismatch(key, hint, value)
    if hint is float:
        if isinstance(value, str):  # PyYAML reads 1e-3 as a string
            try:
                value = float(value)
            except ValueError:
                raise _Mismatch(key, hint, value) from None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise _Mismatch(key, hint, value)
    if origin is dict:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise _Mismatch(key, hint, value)
        return _json_value(dict(value), key)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch(key, hint, value)
        return tuple(coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
    if isinstance(hint, type) and hasattr(hint, "__dataclass_fields__") and hint is not LossSpec:
        if isinstance(value, hint):
            return value
        raise _Mismatch(key, hint, value)
    if hint is LossSpec:
        try:
            return LossSpec.from_dict(value)
        except TrainsetError as err:
            raise TrainsetError(f"{key}: {err}") from None
    raise TypeError(f"config type {hint!r} is not supported")  # a bug here, not bad input


def coerce_options(fn: Any, options: Mapping[str, Any], section: str) -> dict[str, Any]:
    """Keyword ``options`` for ``fn`` (a workflow section such as ``tuning.lr_finder``) with each
    float option coerced as run fields are: the schema lets a float be a string, as PyYAML reads
    ``1e-3``; a value that is no number is an error naming ``section.option``."""
    hints = typing.get_type_hints(fn)
    return {key: coerce(value, float, f"{section}.{key}") if hints.get(key) is float else value
            for key, value in options.items()}


def validate_fields(obj: Any, section: str) -> None:
    """Coerce every field of the dataclass ``obj`` in place, then run its value checks."""
    hints = typing.get_type_hints(type(obj))
    problems: list[str] = []
    failed: list[str] = []
    for f in fields(obj):
        key = f"{section}.{f.name}" if section else f.name
        try:
            object.__setattr__(obj, f.name, coerce(getattr(obj, f.name), hints[f.name], key))
        except TrainsetError as err:
            problems.append(str(err))
            failed.append(key)
            default = f.default_factory() if f.default_factory is not MISSING else f.default
            object.__setattr__(obj, f.name, default)  # so the value checks below can still run
    problems += [p for p in obj._problems() if not any(p.startswith(k + ":") for k in failed)]
    if problems:
        raise TrainsetError("\n".join(problems))


def in_range(problems: list[str], key: str, value: float | None, lo: float | None = None,
           hi: float | None = None, lo_open: bool = False, hi_open: bool = False, fix: str = "") -> None:
    if value is None:
        return
    bad = (lo is not None and (value <= lo if lo_open else value < lo)) or \
          (hi is not None and (value >= hi if hi_open else value > hi))
    if bad:
        low = "" if lo is None else f"{'>' if lo_open else '>='} {lo}"
        high = "" if hi is None else f"{'<' if hi_open else '<='} {hi}"
        problems.append(f"{key}: must be {' and '.join(p for p in (low, high) if p)}, got {value}"
                        + (f". Fix: {fix}" if fix else ""))
