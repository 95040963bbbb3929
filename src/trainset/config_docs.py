"""``config/README.md``: every config key with its type, default and description, from the schema.

The schema (``workflow/schemas/config.schema.yaml``) already describes every key, and the tests
keep its defaults equal to the code's; this renders it as the page the Snakemake workflow
catalog and a reader of ``config/`` look for, so the page cannot drift from what is validated.
``tests/unit/test_snakemake_conventions.py`` fails when the page is stale.

``python -m trainset.config_docs --write`` regenerates it; ``--check`` exits 1 when it is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Iterator

import yaml

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
PAGE = REPO / "config" / "README.md"

HEADER = """# Configuration

<!-- Generated from workflow/schemas/config.schema.yaml by `python -m trainset.config_docs --write`;
edit the schema's descriptions, not this page (tests/unit/test_snakemake_conventions.py checks it). -->

`config/config.yaml` holds the defaults: the bundled demo. Pass your own file with
`snakemake --configfile my.yaml`; it is merged over the defaults key by key, and setting a named
entry (a table, mix, dataset, run or search) to `null` removes it. `demo: false` starts from none of
the demo's entries: `config/minimal.yaml` is a complete example with one table and one mix of
your own. Every key is checked at start-up against the schema, which this page lists:
`<name>` stands for a name you choose, `[]` for a list item.
"""


def config_readme(schema: dict[str, Any]) -> str:
    """The Markdown page: one table per top-level section, one row per key below it."""
    parts = [HEADER]
    for name, node in schema.get("properties", {}).items():
        parts.append(f"## `{name}`\n\n{_text(node, schema)}\n")
        rows = list(_rows(node, name, schema))
        if rows:
            parts.append("| key | type | default | description |\n|---|---|---|---|")
            parts.extend(f"| `{path}` | {kind} | {default} | {text} |" for path, kind, default, text in rows)
            parts.append("")
    return "\n".join(parts).rstrip("\n") + "\n"


def _rows(node: dict[str, Any], path: str, schema: dict[str, Any]) -> Iterator[tuple[str, str, str, str]]:
    """(key path, type, default, description) of every key below ``node``, depth first."""
    node = _resolve(node, schema)
    for name, child in (node.get("properties") or {}).items():
        here = f"{path}.{name}"
        yield here, _type(child, schema), _default(child), _text(child, schema)
        yield from _rows(child, here, schema)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and (extra.get("properties") or extra.get("additionalProperties")):
        yield from _rows(extra, f"{path}.<name>", schema)
    items = node.get("items")
    if isinstance(items, dict) and _resolve(items, schema).get("properties"):
        yield from _rows(items, f"{path}[]", schema)


def _resolve(node: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``node`` with a local ``$ref`` (``#/$defs/x``) replaced by its target, own keys winning."""
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return node
    target: Any = schema
    for part in ref[2:].split("/"):
        target = target[part]
    return {**_resolve(target, schema), **{k: v for k, v in node.items() if k != "$ref"}}


def _type(node: dict[str, Any], schema: dict[str, Any]) -> str:
    node = _resolve(node, schema)
    if "enum" in node:
        return " \\| ".join(f"`{json.dumps(v)}`".replace("|", "\\|") for v in node["enum"])
    kinds = node.get("type")
    if kinds is None:
        alternatives = node.get("oneOf") or node.get("anyOf") or []
        kinds = [_type(alt, schema) for alt in alternatives] or ["any"]
    return " \\| ".join(kinds) if isinstance(kinds, list) else str(kinds)


def _default(node: dict[str, Any]) -> str:
    return f"`{json.dumps(node['default'])}`".replace("|", "\\|") if "default" in node else ""


def _text(node: dict[str, Any], schema: dict[str, Any]) -> str:
    """The description on one line, with table-breaking characters escaped."""
    text = node.get("description") or _resolve(node, schema).get("description") or ""
    return " ".join(str(text).split()).replace("|", "\\|")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate config/README.md from the config schema.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help="rewrite config/README.md")
    group.add_argument("--check", action="store_true", help="exit 1 if config/README.md is stale")
    args = parser.parse_args(argv)
    page = config_readme(yaml.safe_load(SCHEMA.read_text()))
    if args.write:
        PAGE.write_text(page)
        print(f"wrote {PAGE}")
        return 0
    if PAGE.exists() and PAGE.read_text() == page:
        return 0
    print(f"{PAGE} is stale. Fix: python -m trainset.config_docs --write", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
