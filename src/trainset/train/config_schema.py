"""The run-config parts of ``workflow/schemas/config.schema.yaml``, generated from the code.

Direction: **code -> schema**. The code that consumes a config section owns its keys, defaults
and descriptions: :class:`~trainset.train.config.TrainingConfig` and its sections (``runs``),
the keyword options of :func:`~trainset.train.lr_finder.find_lr` and
:func:`~trainset.train.io_tuner.tune_io` (``tuning``). The schema's copy is generated from them
(``python -m trainset.train.config_schema`` prints it, ``--write`` rewrites the schema file) and ``tests/unit/test_config_schema.py``
fails when the two differ, so a new field is added in code and the schema regenerated.

The generated run schema types every key and closes every section (``additionalProperties:
false``), so Snakemake's start-up validation catches a typo such as ``runs.x.trainig`` or
``runs.x.training.lr_max``. Types are loose where the code accepts more than the JSON type:
float fields also take strings (PyYAML reads ``1e-3`` as one), the auto keys take ``auto``; the
old layouts' keys (seed 001, 002, 003: :mod:`trainset.train.legacy_config`) are listed by name,
untyped, as translated keys. Values are still checked by the code, which names the key and the
fix. No ``default`` is written (Snakemake's ``validate`` would write defaults into each run,
which the seed-003 layout forbids and which would change every run's tracked params).
``searches:`` entries are typed from :mod:`trainset.train.search` (:func:`search_schema`).
"""

from __future__ import annotations

import ast
import collections.abc
import inspect
import json
import textwrap
import types
import typing
from dataclasses import MISSING, fields
from typing import Any, Callable, Literal, Union

from trainset.train.auto import AUTO_KEYS

__all__ = ["field_docs", "json_type", "run_schema", "search_schema", "tuning_schema"]

_TYPES = {bool: "boolean", int: "integer", float: ["number", "string"], str: "string"}
"""Python hint -> JSON type (floats: also strings, as PyYAML reads ``1e-3``)."""


def json_type(hint: Any, auto: bool = False) -> list[str]:
    """The JSON types a config field of type ``hint`` admits (``auto``: also the string ``auto``)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        out: list[str] = []
        for arg in args:
            for t in (["null"] if arg is type(None) else json_type(arg)):
                if t not in out:
                    out.append(t)
    elif origin is Literal:
        out = ["string"]
    elif origin in (tuple, list, collections.abc.Sequence):
        out = ["array"]
    elif origin is dict or hint is dict:
        out = ["object"]
    elif hint in _TYPES:
        value = _TYPES[hint]
        out = list(value) if isinstance(value, list) else [value]
    else:
        out = ["object", "string"]  # a LossSpec: {name, weight, params} or a bare name
    if auto and "string" not in out:
        out.append("string")
    return out


def _typed(types_: list[str]) -> dict[str, Any]:
    return {"type": types_[0] if len(types_) == 1 else types_}


def field_docs(cls: type) -> dict[str, str]:
    """Field name -> the docstring written under it in the class body (first paragraph, one line)."""
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body
    docs = {}
    for node, after in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
            docs[node.target.id] = " ".join(inspect.cleandoc(after.value.value).split("\n\n")[0].split())
    return docs


def _plain(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _described(text: str, default: Any) -> dict[str, str]:
    return {"description": f"{text} Default: {json.dumps(_plain(default))}."}


def _section(cls: type, auto: tuple[str, ...] = ()) -> dict[str, Any]:
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    properties = {}
    for f in fields(cls):
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        text = docs[f.name] + (" May be auto (tuned)." if f.name in auto else "")
        properties[f.name] = {**_typed(json_type(hints[f.name], f.name in auto)), **_described(text, default)}
    return properties


def _legacy(keys: Any, layout: str) -> dict[str, Any]:
    """Old-layout keys, accepted by name and translated (untyped: the translation checks them)."""
    return {key: {"description": f"{layout} layout key, translated (README: Coming from the upstream projects)."}
            for key in keys}


def _legacy_keys() -> dict[str, dict[str, Any]]:
    """Where each old layout's keys may sit: top level, training, model, data."""
    from trainset.train.legacy_config import (LEGACY_TRAINING, RENAMED_TRAINING, SEED002_KEYS, SEED002_MODEL,
                                              SEED002_PENALTIES, SEED003_FIELDS)

    renamed = {old: {"description": f"Old name of {new}, translated (amp: true is bf16, false is fp32); "
                                    f"not together with {new}."} for old, new in RENAMED_TRAINING.items()}

    return {
        "": {**_legacy(SEED003_FIELDS, "seed-003"), **_legacy(SEED002_KEYS, "seed-002")},
        "training": {**_legacy(LEGACY_TRAINING, "seed-003"),
                     **_legacy(("learning_rate", "num_epochs", *SEED002_PENALTIES), "seed-002"), **renamed},
        "model": {**_legacy(("time_pooling",), "seed-001"), **_legacy(SEED002_MODEL, "seed-002")},
        "data": _legacy(("data_path",), "seed-001"),
    }


def run_schema() -> dict[str, Any]:
    """The schema of one entry of ``runs:`` (keys, types and descriptions of a TrainingConfig)."""
    from trainset.train.config import DataSection, ModelSection, TrainingConfig, TrainingSection

    sections = {"model": (ModelSection, ()), "training": (TrainingSection, tuple(AUTO_KEYS)),
                "data": (DataSection, ())}
    docs = field_docs(TrainingConfig)
    hints = typing.get_type_hints(TrainingConfig)
    legacy = _legacy_keys()
    properties: dict[str, Any] = {}
    for f in fields(TrainingConfig):
        if f.name in sections:
            cls, auto = sections[f.name]
            properties[f.name] = {"type": ["object", "null"], "additionalProperties": False,
                                  "description": docs[f.name],
                                  "properties": {**_section(cls, auto), **legacy[f.name]}}
        else:
            default = f.default_factory() if f.default_factory is not MISSING else f.default
            properties[f.name] = {**_typed(json_type(hints[f.name])), **_described(docs[f.name], default)}
    properties.update({k: v for k, v in legacy[""].items() if k not in properties})
    return {"type": "object", "required": ["dataset"], "additionalProperties": False,
            "description": "One training run (see README, Training); checked at start-up by "
                           "trainset.train.config, which names the offending key. Generated from the code "
                           "(python -m trainset.train.config_schema).",
            "properties": properties}


def search_schema() -> dict[str, Any]:
    """The schema of one entry of ``searches:`` (the keys :mod:`trainset.train.search` reads)."""
    from trainset.train.search import DISTRIBUTIONS, METHODS, SEARCH_KEY_DOCS

    types_ = {"run": "string", "method": "string", "trials": "integer", "seed": "integer", "space": "object"}
    properties = {key: {"type": types_[key], "description": text} for key, text in SEARCH_KEY_DOCS.items()}
    properties["method"]["enum"] = list(METHODS)
    properties["space"]["additionalProperties"] = {
        "type": ["object", "array"], "description": f"A distribution {{{'|'.join(DISTRIBUTIONS)}: args}} "
                                                    "(random) or a list of values (grid)."}
    return {"type": "object", "required": ["run", "space"], "additionalProperties": False,
            "description": "One search (checked at start-up by trainset.train.search; generated from it: "
                           "python -m trainset.train.config_schema).",
            "properties": properties}


def _options(fn: Callable, names: tuple[str, ...]) -> dict[str, Any]:
    """Each option's JSON type (from its annotation, as :func:`json_type` types run fields: floats
    also take strings, coerced by :func:`~trainset.train.coerce.coerce_options`), description
    (from the numpydoc Parameters section) and signature default."""
    signature = inspect.signature(fn)
    hints = typing.get_type_hints(fn)
    texts: dict[str, str] = {}
    current: list[str] = []
    lines = inspect.cleandoc(fn.__doc__ or "").split("Parameters\n----------\n", 1)[-1].splitlines()
    for line in lines:
        if line and not line.startswith(" "):
            if line.endswith("---"):
                break
            current = [n.strip() for n in line.split(":")[0].split(",")]
            continue
        for name in current:
            texts[name] = (texts.get(name, "") + " " + line.strip()).strip()
    return {name: {**_typed(json_type(hints[name])),
                   **_described(texts[name].split(". ")[0].rstrip(".") + ".", signature.parameters[name].default)}
            for name in names}


def tuning_schema() -> dict[str, Any]:
    """The schema of ``tuning:`` (the LR finder's and the I/O tuner's options)."""
    from trainset.train.io_tuner import IO_TUNER_OPTIONS, tune_io
    from trainset.train.lr_finder import LR_FINDER_OPTIONS, find_lr

    return {"type": "object", "additionalProperties": False, "default": {},
            "description": "Options of the LR range test and the loader throughput tuner (generated from "
                           "find_lr and tune_io: python -m trainset.train.config_schema).",
            "properties": {
                "lr_finder": {"type": "object", "additionalProperties": False, "default": {},
                              "description": "Options of the LR range test.",
                              "properties": _options(find_lr, LR_FINDER_OPTIONS)},
                "io_tuner": {"type": "object", "additionalProperties": False, "default": {},
                             "description": "Options of the I/O tuner.",
                             "properties": _options(tune_io, IO_TUNER_OPTIONS)}}}


def _replace_block(lines: list[str], start: int, indent: int, body: dict[str, Any]) -> list[str]:
    """``lines`` with the body of the YAML key on line ``start`` (deeper than ``indent``) replaced."""
    import yaml

    end = start + 1
    while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent):
        end += 1
    text = yaml.safe_dump(body, sort_keys=False, width=110)
    return lines[:start + 1] + [" " * (indent + 2) + line for line in text.splitlines()] + lines[end:]


def write_schema(path: str) -> None:
    """Rewrite the generated parts (``runs``/``searches`` entries, ``tuning``) of the schema file
    in place, leaving every other line as it is."""
    lines = open(path, encoding="utf-8").read().splitlines()
    for key, inner, body in (("runs", "additionalProperties", run_schema()),
                             ("searches", "additionalProperties", search_schema()),
                             ("tuning", None, tuning_schema())):
        start = lines.index(f"  {key}:")
        if inner is None:
            lines = _replace_block(lines, start, 2, body)
            continue
        sub = next(i for i in range(start + 1, len(lines)) if lines[i] == f"    {inner}:")
        lines = _replace_block(lines, sub, 4, body)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":  # pragma: no cover - prints (or, with --write FILE, rewrites) the generated parts
    import sys

    import yaml

    if sys.argv[1:2] == ["--write"]:
        write_schema(sys.argv[2] if len(sys.argv) > 2 else "workflow/schemas/config.schema.yaml")
    else:
        print(yaml.safe_dump({"runs": {"additionalProperties": run_schema()},
                              "searches": {"additionalProperties": search_schema()}, "tuning": tuning_schema()},
                             sort_keys=False, width=110))
