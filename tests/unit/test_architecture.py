"""The README's architecture holds in the code: data flows one way, table -> frames -> dataset ->
scalers -> model -> report. A module imports the shared vocabulary and its own or earlier stages,
never a later one (imports inside functions count too), and the library never imports Snakemake."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LIBRARY = Path(__file__).parents[2] / "src" / "trainset"

SHARED = {"errors", "provenance", "versions", "rng", "locations", "seasons", "collection", "splits", "tokens",
          "transforms", "augment", "tasks", "io.base", "workflow", "data", "faults",
          "config_errors", "config_docs"}
"""Vocabulary every stage may use; it imports nothing but itself."""

STAGES = [
    {"table", "demo"},                                                    # raw tables -> validated table
    {"mixing", "domains", "plots"},                                       # -> frames (and their plots)
    {"arrays", "datasets", "io", "validate", "open", "loaders"},          # -> stored datasets, loaders
    {"scalers"},                                                          # -> fitted scalers
    {"models", "train"},                                                  # -> checkpoints
    {"evaluate"},                                                         # -> reports
]
ENTRY_POINTS = {"", "cli", "__main__"}  # the package root re-exports; the CLI calls every stage


def _place(module: str) -> str:
    """The SHARED name or stage package a dotted ``trainset.x.y`` module belongs to."""
    parts = module.split(".")[1:]
    if ".".join(parts[:2]) in SHARED:
        return ".".join(parts[:2])
    return parts[0] if parts else ""


def _rank(place: str) -> int | None:
    """-1 for shared modules, the stage number otherwise; None for entry points."""
    if place in SHARED:
        return -1
    for number, stage in enumerate(STAGES):
        if place in stage:
            return number
    return None


def _imports() -> list[tuple[str, str, str]]:
    """(file, importing module, imported module) for every trainset import in the library."""
    found = []
    for file in sorted(LIBRARY.rglob("*.py")):
        parts = file.relative_to(LIBRARY.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for node in ast.walk(ast.parse(file.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "trainset":
                names = [node.module] if node.module != "trainset" else [f"trainset.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.split(".")[0] in ("trainset", "snakemake")]
            found += [(str(file.relative_to(LIBRARY)), module, name) for name in names]
    return found


def test_every_library_package_has_a_place():
    places = {_place(module) for _, module, _ in _imports()}
    assert {p for p in places if _rank(p) is None} <= ENTRY_POINTS


def test_data_flows_one_way():
    wrong = []
    for file, module, imported in _imports():
        if imported.startswith("snakemake"):
            wrong.append(f"{file}: imports {imported} (the library has no Snakemake imports)")
            continue
        source, target = _rank(_place(module)), _rank(_place(imported))
        if source is None or imported == "trainset" or module.startswith(f"{imported}."):
            continue  # the package root (__version__, lazy open_dataset); a registry loading its own package
        if target is None or target > source or (source == -1 and target != -1):
            wrong.append(f"{file}: {module} imports {imported}")
    assert wrong == []


@pytest.mark.parametrize("module", sorted(m for s in STAGES for m in s) + sorted(SHARED - {"io.base"}))
def test_every_named_place_exists(module):
    path = LIBRARY / module.replace(".", "/")
    assert path.is_dir() or path.with_suffix(".py").is_file()
