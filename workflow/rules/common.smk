# Helpers shared by the rule files (config loading and validation, config slices for params,
# the hash of the library files each stage imports (a param, so an edit reruns the stage), and
# the list of final outputs). Functions live here, rules in the stage files (snakemake --lint).

import glob
import hashlib
import os
import re
import sys
from pathlib import Path

import yaml

from trainset.config_errors import load_yaml
from trainset.plots.past import overlay_family
from trainset.workflow import (
    CANONICAL_FORMAT,
    DEFAULT_JOBS,
    DIFFUSION_STEPS,
    FRAMES_MODEL,
    STORED_COPIES,
    canonical,
    record_lock_owner,
    release_stale_lock,
)

REPO = Path(workflow.basedir)
LIBRARY = REPO / "src" / "trainset"

# STORED_COPIES: every stored copy a dataset's ``formats:`` may list, by name: the formats and
# their variants (``hdf5_presplit``), each with its file-name suffix. trainset.workflow keeps them
# as plain data (tested against trainset.io.base.stored_copies), so parsing the workflow imports
# no format adapter (h5py, zarr, xarray): a no-op rerun pays only Snakemake's start-up.

# Recovery after a kill: the lock of a run whose process is gone is released before Snakemake
# checks it (a live run's lock stays), so the plain command resumes; profiles/default reruns
# the jobs the kill cut off. Each run records its process beside its lock when jobs start.
release_stale_lock()


onstart:
    record_lock_owner()


NAMED_SECTIONS = ("tables", "mixes", "datasets", "runs", "searches")
"""Config sections whose entry names become file and folder names under results/."""


def merge_config(defaults, user, where=""):
    """Merge ``user`` over ``defaults``: dicts recursively; a null under tables/mixes removes the entry.

    An empty mapping over a non-empty one would change nothing (mappings merge key by key), so
    ``families: {}`` on an existing mix is refused rather than silently ignored."""
    merged = dict(defaults)
    for key, value in user.items():
        here = f"{where}{key}"
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            if not value and merged[key]:
                raise ValueError(
                    f"{here}: {{}} in a config overlay changes nothing: overlays merge mappings key by key, so "
                    f"the default entries {sorted(map(str, merged[key]))} would stay. Fix: to replace "
                    f"{here}, set its mix/dataset/run to null and define a new one under another name "
                    "(README: Running from another folder); to keep the defaults, delete the line"
                )
            merged[key] = merge_config(merged[key], value, f"{here}.")
        else:
            merged[key] = value
    return merged


def drop_removed(cfg):
    for section in NAMED_SECTIONS:
        cfg[section] = {k: v for k, v in (cfg.get(section) or {}).items() if v is not None}
    return cfg


def check_names(cfg):
    """Refuse a name that would leave results/ or nest folders (``../x``, ``a/b``) at start-up,
    naming its key; the schema's propertyNames say the same, this says it with the fix."""
    from trainset.errors import TrainsetError
    from trainset.provenance import safe_name

    for section in NAMED_SECTIONS:
        entries = cfg.get(section)
        for name in entries if isinstance(entries, dict) else ():
            try:
                safe_name(name, section)
            except TrainsetError as error:
                raise ValueError(str(error)) from None


def config_sources():
    """The --configfile paths the config came from (the bundled defaults when there are none)."""
    files = [str(f) for f in workflow.config_settings.configfiles]
    return ", ".join(files) or str(REPO / "config" / "config.yaml")


def check_schema(cfg):
    """Validate ``cfg`` against the config schema and fill in the schema's defaults, in place, as
    Snakemake's validate() does; a config that does not fit is refused with one short line per
    problem (key path, value, what is allowed, a did-you-mean for a misspelt key), not validate()'s
    dump of the whole schema.

    One pass, with the schema read once by libyaml: validate() would read it again with a
    pure-Python parser and validate again, ~0.1 s of every run, a no-op rerun included."""
    from trainset.config_errors import fill_and_check
    from trainset.errors import TrainsetError

    try:
        fill_and_check(cfg, REPO / "workflow" / "schemas" / "config.schema.yaml", source=config_sources())
    except TrainsetError as error:
        raise ValueError(str(error)) from None


def check_input_files(cfg):
    """Refuse a configured input file that is not there, naming its key (tables.NAME.path) and the
    folder a relative path is read from; objects of a default storage provider are its to find."""
    from trainset.config_errors import missing_paths

    if workflow.storage_settings.default_storage_provider is not None:
        return
    problems = missing_paths(cfg)
    if problems:
        raise ValueError("\n".join(problems))


def check_plots(cfg):
    """Refuse ``plots.past_family`` without ``plots.past_seasons`` at start-up (it would be ignored)."""
    from trainset.errors import TrainsetError
    from trainset.plots.past import overlay_family

    try:
        overlay_family(cfg["plots"])
    except TrainsetError as error:
        raise ValueError(str(error)) from None


def bundled_defaults(user):
    """config/config.yaml, without its demo tables, mixes, datasets, runs and searches when the
    user's config says ``demo: false`` (so one mix of the user's is a handful of jobs, not the
    demo's hundred); settings (season_axis, tuning, evaluation, plots) stay either way."""
    defaults = load_yaml(REPO / "config" / "config.yaml")
    if user.get("demo") is False:  # the schema's default (true) is filled in only after merging
        for section in NAMED_SECTIONS:
            defaults[section] = {}
    elif not workflow.config_settings.configfiles and Path.cwd().resolve() != REPO.resolve():
        print(
            f"trainset: no --configfile given: building the bundled demo ({REPO / 'config' / 'config.yaml'}) "
            f"into {Path.cwd() / 'results'}",
            file=sys.stderr,
        )
    return defaults


def drop_dependents(cfg, user):
    """Remove the default runs built on a mix or dataset the user set to null, and the default
    searches of a run that is gone (the LR/I-O tuning of a run goes with it).

    Only entries the user's config does not mention go: a run or search of the user's that needs
    a removed entry is still refused by check_runs, naming the key."""
    removed = {name for section in ("mixes", "datasets") for name, v in (user.get(section) or {}).items() if v is None}
    mine = {section: set(user.get(section) or {}) for section in ("runs", "searches")}
    runs = [r for r, spec in cfg["runs"].items() if r not in mine["runs"] and spec.get("dataset") in removed]
    for run in runs:
        del cfg["runs"][run]
    searches = [
        s for s, spec in cfg["searches"].items() if s not in mine["searches"] and spec.get("run") not in cfg["runs"]
    ]
    for search in searches:
        del cfg["searches"][search]
    if runs or searches:
        print(
            f"trainset: also removed, as they need a mix or dataset set to null: runs {runs}, searches {searches}",
            file=sys.stderr,
        )
    return cfg


_user = dict(config)
_merged = drop_dependents(drop_removed(merge_config(bundled_defaults(_user), _user)), _user)
config.clear()
config.update(_merged)
check_names(config)
check_schema(config)
check_input_files(config)
check_plots(config)


def alternatives(names):
    """A regex matching exactly these names (nothing when there are none)."""
    return "|".join(re.escape(n) for n in names) or "(?!x)x"


wildcard_constraints:
    table=r"[A-Za-z0-9][A-Za-z0-9_.\-]*",
    mix=alternatives(config["mixes"]),
    dataset=alternatives(config.get("datasets", {})),
    name=alternatives([*config["mixes"], *config.get("datasets", {})]),
    date=r"\d{4}-\d{2}-\d{2}",
    format=alternatives(sorted(STORED_COPIES, key=len, reverse=True)),
    run=alternatives(config.get("runs", {})),
    search=alternatives(config.get("searches", {})),
    trial=r"t[0-9][0-9][0-9]+",


def library_files(*parts):
    """Source files of trainset modules or subpackages (relative to src/trainset), sorted; a part
    that is neither (misspelt, or moved) is refused by name at parse time."""
    files = {LIBRARY / "__init__.py", LIBRARY / "errors.py", LIBRARY / "provenance.py", LIBRARY / "workflow.py"}
    for part in parts:
        path = LIBRARY / part
        if not path.exists():
            raise ValueError(
                f"library_code({part!r}): no module or package {path}. Fix: name a file or folder under {LIBRARY}"
            )
        files.update(map(Path, glob.glob(str(path / "**" / "*.py"), recursive=True)) if path.is_dir() else [path])
    return sorted(files)


def library_code(*parts):
    """A params value standing for the library code a stage runs: the sha256 of the names and
    bytes of its :func:`library_files`. Editing one of them changes the params of the stage's
    jobs, so Snakemake reruns that stage and everything downstream; a mere ``touch`` changes nothing.

    A param, not inputs: as inputs, ~50 files per job were matched against every rule's outputs
    and checked for every job (4,400 input files in the default workflow, a third of a no-op
    rerun's DAG building); the hash reads ~150 files once per run. Code stays in the checkout
    under a default storage provider (profiles/s3): it is never an object in the bucket."""
    if parts not in _LIBRARY_CODE:
        digest = hashlib.sha256()
        for path in library_files(*parts):
            digest.update(f"{path.relative_to(LIBRARY).as_posix()}\0{_file_sha256(path)}\n".encode())
        _LIBRARY_CODE[parts] = digest.hexdigest()
    return _LIBRARY_CODE[parts]


def _file_sha256(path):
    if path not in _FILE_SHA256:
        _FILE_SHA256[path] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _FILE_SHA256[path]


_LIBRARY_CODE = {}
"""parts -> :func:`library_code`; the code is fixed while Snakemake runs (each rule asks once, as it
is parsed; rules naming the same parts share the hash)."""
_FILE_SHA256 = {}
"""file -> its sha256 (modules shared by several stages are read once)."""

CONVERSION_CODE = ("datasets.py", "collection.py", "splits.py", "io", "domains")
"""The library modules a format writer (write_dataset_job, write_<copy>) runs."""
RUN_CODE = (
    "train",
    "models",
    "scalers",
    "tasks.py",
    "transforms.py",
    "tokens.py",
    "loaders",
    "io",
    "open.py",
    "collection.py",
    "splits.py",
)
"""The library modules the training rules (tune_io, find_lr, train_model, train_trial) run."""
EVALUATION_CODE = (*RUN_CODE, "evaluate", "plots")
"""The library modules evaluate_model runs."""


MEM_MB = {
    "ingest_table": 4000,
    "ingest_domain": 4000,
    "build_frames": 2000,
    "frame_dataset": 4000,
    "write_netcdf": 2000,
    "make_splits": 2000,
    "write_dataset_job": 2000,
    "validate_dataset": 2000,
    "plot_frames": 2000,
    "export_dataset": 500,
    "fit_scalers": 2000,
    "tune_io": 4000,
    "find_lr": 4000,
    "train_model": 4000,
    "train_trial": 4000,
    "gather_search": 1000,
    "evaluate_model": 4000,
    "report_index": 1000,
}
"""Each rule's memory (MB) on a job's first attempt: the one table of it (profiles repeat none)."""

GATHER_MEM_MB = 2000
"""Memory (MB) of each gather rule, ``write_<copy>``: datasets.smk generates one per stored copy
written in parallel jobs, so their entries in :data:`MEM_MB` are generated too."""
MEM_MB.update({f"write_{name}": GATHER_MEM_MB for name, copy in STORED_COPIES.items() if copy.parallel})


def mem_mb(wildcards, attempt, rulename):
    """A job's ``mem_mb``: its rule's :data:`MEM_MB` times the attempt, so a job retried after
    running out of memory (``retries`` in profiles/slurm) gets twice as much."""
    if rulename not in MEM_MB:
        raise ValueError(f"{rulename}: no memory in MEM_MB (a new rule?). Fix: add it in workflow/rules/common.smk")
    return MEM_MB[rulename] * attempt


DATASET_KEYS = ("formats", "format_options", "splits", "scalers")
"""Keys that decide how a dataset is stored and split, not how it is mixed or framed."""


def stage_slice(cfg):
    """A dataset's config without its storage keys: the params of the mixing/framing stages,
    so changing formats or splits reruns only the writers and splits, not the frames.

    Every config slice given to rules as params goes through ``canonical`` (trainset.workflow):
    Snakemake compares params by their repr, so the keys of fixed-key mappings are sorted and a
    reordered YAML reruns nothing; user-named mappings (``families``: the frame order) keep theirs."""
    return {key: value for key, value in cfg.items() if key not in DATASET_KEYS}


def mix_config(wildcards):
    """The mixing config of one mix (a tracked param: editing it reruns only that mix)."""
    return canonical(stage_slice(config["mixes"][wildcards.mix]))


def named_config(name):
    """The config of the flu mix or domain dataset ``name`` (mixes and datasets share one name
    space; the schema defaults both sections to ``{}``)."""
    return config["mixes"][name] if name in config["mixes"] else config["datasets"][name]


def dataset_config(wildcards):
    """The config of a flu mix or a domain dataset, by name (a tracked param)."""
    return named_config(wildcards.name)


def splits_config(wildcards):
    """The ``splits`` section of one dataset."""
    return canonical(dataset_config(wildcards).get("splits", {}))


def mix_splits_config(wildcards):
    """The ``splits`` section of one mix: fill sources are drawn inside the splits it assigns."""
    return canonical(config["mixes"][wildcards.mix].get("splits", {}))


FORMAT_SUFFIX = {name: copy.suffix for name, copy in STORED_COPIES.items()}


def dataset_file(name, fmt):
    return f"results/datasets/{name}/TS_{name}{FORMAT_SUFFIX[fmt]}"


def stored_formats(cfg):
    """The stored copies of a dataset's config ``cfg``: the canonical NetCDF first, then its ``formats:``."""
    return list(dict.fromkeys([CANONICAL_FORMAT, *cfg.get("formats", [CANONICAL_FORMAT])]))


def validated_formats(wildcards):
    """A params function: the copies a dataset's validation job checks, in the order of its inputs."""
    return stored_formats(named_config(wildcards.name))


def validation_runtime(wildcards):
    """A resources function: 10 minutes per stored copy a dataset's validation job checks."""
    return 10 * len(validated_formats(wildcards))


def validated_datasets(wildcards):
    """An input function: every stored copy of a dataset, checked by its one validation job."""
    return [dataset_file(wildcards.name, fmt) for fmt in validated_formats(wildcards)]


def conversion_inputs(wildcards):
    """What a format writer reads: the canonical NetCDF and the splits."""
    return {
        "source": dataset_file(wildcards.name, CANONICAL_FORMAT),
        "splits": f"results/datasets/{wildcards.name}/splits.json",
    }


def options_for(fmt):
    """A params function giving the user's writer options of stored copy ``fmt`` for a dataset:
    its format's ``format_options``. The options a variant fixes (``hdf5_presplit``: ``layout``)
    are laid over them by the library (trainset.io.base.StoredCopy.writer_options); the rules
    still track them through the copy's name (a wildcard or the gather rule's ``format`` param)."""
    copy = STORED_COPIES[fmt]

    def options(wildcards):
        return canonical(dict(dataset_config(wildcards).get("format_options", {}).get(copy.format, {})))

    return options


def canonical_options(wildcards):
    """A params function: ``format_options.netcdf`` of a mix or domain dataset, the options of
    the rule that writes its canonical NetCDF copy (write_netcdf, frame_dataset)."""
    cfg = named_config(getattr(wildcards, "mix", None) or wildcards.dataset)
    return canonical(dict((cfg.get("format_options") or {}).get(CANONICAL_FORMAT) or {}))


def domain_config(wildcards):
    """The generation/framing config of one domain dataset (storage keys excluded)."""
    return canonical(stage_slice(config["datasets"][wildcards.dataset]))


def domain_files(wildcards):
    """The user's own tables of a domain dataset (none for demo data)."""
    return list(domain_config(wildcards).get("files", {}).values())


def canonical_dataset(wildcards):
    """The canonical NetCDF copy of a dataset, which splits and conversions read."""
    return dataset_file(wildcards.name, CANONICAL_FORMAT)


def table_config(wildcards):
    return canonical(config["tables"][wildcards.table])


def table_inputs(wildcards):
    """The raw file of a table, when it is one (demo tables have none)."""
    cfg = config["tables"][wildcards.table]
    return [cfg["path"]] if "path" in cfg else []


def mix_table_files(wildcards):
    """The validated table (and its summary) a mix is built from."""
    table = config["mixes"][wildcards.mix]["table"]
    if table not in config["tables"]:
        raise ValueError(
            f"mixes.{wildcards.mix}.table: no table named {table!r}; tables are {sorted(config['tables'])}"
        )
    files = {"table": f"results/tables/{table}.parquet", "table_summary": f"results/tables/{table}.summary.json"}
    scaling = config["mixes"][wildcards.mix].get("scaling_distribution") or {}
    if "path" in scaling:
        files["scaling_targets"] = scaling["path"]  # an input: editing the file reruns the mix
    return files


def export_date():
    """Today's date (or SOURCE_DATE_EPOCH's) for the dated export names."""
    from trainset.provenance import creation_date

    return creation_date()


def run_config(wildcards):
    """The training config of one run, as a plain dict (a tracked param); an omitted
    training.seed is the workflow's seed."""
    from trainset.train import workflow_config

    return canonical(workflow_config.run_config(config, wildcards.run))


def auto_tuners(run):
    """Which tuner outputs (lr, io) a run's ``auto`` settings need (trainset.train.auto decides)."""
    from trainset.train.auto import tuners_needed

    return tuners_needed(config["runs"][run])


def tuning_inputs(wildcards):
    """The LR finder / I/O tuner results a run reads (only for its ``auto`` settings)."""
    return {tool: f"results/tuning/{wildcards.run}/{tool}.json" for tool in auto_tuners(wildcards.run)}


def lr_finder_inputs(wildcards):
    """The LR finder's inputs: the run's data and scalers, and io.json if the batch size is auto."""
    inputs = run_inputs(wildcards)
    if "io" in auto_tuners(wildcards.run):
        inputs["io"] = f"results/tuning/{wildcards.run}/io.json"
    return inputs


def search_trials(search):
    """Trial name -> run config of one search (drawn from the search's seed, stable), drawn once
    per search: input and params functions ask for it once per job."""
    if search not in _TRIALS:
        from trainset.train import workflow_config

        _TRIALS[search] = workflow_config.search_trials(config, search)
    return _TRIALS[search]


_TRIALS = {}
"""search -> its trials (:func:`search_trials`); the config is fixed once the workflow is parsed."""


def trial_config(wildcards):
    return canonical(search_trials(wildcards.search)[wildcards.trial])


def trial_inputs(wildcards):
    """A trial trains on its base run's dataset, splits and scalers."""
    return run_inputs(Wildcards(run=config["searches"][wildcards.search]["run"]))


def search_results(wildcards):
    trials = list(search_trials(wildcards.search))
    folder = f"results/search/{wildcards.search}"
    return {
        "histories": [f"{folder}/{t}/history.json" for t in trials],
        "configs": [f"{folder}/{t}/config.json" for t in trials],
    }


def evaluation_inputs(wildcards):
    """A run's best checkpoint, history and config, and the data and scalers it was trained on."""
    folder = f"results/models/{wildcards.run}"
    inputs = run_inputs(wildcards)
    inputs.update(best=f"{folder}/best.pt", history=f"{folder}/history.json", config=f"{folder}/config.json")
    return inputs


def draws_frames(run):
    """Whether a run's evaluation draws frames: its dataset's task is generative. Flu mixes hold
    frames, the one generative task; domain datasets hold sequences, flights or macro worlds."""
    return config["runs"][run]["dataset"] in config["mixes"]


# Scheduling. Snakemake cannot know how long a job takes, so with cores short it may leave the
# longest chain (a run's data, then its training and evaluation) for last and finish on one core.
# Priorities start that chain first: jobs a run waits on outrank leaves no run waits on
# (validation, plots, copies no run reads, search tables), and the data of the heaviest run
# outranks the rest. Priorities order ready jobs only; what runs, and its bytes, are unchanged.
def run_weight(run):
    """A run's rough share of the work: a run that draws frames (a diffusion model, trained
    through its denoising steps and then sampled for its report) takes several times as long
    as the others."""
    return 3 if draws_frames(run) else 1


def run_format(run):
    """The stored copy a run trains and is evaluated on."""
    from trainset.train.config import TrainingConfig

    return config["runs"][run].get("format", TrainingConfig.format)


def data_priority(name, fmt=None):
    """Priority of a job building dataset ``name`` (copy ``fmt``; None: any copy): above every
    run's own jobs when a run reads it, by the heaviest such run; 0 when no run does."""
    weights = [
        run_weight(run)
        for run, cfg in config.get("runs", {}).items()
        if cfg["dataset"] == name and fmt in (None, run_format(run))
    ]
    return 2 + max(weights) if weights else 0


def table_priority(table):
    """Priority of ingesting a table: that of the most urgent mix built from it."""
    mixes = [mix for mix, cfg in config.get("mixes", {}).items() if cfg["table"] == table]
    return max((data_priority(mix) for mix in mixes), default=0)


def run_priority(run):
    """Priority of a run's tuning, training and evaluation jobs (below its data's)."""
    return 1 + run_weight(run)


def copy_priority(copy_name):
    """A priority function for the jobs writing stored copy ``copy_name`` of a dataset."""
    return lambda wildcards: data_priority(wildcards.name, copy_name)


def sampling_setting(key):
    """A params function: ``evaluation.<key>`` for a run that draws frames, None for the others,
    so changing it reruns only the generative runs' evaluations."""
    return lambda wildcards: config["evaluation"][key] if draws_frames(wildcards.run) else None


def diffusion_steps(run):
    """The diffusion steps (``model.params.steps``) of a run that draws frames with the frames
    task's model (named, or ``auto``); None for any other run."""
    from trainset.train.auto import with_placeholders
    from trainset.train.config import TrainingConfig

    if not draws_frames(run):
        return None
    model = TrainingConfig.from_dict(with_placeholders({"name": run, **config["runs"][run]})).model
    if model.name not in ("auto", FRAMES_MODEL):
        return None
    return model.params.get("steps", DIFFUSION_STEPS)


def check_sample_steps():
    """Refuse ``evaluation.sample_steps`` above a diffusion run's steps at start-up: its
    evaluate_model job would fail only after the run was trained."""
    wanted = config["evaluation"]["sample_steps"]
    for run in config.get("runs", {}):
        steps = diffusion_steps(run)
        if isinstance(steps, int) and steps < wanted:
            raise ValueError(
                f"runs.{run}.model.params.steps: {steps} diffusion steps, fewer than evaluation.sample_steps "
                f"({wanted}), the steps its frames are drawn with. Fix: set evaluation.sample_steps to at most "
                f"{steps}, or raise runs.{run}.model.params.steps"
            )


def search_name(wildcards):
    return wildcards.search


def trial_names(wildcards):
    return list(search_trials(wildcards.search))


def search_space(wildcards):
    """The searched (dotted) keys of a search."""
    return list(config["searches"][wildcards.search]["space"])


class Wildcards(dict):
    """A stand-in wildcards object for reusing input functions."""

    def __getattr__(self, name):
        return self[name]


def run_inputs(wildcards):
    """The stored dataset (in the run's format), its splits and its scalers."""
    from trainset.train.config import TrainingConfig

    cfg = config["runs"][wildcards.run]
    name = cfg["dataset"]
    return {
        "dataset": dataset_file(name, cfg.get("format", TrainingConfig.format)),
        "splits": f"results/datasets/{name}/splits.json",
        "scalers": f"results/scalers/{name}.json",
    }


def run_threads(wildcards):
    """Torch threads of a run: fixed by its config so results do not depend on --cores."""
    from trainset.train.config import TrainingSection

    return int(config["runs"][wildcards.run].get("training", {}).get("threads", TrainingSection.threads))


def run_gpus(wildcards, rulename):
    """A job's ``gpu`` resource (the SLURM plugin's ``--gpus``): GPUs it will use, from its run's
    ``training.device`` (``cuda``: 1; ``auto``: 1 only for runs listed in ``gpu_runs``; else 0).
    Used by every rule that trains or evaluates on a run's device; worked out once per run or
    trial (validating a run config takes milliseconds, and five rules ask for each run)."""
    from trainset.errors import TrainsetError
    from trainset.train import workflow_config

    trial = rulename == "train_trial"
    key = (wildcards.search, wildcards.trial) if trial else wildcards.run
    if key not in _GPUS:
        try:
            if trial:
                run = config["searches"][wildcards.search]["run"]
                _GPUS[key] = workflow_config.job_gpus(config, run, trial_config(wildcards))
            else:
                _GPUS[key] = workflow_config.job_gpus(config, wildcards.run)
        except TrainsetError as error:
            raise ValueError(str(error)) from None
    return _GPUS[key]


_GPUS = {}
"""run, or (search, trial) -> its jobs' GPUs (:func:`run_gpus`); the config is fixed once parsed."""


def scaler_spec(wildcards):
    """A dataset's ``scalers`` config (None: the task's defaults)."""
    return canonical(named_config(wildcards.name).get("scalers"), "scalers")  # variable order kept


def check_mixes():
    """Refuse a mix whose arithmetic or policies are wrong at start-up, before any job runs."""
    from trainset.errors import TrainsetError
    from trainset.mixing.config import check_mix

    for name, cfg in config["mixes"].items():
        try:
            check_mix(name, cfg)
        except TrainsetError as error:
            raise ValueError(str(error)) from None


def check_runs():
    """Refuse a bad run config at start-up, naming the key (as the schema does for the rest)."""
    if not config.get("runs"):
        return
    from trainset.errors import TrainsetError
    from trainset.train import workflow_config
    from trainset.train.auto import with_placeholders
    from trainset.train.config import TrainingConfig

    known = {*config["mixes"], *config.get("datasets", {})}
    for name, cfg in config["runs"].items():
        if cfg.get("dataset") not in known:
            raise ValueError(
                f"runs.{name}.dataset: {cfg.get('dataset')!r} is not a mix or dataset; use one of {sorted(known)}"
            )
        TrainingConfig.from_dict(with_placeholders({"name": name, **cfg}))
        if isinstance(cfg.get("data"), dict) and cfg["data"].get("scaler") is not None:
            raise ValueError(
                f"runs.{name}.data.scaler: workflow runs are scaled by their dataset's scalers: "
                "config (fitted by the fit_scalers rule); data.scaler is for the CLI without --scalers. "
                "Fix: remove it and set scalers: in the dataset's config"
            )
    try:
        workflow_config.check_gpu_runs(config)
    except TrainsetError as error:
        raise ValueError(str(error)) from None
    for search, spec in config.get("searches", {}).items():
        if spec.get("run") not in config["runs"]:
            raise ValueError(
                f"searches.{search}.run: {spec.get('run')!r} is not a run; use one of {sorted(config['runs'])}"
            )
        search_trials(search)
    check_sample_steps()


def final_outputs():
    """Every dataset, summary and plot the config asks for."""
    outputs = []
    check_mixes()
    for mix, cfg in config["mixes"].items():
        outputs.append(f"results/frames/{mix}.summary.json")
        outputs.append(f"results/plots/{mix}_us_grid.png")
        outputs += dataset_outputs(mix, cfg)
    for name, cfg in config.get("datasets", {}).items():
        outputs += dataset_outputs(name, cfg)
    check_runs()
    for run in config.get("runs", {}):
        outputs += [f"results/models/{run}/final.pt", f"results/reports/{run}/report.html"]
    if config.get("runs"):
        outputs.append("results/reports/index.html")
    for search in config.get("searches", {}):
        outputs += [f"results/search/{search}/results.csv", f"results/search/{search}/summary.json"]
    return outputs


def dataset_outputs(name, cfg):
    """Splits, every format and the validation reports (``validation/<format>.json``) of one dataset."""
    outputs = [f"results/datasets/{name}/splits.json", f"results/datasets/{name}/validation"]
    return outputs + [dataset_file(name, fmt) for fmt in stored_formats(cfg)]


# Parallel writers (datasets.smk): jobs per stored copy, their options and folders


def format_jobs(fmt):
    """A params function: how many jobs write ``fmt`` (``format_options.<fmt>.jobs``, default
    :data:`trainset.io.base.DEFAULT_JOBS`)."""
    return lambda wildcards: int(options_for(fmt)(wildcards).get("jobs", DEFAULT_JOBS))


def writer_options(fmt):
    """A params function: the writer's options for ``fmt`` (all but ``jobs``, which only splits the work)."""
    return lambda wildcards: {k: v for k, v in options_for(fmt)(wildcards).items() if k != "jobs"}


def job_options(wildcards):
    """The params function of write_dataset_job: the writer options of its ``parallel_format``."""
    return writer_options(wildcards.parallel_format)(wildcards)


def job_count(wildcards):
    """The params function of write_dataset_job: how many jobs write its ``parallel_format``."""
    return format_jobs(wildcards.parallel_format)(wildcards)


def gathered_output(copy):
    """The dataset written by a gather rule, a folder (``directory()``) or one file."""
    path = f"results/datasets/{{name}}/TS_{{name}}{copy.suffix}"
    return directory(path) if copy.folder else path


def job_folders(fmt):
    """An input function: the folders of every job writing ``fmt`` for a dataset; none for one
    job, which the gather rule runs itself (a job of its own would only add a process start)."""

    def folders(wildcards):
        jobs = format_jobs(fmt)(wildcards)
        return [f"results/datasets/{wildcards.name}/jobs/{fmt}/{job}" for job in range(jobs)] if jobs > 1 else []

    return folders


def gather_runtime(fmt):
    """A resources function: a gather rule's minutes, twice as many when it writes the one job too."""
    return lambda wildcards: 30 if format_jobs(fmt)(wildcards) > 1 else 60


def past_table(wildcards):
    """The mix's validated table, ground truth of the past-season overlay (none without one)."""
    return {"table": mix_table_files(wildcards)["table"]} if config["plots"]["past_seasons"] else {}
