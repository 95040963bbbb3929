"""Which jobs ask SLURM for a GPU: exactly those that will use one (no cluster needed here).

Every rule that trains or evaluates on a run's device (tune_io, find_lr, train_model,
train_trial, evaluate_model) has the resource ``gpu=run_gpus`` (workflow/rules/common.smk),
which the SLURM plugin turns into ``sbatch --gpus=N``. test_slurm.py checks the submitted jobs
on a real SLURM; here the values themselves, from the workflow as Snakemake loads it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trainset.errors import TrainsetError
from trainset.train.workflow_config import job_gpus

REPO = Path(__file__).resolve().parents[2]
DEVICE_RULES = ("tune_io", "find_lr", "train_model", "evaluate_model")
RUN = {"dataset": "TINY", "model": {"name": "diffusion"}, "training": {"epochs": 1}}


def workflow_config(devices: dict[str, str], gpu_runs: list[str] = ()) -> dict:
    """A workflow config whose runs are named after their ``training.device``."""
    runs = {name: {**RUN, "training": {"epochs": 1, "device": device}} for name, device in devices.items()}
    return {"seed": 3, "runs": runs, "gpu_runs": list(gpu_runs)}


@pytest.mark.parametrize(("device", "listed", "gpus"), [
    ("cpu", False, 0), ("mps", False, 0), ("auto", False, 0),  # auto on a CPU node trains on the CPU
    ("auto", True, 1), ("cuda", False, 1), ("cuda", True, 1),
    ("cuda:1", False, 2),  # a job sees only its own GPUs, numbered from 0: cuda:1 needs two
])
def test_a_job_asks_for_the_gpus_its_device_uses(device, listed, gpus):
    config = workflow_config({"r": device}, ["r"] if listed else [])
    assert job_gpus(config, "r") == gpus


def test_the_default_device_auto_asks_for_none_unless_listed():
    config = {"seed": 3, "runs": {"r": RUN}, "gpu_runs": []}
    assert job_gpus(config, "r") == 0
    assert job_gpus({**config, "gpu_runs": ["r"]}, "r") == 1


def test_a_search_trial_uses_its_own_config():
    config = workflow_config({"base": "auto"})
    trial = {**RUN, "name": "s_t000", "training": {"epochs": 1, "device": "cuda"}}
    assert job_gpus(config, "base", trial) == 1
    assert job_gpus(config, "base") == 0


@pytest.mark.parametrize(("gpu_runs", "message"), [
    (["nope"], "gpu_runs: 'nope' is not a run"),
    (["cpu_run"], "gpu_runs: run 'cpu_run' has training.device: cpu"),
    (["mps_run"], "gpu_runs: run 'mps_run' has training.device: mps"),
])
def test_gpu_runs_naming_a_run_that_cannot_use_a_gpu_is_refused(gpu_runs, message):
    config = workflow_config({"cpu_run": "cpu", "mps_run": "mps", "auto_run": "auto"}, gpu_runs)
    with pytest.raises(TrainsetError, match="Fix:") as error:
        job_gpus(config, "auto_run")
    assert message in str(error.value)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """The workflow as Snakemake loads it, with runs on every device and a search of a cuda run."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    defaults = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    overlay = {section: {name: None for name in defaults.get(section) or {}} for section in ("runs", "searches")}
    base = next(name for name in defaults["mixes"])
    for name, device in {"on_cpu": "cpu", "on_cuda": "cuda", "on_cuda1": "cuda:1", "auto_cpu": "auto",
                         "auto_gpu": "auto"}.items():
        overlay["runs"][name] = {"dataset": base, "model": {"name": "diffusion"},
                                 "training": {"epochs": 1, "device": device, "lr": "auto"}}
    overlay["gpu_runs"] = ["auto_gpu"]
    overlay["searches"]["s_cuda"] = {"run": "on_cuda", "method": "grid", "space": {"training.lr": {"choice": [0.01]}}}
    path = tmp_path_factory.mktemp("gpu") / "overlay.yaml"
    path.write_text(yaml.safe_dump(overlay))
    with SnakemakeApi(OutputSettings()) as api:
        workflow = api.workflow(resource_settings=ResourceSettings(cores=1), snakefile=REPO / "Snakefile",
                                workdir=path.parent, config_settings=ConfigSettings(configfiles=[path]))._workflow
        yield workflow


def gpu_of(workflow, rulename: str, **wildcards) -> int:
    rule = workflow.get_rule(rulename)
    names = workflow.globals["Wildcards"](wildcards)  # common.smk's stand-in: attribute access
    return rule.resources["gpu"].evaluate(names, attempt=1, rulename=rulename).value


@pytest.mark.parametrize("rulename", DEVICE_RULES)
def test_every_rule_using_a_runs_device_asks_for_its_gpus(loaded, rulename):
    expected = {"on_cpu": 0, "on_cuda": 1, "on_cuda1": 2, "auto_cpu": 0, "auto_gpu": 1}
    assert {run: gpu_of(loaded, rulename, run=run) for run in expected} == expected


def test_search_trials_of_a_cuda_run_ask_for_a_gpu(loaded):
    trials = list(loaded.globals["search_trials"]("s_cuda"))
    assert trials and all(gpu_of(loaded, "train_trial", search="s_cuda", trial=t) == 1 for t in trials)


def test_rules_not_using_a_device_ask_for_no_gpu(loaded):
    users = {*DEVICE_RULES, "train_trial"}
    others = [rule.name for rule in loaded.rules if not rule.norun and rule.name not in users]
    assert others and not [name for name in others if "gpu" in loaded.get_rule(name).resources]
