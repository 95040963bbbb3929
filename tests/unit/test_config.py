"""The default config validates against the schema, and the conda env matches the pins."""

from __future__ import annotations

import tomllib
from pathlib import Path

import jsonschema
import yaml

REPO = Path(__file__).resolve().parents[2]


def test_default_config_validates_against_the_schema():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    jsonschema.validate(config, schema)


def test_every_schema_property_has_a_description():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())

    def walk(node, where):
        for name, prop in node.get("properties", {}).items():
            assert "description" in prop, f"{where}.{name} has no description"
            walk(prop, f"{where}.{name}")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{where}.*")

    walk(schema, "config")


def test_conda_env_pins_match_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = set(project["dependencies"]) | set(project["optional-dependencies"]["test"])
    env = yaml.safe_load((REPO / "envs/trainset.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip) == pins
    for extra, extra_pins in project["optional-dependencies"].items():  # e.g. s3: a subset of test
        assert set(extra_pins) <= pins, f"extra {extra!r} pins what the test extra does not"
