"""Every config section has one source of truth, in the code; the schema's copy cannot drift.

Direction **code -> schema**, as for ``runs`` and ``tuning`` (tests/unit/test_config_schema.py)
and the domain configs (tests/unit/test_config.py): the code that reads a section declares its
defaults and allowed values once, and each test here checks, section by section, that every
``default:`` and ``enum:`` of ``workflow/schemas/config.schema.yaml`` equals that declaration and
that both name the same keys. A failure names the section; fix the schema to match the code (or
change the code's declaration first, when the default itself is meant to change).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
PROPS, DEFS = SCHEMA["properties"], SCHEMA["$defs"]


def _defaults(properties: dict) -> dict:
    """Key -> schema default, for the properties that have one."""
    return {key: prop["default"] for key, prop in properties.items() if "default" in prop}


def _same(enum: list, choices) -> bool:
    return sorted(enum, key=repr) == sorted(choices, key=repr) and len(enum) == len(set(map(repr, enum)))


def test_seed():
    from trainset.rng import DEFAULT_SEED

    assert PROPS["seed"]["default"] == DEFAULT_SEED, "seed: schema default is not trainset.rng.DEFAULT_SEED"


def test_tables():
    from trainset.demo.flu import SIZES
    from trainset.table.ingest import DEMOS, TABLE_DEFAULTS
    from trainset.table.io import SEPARATORS

    table = PROPS["tables"]["additionalProperties"]["properties"]
    assert _defaults(table) == TABLE_DEFAULTS, "tables: schema defaults are not trainset.table.ingest.TABLE_DEFAULTS"
    assert _same(table["demo"]["enum"], DEMOS)
    assert _same(table["size"]["enum"], SIZES)
    assert _same(table["sep"]["enum"], SEPARATORS)


def test_season_axis():
    from trainset.seasons import PLACE_SETS, SEASON_AXIS, SeasonAxis

    axis = PROPS["season_axis"]["properties"]
    assert _defaults(axis) == SEASON_AXIS and set(axis) == set(SEASON_AXIS), \
        "season_axis: schema keys/defaults are not trainset.seasons.SEASON_AXIS"
    assert _same(axis["places"]["enum"], PLACE_SETS)
    assert (SeasonAxis().start, SeasonAxis().weeks) == (SEASON_AXIS["start"], SEASON_AXIS["weeks"])


def _mix() -> dict:
    return PROPS["mixes"]["additionalProperties"]["properties"]


def test_mix_policies():
    """Each MixPolicy field names its config key; its default and choices are the schema's."""
    from trainset.mixing.config import policy_fields

    mix = _mix()
    for f in policy_fields():
        *section, key = f.metadata["key"].split(".")
        prop = mix[section[0]]["properties"][key] if section else mix[key]
        where = f"mixes.<mix>.{f.metadata['key']}"
        assert prop["default"] == f.default, f"{where}: schema default {prop['default']!r} is not MixPolicy's"
        null = f.metadata["null"]
        allowed = [*f.metadata["choices"], *([None] if null is not None else [])]
        assert _same(prop["enum"], allowed), f"{where}: schema enum {prop['enum']} is not MixPolicy's {allowed}"
    gaps = {f.metadata["key"].split(".")[1] for f in policy_fields() if f.metadata["key"].startswith("gaps.")}
    assert set(mix["gaps"]["properties"]) == gaps


def test_mix_keys_with_defaults():
    """Every mix key the schema gives a default is declared in code (MixPolicy or MIX_DEFAULTS), and back."""
    from trainset.mixing.config import FAMILY_DEFAULTS, MIX_DEFAULTS, SCALING_SOURCES, policy_fields

    mix = _mix()
    top = {f.metadata["key"]: f.default for f in policy_fields() if not f.metadata["key"].startswith("gaps.")}
    in_code = {**top, **MIX_DEFAULTS, "gaps": {}}  # gaps: {} so Snakemake fills its keys
    assert _defaults(mix) == in_code, "mixes: schema defaults are not MixPolicy's and mixing.config.MIX_DEFAULTS"
    family = mix["families"]["additionalProperties"]["properties"]
    assert _defaults(family) == FAMILY_DEFAULTS
    assert tuple(mix["scaling_distribution"]["properties"]) == SCALING_SOURCES


def test_splits():
    from trainset.domains.registry import DOMAINS
    from trainset.splits import METHODS, SPLITS_DEFAULTS

    splits = DEFS["splits"]
    offered = {method for domain in DOMAINS.values() for method in domain.splits}
    assert _same(splits["properties"]["method"]["enum"], [*METHODS, *sorted(offered)])
    assert _defaults(splits["properties"]) == SPLITS_DEFAULTS, "splits: schema defaults are not SPLITS_DEFAULTS"
    assert splits["default"].items() <= SPLITS_DEFAULTS.items()


#: Writer options the library takes but the workflow does not offer (with the reason).
LIBRARY_ONLY = {"webdataset": {"shard_size_mb"}}  # exclusive with samples_per_shard; kept out of configs


@pytest.mark.parametrize("name", ["netcdf", "hdf5", "zarr", "webdataset"])
def test_format_options(name):
    """Each adapter's ``options`` (and ``choices``) are its ``format_options.<name>``; ``jobs`` iff parallel."""
    from trainset.io.base import DEFAULT_JOBS, get_format

    fmt = get_format(name)
    schema = dict(DEFS["format_options"]["properties"][name]["properties"])
    jobs = schema.pop("jobs", None)
    assert (jobs is not None) == fmt.parallel, f"format_options.{name}.jobs: only (and every) parallel format has it"
    if jobs is not None:
        assert jobs["default"] == DEFAULT_JOBS
    code = {key: value for key, value in fmt.options.items() if key not in LIBRARY_ONLY.get(name, set())}
    assert _defaults(schema) == code and set(schema) == set(code), \
        f"format_options.{name}: schema keys/defaults are not {type(fmt).__name__}.options"
    enums = {key: prop["enum"] for key, prop in schema.items() if "enum" in prop}
    assert set(enums) == set(fmt.choices), f"format_options.{name}: enums are not {type(fmt).__name__}.choices"
    for key, enum in enums.items():
        assert _same(enum, fmt.choices[key]), f"format_options.{name}.{key}: enum is not the adapter's choices"


def test_format_options_name_every_format():
    from trainset.io.base import FORMATS, get_format

    get_format("netcdf")  # registers the adapters
    assert set(DEFS["format_options"]["properties"]) == set(FORMATS)


def test_formats_default_is_the_canonical_copy():
    from trainset.io.base import CANONICAL_FORMAT

    assert DEFS["formats"]["default"] == [CANONICAL_FORMAT]


def test_scaler_kinds_listed_in_the_schema_are_the_code_s():
    from trainset.scalers.spec import KINDS

    listed = re.search(r"kind \(([^)]*)\)", DEFS["scalers"]["description"]).group(1)
    assert sorted(k.strip() for k in listed.split(",")) == sorted(KINDS)


def test_evaluation():
    from trainset.evaluate.stage import evaluate_run

    params = inspect.signature(evaluate_run).parameters
    schema = PROPS["evaluation"]["properties"]
    as_param = {"split": "split", "generated_frames": "generated",
                "sample_steps": "sample_steps"}  # evaluate.smk passes them so
    assert set(schema) == set(as_param)
    assert {key: params[p].default for key, p in as_param.items()} == _defaults(schema)
    assert schema["sample_steps"]["minimum"] == 2  # one step leaves the starting noise
    from trainset.cli import build_parser

    cli = vars(build_parser().parse_args(["evaluate", "RUN", "--dataset", "D"]))  # trainset evaluate's defaults
    as_flag = {"split": "split", "generated_frames": "generated", "sample_steps": "sample_steps"}
    assert {key: cli[flag] for key, flag in as_flag.items()} == _defaults(schema)


def test_plots():
    from trainset.plots.past import DEFAULT_PAST_FAMILY, DEFAULT_PAST_SEASONS
    from trainset.plots.us_grid import DEFAULT_SAMPLES

    assert PROPS["plots"]["properties"]["samples"]["default"] == DEFAULT_SAMPLES
    assert PROPS["plots"]["properties"]["past_seasons"]["default"] == DEFAULT_PAST_SEASONS
    # no schema default: a filled-in past_family could not be told from one the user set (and
    # set without past_seasons it is refused); trainset.plots.past.overlay_family supplies it
    assert "default" not in PROPS["plots"]["properties"]["past_family"]
    assert DEFAULT_PAST_FAMILY in PROPS["plots"]["properties"]["past_family"]["description"]
    assert set(PROPS["plots"]["properties"]) == {"samples", "past_seasons", "past_family"}


def test_searches():
    """The search keys and methods the schema's description lists are those search.py accepts."""
    from trainset.train.search import _SEARCH_KEYS, DEFAULT_METHOD, METHODS

    searches = PROPS["searches"]
    listed = re.search(r"\{([^}]*)\}", searches["description"]).group(1).split(", ")
    keys = {item.split()[0]: item.split()[1:] for item in listed}
    assert set(keys) == set(_SEARCH_KEYS) - {"name"}  # the name is the search's key under searches
    assert keys["method"][0].split("|") == list(METHODS) and METHODS[0] == DEFAULT_METHOD
    assert set(searches["additionalProperties"]["required"]) <= set(_SEARCH_KEYS)


LITERAL_DEFAULT = re.compile(r"""\.get\(\s*["'][^"']+["']\s*,\s*(["'\d]|True|False|\[\s*["'\d]|\{\s*["'])""")


@pytest.mark.parametrize("rules", sorted((REPO / "workflow/rules").glob("*.smk")), ids=lambda p: p.name)
def test_rules_repeat_no_literal_default(rules):
    """Rules read a schema-filled value or the code's declaration, never a default of their own."""
    found = [f"{rules.name}:{n}: {line.strip()}" for n, line in enumerate(rules.read_text().splitlines(), 1)
             if LITERAL_DEFAULT.search(line)]
    assert not found, "literal defaults in rules (import the code's declaration): " + "; ".join(found)
