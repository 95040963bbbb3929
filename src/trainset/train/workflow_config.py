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

__all__ = ["job_gpus", "run_config", "search_trials"]


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


def job_gpus(config: Mapping[str, Any], run: str, cfg: Mapping[str, Any] | None = None) -> int:
    """GPUs a job of run ``run`` needs on a cluster (the SLURM plugin's ``gpu`` resource).

    ``cfg`` is the config the job trains or evaluates (a search trial's; default: the run's).
    ``training.device`` decides: ``cuda`` needs one GPU, ``cuda:N`` needs N + 1 (a job sees only
    the GPUs it was given, numbered from 0); ``cpu`` and ``mps`` need none; ``auto`` needs one
    only when the workflow config's ``gpu_runs`` lists the run (its jobs go to GPU nodes), since
    an ``auto`` job on a node without a GPU trains on the CPU and a GPU held for it would idle.

    Raises
    ------
    TrainsetError
        ``gpu_runs`` names a run that does not exist, or a run whose device is ``cpu``/``mps``.
    """
    gpu_runs = check_gpu_runs(config)
    device = run_device(cfg if cfg is not None else run_config(config, run))
    if device.startswith("cuda"):
        index = device.partition(":")[2]
        return int(index) + 1 if index else 1
    return 1 if device == "auto" and run in gpu_runs else 0


def run_device(cfg: Mapping[str, Any]) -> str:
    """A run config's ``training.device``, as validated by :class:`TrainingConfig` (flat layout,
    defaults and refusals included); ``auto`` tuning keys are stood in for, as at start-up."""
    from trainset.train.auto import with_placeholders
    from trainset.train.config import TrainingConfig

    return str(TrainingConfig.from_dict(with_placeholders(cfg)).training.device)


def check_gpu_runs(config: Mapping[str, Any]) -> list[str]:
    """The workflow config's ``gpu_runs``: runs with ``training.device: auto`` whose jobs get a GPU.

    Raises
    ------
    TrainsetError
        An entry is not a run, or names a run whose device can never use a (CUDA) GPU.
    """
    names = list(config.get("gpu_runs") or [])
    runs = config.get("runs") or {}
    for name in names:
        if name not in runs:
            raise TrainsetError(f"gpu_runs: {name!r} is not a run; runs are {sorted(runs)}. "
                                "Fix: list only runs whose training.device is auto (or cuda)")
        device = run_device(run_config(config, name))
        if not (device == "auto" or device.startswith("cuda")):
            raise TrainsetError(f"gpu_runs: run {name!r} has training.device: {device}, which never uses a "
                                "CUDA GPU, so a GPU given to its jobs would sit idle. Fix: remove it from "
                                "gpu_runs, or set its training.device to auto or cuda")
    return names
