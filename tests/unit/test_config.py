"""The default config validates against the schema, and the conda env matches the pins."""

from __future__ import annotations

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


def test_domain_config_defaults_in_the_schema_are_the_registry_s():
    """Snakemake fills the schema's defaults, a library caller gets the registry's: they must be one set."""
    from trainset.domains.registry import DOMAINS
    from trainset.domains.sequences import RECIPES

    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    entry = schema["properties"]["datasets"]["additionalProperties"]["properties"]
    assert set(entry["domain"]["enum"]) == set(DOMAINS)
    assert set(entry["recipe"]["enum"]) == set(RECIPES)
    in_code: dict = {}
    for domain in DOMAINS.values():
        for key, value in domain.defaults.items():
            assert in_code.setdefault(key, value) == value, f"domains disagree on the default of {key!r}"
    assert {key: prop["default"] for key, prop in entry.items() if "default" in prop} == in_code
    methods = set(schema["$defs"]["splits"]["properties"]["method"]["enum"])
    assert {method for domain in DOMAINS.values() for method in domain.splits} <= methods
