"""Config errors a person can act on: one short line per problem instead of the whole schema.

Snakemake's ``validate()`` prints the failing sub-schema and the whole config (about 1,060 lines
for a top-level typo). :func:`check_config` runs the same JSON Schema (draft 2020-12, defaults
filled as Snakemake fills them) first and, when the config does not fit, raises one message: per
problem the key path, the offending value, what is allowed and, for a misspelt key, the closest
allowed name (``pad_too`` -> ``pad_to``). :func:`load_yaml` names the file, line and column of a
YAML syntax error, and :func:`missing_paths` names the config key of a file that is not there.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, ValidationError, validators

from trainset.errors import TrainsetError

MAX_PROBLEMS = 8
"""Problems listed in one message; the rest are counted (fixing the first ones often fixes them)."""

MAX_VALUE = 60
"""Characters of an offending value shown; longer values are cut with an ellipsis."""


_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser with the safe constructors and resolvers (the same data as ``yaml.safe_load``),
~10x faster: the workflow parses config.yaml and the schema on every run, a no-op rerun too."""


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a syntax error names the file, line and column (1-based) and the problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TrainsetError(f"{path}: config file not found (relative to {Path.cwd()}). Fix: check the path") from None
    except (OSError, UnicodeDecodeError) as error:
        raise TrainsetError(f"{path}: cannot read the config file ({error}). Fix: pass a UTF-8 YAML file") from None
    try:
        return yaml.load(text, Loader=_FAST_LOADER)
    except yaml.YAMLError:
        pass  # said below in the pure-Python parser's words (the ones the messages were written for)
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = " ".join(p for p in (error.context, error.problem) if p)
        raise TrainsetError(f"{where}: YAML syntax error: {problem}. Fix: check the indentation and brackets "
                            f"at line {mark.line + 1 if mark else '?'} (tabs are not allowed)") from None
    except yaml.YAMLError as error:
        raise TrainsetError(f"{path}: YAML syntax error: {error}") from None


def load_schema(path: str | Path) -> dict:
    """The config schema as a dict (YAML or JSON)."""
    return load_yaml(path)


def _with_defaults(validator_class: type) -> type:
    """A validator that fills ``default`` values while validating, as Snakemake's ``validate`` does,
    so a key left out but defaulted is judged the way the workflow will see it."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


def schema_problems(config: Mapping, schema: dict) -> list[str]:
    """One line per way ``config`` does not fit ``schema``, ordered by key path; empty when it fits.
    ``config`` is not changed (defaults are filled on a copy)."""
    validator = _with_defaults(Draft202012Validator)(schema)
    return _problem_lines(validator.iter_errors(copy.deepcopy(dict(config))))


def _problem_lines(errors: Iterator[ValidationError]) -> list[str]:
    """The distinct lines explaining ``errors``, ordered by key path."""
    errors = sorted(errors, key=lambda e: [str(p) for p in e.path])
    lines: list[str] = []
    for error in errors:
        for line in _explain(error):
            if line not in lines:
                lines.append(line)
    return lines


def check_config(config: Mapping, schema_path: str | Path, source: str = "config") -> None:
    """Raise one short :class:`TrainsetError` listing the schema problems of ``config`` (none: return).
    ``source`` names where the config came from (e.g. the --configfile paths)."""
    _refuse(schema_problems(config, load_schema(schema_path)), schema_path, source)


def fill_and_check(config: dict, schema_path: str | Path, source: str = "config") -> None:
    """Fill the schema's defaults into ``config`` in place, as Snakemake's ``validate()`` does, and
    raise :func:`check_config`'s error when it does not fit. One validation pass over the
    schema read once (by libyaml): the workflow does this at every start, a no-op rerun too."""
    validator = _with_defaults(Draft202012Validator)(load_schema(schema_path))
    _refuse(_problem_lines(validator.iter_errors(config)), schema_path, source)


def _refuse(problems: list[str], schema_path: str | Path, source: str) -> None:
    """Raise one short :class:`TrainsetError` listing ``problems`` (none: return)."""
    if not problems:
        return
    shown = "\n".join(f"  - {line}" for line in problems[:MAX_PROBLEMS])
    more = f"\n  ... and {len(problems) - MAX_PROBLEMS} more" if len(problems) > MAX_PROBLEMS else ""
    raise TrainsetError(f"{source} does not fit the config schema ({Path(schema_path).name}), "
                        f"{len(problems)} problem(s):\n{shown}{more}\n"
                        "Every key is described in config/config.yaml (the defaults) and the schema")


def key_path(parts: Any) -> str:
    """``mixes.US_FLU.pad_to[1]`` from a jsonschema path deque; ``(top level)`` for the root."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _value(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 3] + "..."


def _explain(error: ValidationError) -> Iterator[str]:
    """The line(s) for one jsonschema error (several for several unknown keys in one mapping)."""
    where, kind, schema = key_path(error.absolute_path), error.validator, error.schema
    if kind == "additionalProperties" and schema.get("additionalProperties") is False:
        allowed = sorted(schema.get("properties", {}))
        for key in _unknown_keys(error.instance, schema):
            here = f"{where}.{key}" if error.absolute_path else str(key)
            yield (f"{here}: unknown key (value {_value(error.instance[key])}){_did_you_mean(str(key), allowed)}. "
                   f"Allowed keys{' under ' + where if error.absolute_path else ''}: {', '.join(allowed)}")
    elif kind == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        yield f"{where}: missing required key(s) {', '.join(missing)}"
    elif kind == "enum":
        options = [str(o) for o in error.validator_value]
        hint = _did_you_mean(str(error.instance), options) if isinstance(error.instance, str) else ""
        yield f"{where}: {_value(error.instance)} is not allowed{hint}. Allowed: {', '.join(options)}"
    elif kind == "propertyNames":
        yield f"{where}: the name {_value(error.instance)} is not allowed. {_allowed(error.validator_value)}"
    elif kind in ("oneOf", "anyOf") and _key_choice(error):
        keys, given = _key_choice(error), [k for k in _key_choice(error) if k in error.instance]
        yield f"{where}: needs exactly one of the keys {', '.join(keys)}; found {', '.join(given) or 'none'}"
    elif kind in ("oneOf", "anyOf"):
        branches = " | ".join(_describe(s) for s in error.validator_value)
        count = "none" if error.context else "more than one"
        yield f"{where}: {_value(error.instance)} matches {count} of the alternatives. Allowed: exactly one of {branches}"
    else:
        yield f"{where}: {_value(error.instance)} is not allowed: {_reason(error)}. {_allowed(schema)}"


def _key_choice(error: ValidationError) -> list[str]:
    """The alternative keys of a oneOf whose branches each require one key (a table's path or
    demo), else empty."""
    branches = error.validator_value
    if not isinstance(error.instance, dict) or not all(isinstance(b, dict) and len(b.get("required", ())) == 1
                                                       for b in branches):
        return []
    return [b["required"][0] for b in branches]


def _unknown_keys(instance: Mapping, schema: dict) -> list[str]:
    known, patterns = schema.get("properties", {}), schema.get("patternProperties", {})
    return [k for k in instance if k not in known and not any(re.search(p, str(k)) for p in patterns)]


def _did_you_mean(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _reason(error: ValidationError) -> str:
    """jsonschema's sentence without the value it starts with (already shown)."""
    text = error.message
    prefix = repr(error.instance)
    return text[len(prefix):].strip() if text.startswith(prefix) else text


def _allowed(schema: Any) -> str:
    """'Allowed: ...' for a sub-schema."""
    text = _describe(schema)
    return f"Allowed: {text}" if text else "See the schema"


def _describe(schema: Any) -> str:
    """What a sub-schema allows, in words (type, range, enum, pattern, required keys)."""
    if not isinstance(schema, dict):
        return ""
    parts = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        parts.append(" or ".join(types))
    if "enum" in schema:
        parts.append("one of " + ", ".join(map(str, schema["enum"])))
    bounds = [f"{op} {schema[k]}" for k, op in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="),
                                                ("exclusiveMaximum", "<"), ("minItems", "items >="),
                                                ("maxItems", "items <="), ("minLength", "length >="),
                                                ("minProperties", "keys >="), ("maxProperties", "keys <="))
              if k in schema]
    parts += bounds
    if "pattern" in schema:
        parts.append(f"matching {schema['pattern']}")
    if "required" in schema:
        parts.append("with key(s) " + ", ".join(schema["required"]))
    if "$ref" in schema:
        parts.append(f"as {schema['$ref'].rsplit('/', 1)[-1]}")
    return ", ".join(parts)


def missing_paths(config: Mapping, workdir: str | Path | None = None) -> list[str]:
    """One line per configured input file that does not exist: the config key holding it and where a
    relative path is read from (the working directory, Snakemake's ``--directory``). URLs
    (``s3://...``) are left to their storage plugin."""
    root = Path(workdir or os.getcwd())
    problems = []
    for key, value in _configured_paths(config):
        if "://" in value or (root / value).exists():
            continue
        base = "absolute" if Path(value).is_absolute() else f"relative to the working directory {root}"
        problems.append(f"{key}: {value!r} does not exist ({base}; Snakemake's --directory sets it). "
                        f"Fix: give the file's absolute path, or run from the folder that holds it")
    return problems


def _configured_paths(config: Mapping) -> Iterator[tuple[str, str]]:
    """(config key, path) of every user file the workflow reads: tables' ``path``, mixes'
    ``scaling_distribution.path`` and domain datasets' ``files``."""
    for name, table in (config.get("tables") or {}).items():
        if isinstance(table, dict) and isinstance(table.get("path"), str):
            yield f"tables.{name}.path", table["path"]
    for name, mix in (config.get("mixes") or {}).items():
        scaling = (mix or {}).get("scaling_distribution") if isinstance(mix, dict) else None
        if isinstance(scaling, dict) and isinstance(scaling.get("path"), str):
            yield f"mixes.{name}.scaling_distribution.path", scaling["path"]
    for name, dataset in (config.get("datasets") or {}).items():
        files = dataset.get("files") if isinstance(dataset, dict) else None
        for role, path in (files or {}).items() if isinstance(files, dict) else ():
            if isinstance(path, str):
                yield f"datasets.{name}.files.{role}", path


NAMED_SECTIONS = ("tables", "mixes", "datasets", "runs", "searches")
"""Sections whose entries an overlay removes with ``null`` (as workflow/rules/common.smk does)."""


def merge_overlays(defaults: Mapping, overlays: list[Mapping], names: list[str]) -> dict:
    """``overlays`` merged over ``defaults`` in order the way the workflow merges ``--configfile``s:
    mappings key by key, other values replaced, a null entry of a named section removed. An
    overlay that is not a mapping is refused, naming its file."""
    merged: dict = dict(defaults or {})
    for overlay, name in zip(overlays, names):
        if not isinstance(overlay, Mapping):
            raise TrainsetError(f"{name}: a config file holds a mapping of sections at its top level, not "
                                f"{type(overlay).__name__}. Fix: see config/config.yaml")
        merged = _merge(merged, overlay)
    for section in NAMED_SECTIONS:
        entries = merged.get(section)
        if isinstance(entries, Mapping):
            merged[section] = {k: v for k, v in entries.items() if v is not None}
    return merged


def _merge(base: Mapping, over: Mapping) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out
