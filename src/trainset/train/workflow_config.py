"""The run configs the workflow trains, from its config dict (what ``common.smk`` hands to rules).

``workflow/rules/common.smk`` calls these two functions and nothing else to build a run's or a
search trial's config, so what a rule trains is testable without Snakemake: the workflow's
``seed:`` is the default ``training.seed`` of every run and trial (:func:`with_master_seed`),
and a run is named after its key under ``runs:``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainset.errors import TrainsetError
from trainset.train.config import with_master_seed

__all__ = ["run_config", "search_trials"]


def run_config(config: Mapping[str, Any], run: str) -> dict[str, Any]:
    """The config of run ``run`` as a plain dict (a tracked param): its entry under ``runs:``,
    named ``run``, with the workflow's ``seed`` as its ``training.seed`` when it states none."""
    return with_master_seed({"name": run, **config["runs"][run]}, config["seed"])


def search_trials(config: Mapping[str, Any], search: str) -> dict[str, dict[str, Any]]:
    """Trial name -> run config of search ``search`` (drawn from the search's seed, stable); the
    base run gets the workflow's ``seed`` as its default ``training.seed``, as :func:`run_config`.

    Raises
    ------
    TrainsetError
        The base run has an ``auto`` key the search does not set (trials cannot share a tuner).
    """
    from trainset.train.auto import auto_keys, with_placeholders
    from trainset.train.search import trial_configs

    spec = config["searches"][search]
    base = config["runs"][spec["run"]]
    for key in auto_keys(base):
        if key not in spec.get("space", {}):
            raise TrainsetError(f"searches.{search}: run {spec['run']!r} has {key}: auto; "
                                f"a search must set it (add {key} to its space)")
    base = with_placeholders(base)  # replaced by every trial's drawn value
    base.setdefault("training", {})
    base = with_master_seed(base, config["seed"])
    return trial_configs(base, {"name": search, **spec}, config["seed"])
