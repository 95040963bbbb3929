"""The run-config parts of ``workflow/schemas/config.schema.yaml``, generated from the code.

Direction: **code -> schema**. The code that consumes a config section owns its keys, defaults
and descriptions: :class:`~trainset.train.config.TrainingConfig` and its sections (``runs``),
the keyword options of :func:`~trainset.train.lr_finder.find_lr` and
:func:`~trainset.train.io_tuner.tune_io` (``tuning``). The schema's copy is generated from them
(``python -m trainset.train.config_schema`` prints it) and ``tests/unit/test_config_schema.py``
fails when the two differ, so a new field is added in code and the schema regenerated.

The generated run schema documents every key (description and default) but leaves checking to
the code, which names the key and the fix: no ``type`` (float fields accept ``"1e-3"``, the auto
keys ``auto``) and no ``default`` (Snakemake's ``validate`` would write defaults into each run,
which the seed-003 layout forbids and which would change every run's tracked params).
"""

from __future__ import annotations

import ast
import inspect
import json
import textwrap
from dataclasses import MISSING, fields
from typing import Any, Callable

from trainset.train.auto import AUTO_KEYS

__all__ = ["field_docs", "run_schema", "tuning_schema"]


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
    properties = {}
    for f in fields(cls):
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        text = docs[f.name] + (" May be auto (tuned)." if f.name in auto else "")
        properties[f.name] = _described(text, default)
    return properties


def run_schema() -> dict[str, Any]:
    """The schema of one entry of ``runs:`` (keys and descriptions of a TrainingConfig)."""
    from trainset.train.config import DataSection, ModelSection, TrainingConfig, TrainingSection

    sections = {"model": (ModelSection, ()), "training": (TrainingSection, tuple(AUTO_KEYS)),
                "data": (DataSection, ())}
    docs = field_docs(TrainingConfig)
    properties: dict[str, Any] = {}
    for f in fields(TrainingConfig):
        if f.name in sections:
            cls, auto = sections[f.name]
            properties[f.name] = {"description": docs[f.name], "properties": _section(cls, auto)}
        else:
            properties[f.name] = _described(docs[f.name], f.default)
    return {"type": "object", "required": ["dataset"],
            "description": "One training run (see README, Training); checked at start-up by "
                           "trainset.train.config, which names the offending key. Generated from the code "
                           "(python -m trainset.train.config_schema).",
            "properties": properties}


def _options(fn: Callable, names: tuple[str, ...]) -> dict[str, Any]:
    """Each option's description (from the numpydoc Parameters section) and signature default."""
    signature = inspect.signature(fn)
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
    return {name: _described(texts[name].split(". ")[0].rstrip(".") + ".", signature.parameters[name].default)
            for name in names}


def tuning_schema() -> dict[str, Any]:
    """The schema of ``tuning:`` (the LR finder's and the I/O tuner's options)."""
    from trainset.train.io_tuner import IO_TUNER_OPTIONS, tune_io
    from trainset.train.lr_finder import LR_FINDER_OPTIONS, find_lr

    return {"type": "object", "additionalProperties": False, "default": {},
            "description": "Options of the LR range test and the loader throughput tuner (generated from "
                           "find_lr and tune_io: python -m trainset.train.config_schema).",
            "properties": {
                "lr_finder": {"type": "object", "default": {}, "description": "Options of the LR range test.",
                              "properties": _options(find_lr, LR_FINDER_OPTIONS)},
                "io_tuner": {"type": "object", "default": {}, "description": "Options of the I/O tuner.",
                             "properties": _options(tune_io, IO_TUNER_OPTIONS)}}}


if __name__ == "__main__":  # pragma: no cover - prints the generated schema parts
    import yaml

    print(yaml.safe_dump({"runs": {"additionalProperties": run_schema()}, "tuning": tuning_schema()},
                         sort_keys=False, width=110))
