"""Packaging: dependency ranges in pyproject.toml, the exact tested pins in constraints.txt (which
must satisfy them, torch at 2.13.0), nothing required that the library never imports, and the
license, typing marker and console command an installed package advertises."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]


def pins() -> dict[str, Version]:
    """Normalised name -> pinned version of constraints.txt."""
    found = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin (NAME==VERSION)"
            found[re.sub(r"[-_.]+", "-", name).lower()] = Version(version)
    return found


def requirements() -> list[Requirement]:
    extras = [r for group in PROJECT["optional-dependencies"].values() for r in group]
    return [Requirement(r) for r in [*PROJECT["dependencies"], *extras] if not r.startswith("trainset")]


def test_dependencies_are_ranges_and_the_pins_satisfy_them():
    pinned = pins()
    for requirement in requirements():
        assert not any(spec.operator == "==" for spec in requirement.specifier), f"{requirement}: a pin, not a range"
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pinned, f"{requirement.name}: no exact version in constraints.txt"
        assert requirement.specifier.contains(pinned[name], prereleases=True), \
            f"constraints.txt pins {name}=={pinned[name]}, outside pyproject's {requirement}"
    assert pinned["torch"] == Version("2.13.0")


def test_unimported_packages_are_test_extras_only():
    library = "\n".join(p.read_text() for p in (REPO / "src" / "trainset").rglob("*.py"))
    required = {Requirement(r).name.lower() for r in PROJECT["dependencies"]}
    test = {Requirement(r).name.lower() for r in PROJECT["optional-dependencies"]["test"]}
    for name in ("webdataset", "h5netcdf"):
        assert not re.search(rf"^\s*(import|from) {name}\b", library, re.M), f"the library imports {name}"
        assert name not in required and name in test


def test_license_typing_marker_and_console_command():
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
    assert "trainset developers" in (REPO / "LICENSE").read_text()
    assert any(Requirement(r).specifier.contains("77") for r in PYPROJECT["build-system"]["requires"])
    assert (REPO / "src" / "trainset" / "py.typed").exists()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["trainset"]
    assert PROJECT["scripts"]["trainset"] == "trainset.cli:main"


def test_readme_and_ci_install_with_the_constraints():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert "pip install -e . -c constraints.txt" in readme
    assert "-c constraints.txt" in ci
