"""``trainset``: the library's stages without Snakemake (``python -m trainset`` is the same).

Subcommands, in data-flow order
-------------------------------
demo
    Write a bundled demo table (e.g. the ~2.6M-row flu table) to CSV or Parquet.
ingest
    Validate a raw table and write the canonical Parquet table and its summary.
run
    Run the workflow: ``snakemake`` with the checkout's Snakefile, after checking that every
    ``--configfile`` exists and parses (one line naming the file, line and column otherwise).
check-config
    Check a workflow config overlay (YAML syntax, schema) the way the workflow will, one line per
    problem with its key path and a "did you mean" for a misspelt key.
validate
    Check a stored dataset (NetCDF, HDF5, Zarr or WebDataset) against its task type and print
    every problem with its fix.
split
    Write ``splits.json`` for a stored dataset (random, group or time splits, seeded).
fit-scalers
    Fit the scalers of a stored dataset on its training split and write their JSON.
convert
    Write a stored dataset in another format (NetCDF, HDF5, HDF5 pre-split, Zarr, WebDataset).
train
    Train a model from a YAML run config (the same trainer the ``train_model`` rule runs).
find-lr
    Run the learning-rate range test of a run config; write the result JSON and ``lr.png``.
evaluate
    Evaluate a trained run on a split: ``metrics.json`` and ``report.html``.
predict
    Apply a trained run (checkpoint and scalers) to a new stored dataset; write predictions in
    data units as NetCDF (trainset.evaluate.apply).
convert-legacy-wds
    Convert legacy Glideator shards (``features.pth``/``targets.pth``/``date.pth`` members, seed
    002) into a trainset WebDataset, decoding them with ``torch.load(weights_only=True)`` only.
import-macro-zarr
    Import a seed-003 Zarr store (a folder per world with ``theta``/``irfs``, ``splits.json``,
    a manifest) as a trainset Zarr store, refusing what it cannot map with the reason.

Each prints one line on success. Bad input prints one message naming the file, the field and
the fix, exits 1, and leaves no output file behind. ``-v``/``-q`` (more or less logging) go
before or after the subcommand; ``train``, ``find-lr``, ``evaluate`` and ``predict`` log their
progress (INFO) unless ``-q`` is given.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any

from trainset.errors import TrainsetError


def _demo(args: argparse.Namespace) -> None:
    from trainset.demo.flu import make_flu_table
    from trainset.provenance import atomic_path

    table = make_flu_table(args.size, seed=args.seed)
    with atomic_path(args.output) as tmp:
        if Path(args.output).suffix == ".csv":
            table.to_csv(tmp, index=False)
        else:
            table.to_parquet(tmp, index=False)
    print(f"wrote {args.output}: {len(table)} rows of the {args.size} flu demo table (seed {args.seed})")


def _ingest(args: argparse.Namespace) -> None:
    from trainset.table.ingest import ingest_table

    output = Path(args.output)
    summary = args.summary or output.with_suffix(".summary.json")
    table_cfg = {"path": args.input, "drop_unknown_places": args.drop_unknown_places,
                 "pad_location_codes": args.pad_location_codes}
    table_cfg |= {key: value for key, value in (("sep", args.sep), ("date_format", args.date_format)) if value}
    ingest_table(table_cfg, {}, args.seed, output, summary, name=Path(args.input).stem)
    print(f"wrote {output} and {summary}: {args.input} validated")


def _validate(args: argparse.Namespace) -> None:
    from trainset.validate import validate_dataset

    report = validate_dataset(args.path, task=args.task, format=args.format, vocab_size=args.vocab_size,
                              num_classes=args.num_classes)
    if not report["valid"]:
        problems = "\n".join(f"  - {p}" for p in report["problems"])
        raise TrainsetError(f"{args.path}: {len(report['problems'])} problem(s) for task {report['task']}:\n{problems}")
    print(f"OK: {args.path} is a valid {report['task']} dataset ({report['format']}, {report['samples']} samples)")


def _config_relative(dataset: str | None, config: str) -> str | None:
    """A relative ``dataset``/``data.data_path`` from the YAML's folder (as seed 001's users keep the
    two together), else from the working directory; two different files are refused, never chosen."""
    if not dataset or Path(dataset).is_absolute():
        return dataset
    found = [p for p in (Path(config).parent / dataset, Path(dataset)) if p.exists()]
    if len(found) == 2 and found[0].resolve() != found[1].resolve():
        raise TrainsetError(f"{config}: dataset {dataset!r} names both {found[0]} (beside the config) and "
                            f"{found[1].resolve()} (in the working directory). Fix: give an absolute path")
    return str(found[0]) if found else dataset


def _train(args: argparse.Namespace) -> None:
    from trainset.provenance import safe_name
    from trainset.train.config import TrainingConfig
    from trainset.train.run import train_run

    cfg = TrainingConfig.from_yaml(args.config)
    if not _names_itself(args.config):  # seed YAMLs have no name: two of them must not share a folder
        cfg = dataclasses.replace(cfg, name=Path(args.config).stem)
    dataset = args.dataset or _config_relative(cfg.dataset, args.config)
    if not dataset or not Path(dataset).exists():
        raise TrainsetError(f"{args.config}: dataset {dataset!r} is not a stored dataset. "
                            "Fix: set dataset: to a .nc/.h5/.zarr/-wds path, or pass --dataset")
    folder = Path(args.out or Path("results") / "models" / safe_name(cfg.name, f"{args.config}: name"))
    train_run(cfg, dataset, folder, args.scalers, threads=args.threads)
    print(f"trained {cfg.name}: checkpoints and history in {folder}")


def _names_itself(config: str) -> bool:
    """Whether the YAML run config gives its own ``name`` (else the run is named after the file)."""
    import yaml

    with open(config, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    return isinstance(raw, dict) and "name" in raw


def _convert_legacy_wds(args: argparse.Namespace) -> None:
    from trainset.io.wds.legacy import convert_legacy_wds

    thresholds = None
    if args.thresholds:
        try:
            thresholds = [float(t) for t in args.thresholds.split(",")]
        except ValueError:
            raise TrainsetError(f"--thresholds {args.thresholds!r}: not comma-separated numbers. "
                                "Fix: e.g. --thresholds 0,10,20") from None
    options = {k: v for k, v in (("samples_per_shard", args.samples_per_shard),
                                 ("samples_per_member", args.samples_per_member)) if v is not None}  # 0: the writer refuses it
    summary = convert_legacy_wds(args.src, args.dst, site_column=args.site_column, skip_unknown=args.skip_unknown,
                                 thresholds=thresholds, overwrite=args.overwrite, **options)
    print(f"converted {args.src} -> {args.dst}: {summary['samples']} samples, splits {summary['splits'] or 'none'}, "
          f"{summary['features']} features, sites {summary['sites']}")


def _import_macro_zarr(args: argparse.Namespace) -> None:
    from trainset.io.zarr_.legacy import import_macro_zarr

    summary = import_macro_zarr(args.src, args.dst, overwrite=args.overwrite, chunk=args.chunk,
                                compression=args.compression)
    print(f"imported {args.src} -> {args.dst}: worlds {summary['worlds']}, splits {summary['splits'] or 'none'}")


def _check_config(args: argparse.Namespace) -> None:
    from trainset.config_errors import check_config, load_yaml, merge_overlays

    defaults = Path(args.defaults)
    schema = Path(args.schema)
    for path in (defaults, schema):
        if not path.exists():
            raise TrainsetError(f"{path}: not found. Fix: run from the trainset checkout, or pass --defaults and "
                                "--schema (config/config.yaml and workflow/schemas/config.schema.yaml there)")
    overlays = [load_yaml(path) or {} for path in args.configfile]
    config = merge_overlays(load_yaml(defaults), overlays, args.configfile)
    check_config(config, schema, source=", ".join(args.configfile))
    print(f"OK: {', '.join(args.configfile)} fits the config schema ({len(config.get('mixes') or {})} mixes, "
          f"{len(config.get('datasets') or {})} datasets, {len(config.get('runs') or {})} runs)")


def _split(args: argparse.Namespace) -> None:
    from trainset.datasets import split_dataset

    splits_cfg = {"method": args.method, "by": args.by, "fractions": _fractions(args.fractions)}
    output = args.output or Path(args.dataset).parent / "splits.json"
    counts = split_dataset(args.dataset, output, splits_cfg, args.seed)
    sizes = {name: len(idx) for name, idx in counts.items()} if isinstance(counts, dict) else counts
    print(f"wrote {output}: {args.method} splits of {args.dataset} {sizes if sizes else ''}".rstrip())


def _fractions(text: str) -> dict[str, float]:
    """``train=0.8,val=0.1,test=0.1`` as a dict, in the order given (time blocks follow it)."""
    fractions = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        try:
            fractions[name.strip()] = float(value)
        except ValueError:
            raise TrainsetError(f"--fractions {text!r}: {item!r} is not NAME=NUMBER. "
                                "Fix: e.g. --fractions train=0.8,val=0.1,test=0.1") from None
    return fractions


def _fit_scalers(args: argparse.Namespace) -> None:
    from trainset.scalers import fit_dataset_scalers

    spec = _key_values(args.scaler, "--scaler") or None
    scalers = fit_dataset_scalers(args.dataset, args.output, spec, split=args.split, seed=args.seed)
    print(f"wrote {args.output}: scalers {', '.join(sorted(scalers.specs))} fitted on split {args.split!r} "
          f"of {args.dataset}")


def _key_values(items: list[str] | None, option: str) -> dict:
    """``KEY=VALUE`` options as a dict; values are read as YAML (``8`` is an int, ``true`` a bool)."""
    import yaml

    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise TrainsetError(f"{option} {item!r}: not KEY=VALUE. Fix: e.g. {option} chunk=64")
        out[key] = yaml.safe_load(value)
    return out


def _convert(args: argparse.Namespace) -> None:
    from trainset.datasets import convert_dataset

    fmt = args.to or _format_of(args.output)
    if Path(args.output).exists() and not args.overwrite:
        raise TrainsetError(f"{args.output}: exists. Fix: pass --overwrite, or choose another path")
    splits = args.splits
    if splits is None and (Path(args.source).parent / "splits.json").exists():
        splits = str(Path(args.source).parent / "splits.json")
    convert_dataset(args.source, splits, fmt, args.output, _key_values(args.option, "--option"))
    print(f"converted {args.source} -> {args.output} ({fmt}{', splits ' + splits if splits else ''})")


def _format_of(path: str) -> str:
    """The stored copy a path's suffix names (``.presplit.h5`` before ``.h5``)."""
    from trainset.io.base import stored_copies

    copies = sorted(stored_copies().items(), key=lambda item: len(item[1].suffix), reverse=True)
    for name, copy in copies:
        if str(path).rstrip("/").endswith(copy.suffix):
            return name
    suffixes = ", ".join(f"{c.suffix} ({n})" for n, c in copies)
    raise TrainsetError(f"{path}: no format has this suffix. Fix: end it with one of {suffixes}, or pass --to")


def _find_lr(args: argparse.Namespace) -> None:
    from trainset.train.lr_finder import find_lr, search_config, write_lr_result

    cfg_dict, dataset = _run_config(args.config, args.dataset)
    cfg = search_config(cfg_dict)
    options = {k: v for k, v in (("min_lr", args.min_lr), ("max_lr", args.max_lr), ("steps", args.steps))
               if v is not None}
    result = find_lr(cfg, dataset, args.scalers, threads=args.threads, **options)
    write_lr_result(result, args.output)
    print(f"suggested lr {result['suggested_lr']:.3g} for {cfg.name}: {args.output} and "
          f"{Path(args.output).with_name('lr.png')}")


def _run_config(config: str, dataset: str | None) -> tuple[dict, str]:
    """A YAML run config as a dict named like ``trainset train`` names it, and its dataset path."""
    from trainset.config_errors import load_yaml

    raw = load_yaml(config)
    if not isinstance(raw, dict):
        raise TrainsetError(f"{config}: not a mapping of run settings. Fix: see README 'Training'")
    raw = {**raw, "name": raw.get("name") or Path(config).stem}
    dataset = dataset or _config_relative(raw.get("dataset"), config)
    if not dataset or not Path(dataset).exists():
        raise TrainsetError(f"{config}: dataset {dataset!r} is not a stored dataset. "
                            "Fix: set dataset: to a .nc/.h5/.zarr/-wds path, or pass --dataset")
    return raw, dataset


def _evaluate(args: argparse.Namespace) -> None:
    import json

    from trainset.evaluate.stage import evaluate_run

    folder = Path(args.run)
    if not (folder / "config.json").exists():
        raise TrainsetError(f"{folder}: no config.json: not a run folder written by trainset train. "
                            "Fix: pass the folder holding best.pt, history.json and config.json")
    run = json.loads((folder / "config.json").read_text())
    if args.device:  # e.g. a run trained on a GPU, evaluated where there is none
        run.setdefault("training", {})["device"] = args.device
    output = Path(args.output or Path("results") / "reports" / folder.name)
    result = evaluate_run(run, folder, args.dataset, args.scalers, output, split=args.split, generated=args.generated,
                          sample_steps=args.sample_steps)
    headline = ", ".join(f"{k} {v:.4g}" for k, v in (result["metrics"].get("headline") or {}).items()
                         if isinstance(v, (int, float)))
    print(f"evaluated {result['run']} on {args.split}: {headline or 'see the report'}; {output / 'report.html'}")


def _predict(args: argparse.Namespace) -> None:
    from trainset.evaluate.apply import predict_dataset

    if Path(args.output).suffix != ".nc":
        raise TrainsetError(f"{args.output}: predictions are written as NetCDF. Fix: end the path with .nc")
    summary = predict_dataset(args.run, args.dataset, args.output, scalers=args.scalers, splits=args.split,
                              checkpoint=args.checkpoint, device=args.device)
    counts = ", ".join(f"{name} {n}" for name, n in summary["samples"].items())
    print(f"wrote {args.output}: predictions of {summary['checkpoint']} on {args.dataset} ({counts} samples)")


def _seed(text: str) -> int:
    """A ``--seed`` value: an integer in 0..MAX_SEED (argparse prints the message and exits 2)."""
    from trainset.rng import MAX_SEED

    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if not 0 <= seed <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer in 0..{MAX_SEED} (2**63-1, the largest "
                                         "seed files store)")
    return seed


def _sample_steps(text: str) -> int:
    """A ``--sample-steps`` value: an integer >= 2 (one step would leave the starting noise in the
    frames); the model's own limit is checked once its checkpoint is loaded, before any drawing."""
    try:
        steps = int(text)
    except ValueError:
        steps = 0
    if steps < 2:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 2 (at most the run's model.params.steps)")
    return steps


LOUD_COMMANDS = ("train", "find-lr", "evaluate", "predict")
"""Long-running subcommands that log progress (INFO) unless -q is given."""


def _logging_options(parser: argparse.ArgumentParser, default: Any, suffix: str = "") -> None:
    """-v/-q on the main parser (defaults) and on every subcommand (SUPPRESS: only when given,
    under other names), so they work before or after the subcommand and -v counts add up."""
    parser.add_argument("-v", "--verbose", action="count", default=default, dest=f"verbose{suffix}",
                        help="more logging on stderr: -v progress (INFO), -vv debug")
    parser.add_argument("-q", "--quiet", action="store_true", dest=f"quiet{suffix}",
                        default=default if default is not None else False,
                        help="only warnings and errors on stderr (train, find-lr, evaluate, predict log INFO by default)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``trainset`` (and ``python -m trainset``)."""
    from trainset import __version__

    parser = argparse.ArgumentParser(prog="trainset", description=__doc__.split("\n")[0].replace("``", ""),
                                     epilog="Run 'trainset COMMAND -h' for a command's options.")
    parser.add_argument("--version", action="version", version=f"trainset {__version__}")
    _logging_options(parser, None)
    common = argparse.ArgumentParser(add_help=False)
    _logging_options(common, argparse.SUPPRESS, "_after")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, description=help, parents=[common])

    demo = command("demo", "write the bundled flu demo table")
    demo.add_argument("output", help="target .parquet or .csv file")
    demo.add_argument("--size", choices=["small", "full"], default="small",
                      help="small (a few thousand rows, for trying things) or full (~2.6M rows); default small")
    demo.add_argument("--seed", type=_seed, default=42, help="seed of the generated curves (default 42)")
    demo.set_defaults(func=_demo)

    ingest = command("ingest", "validate a raw combined table")
    ingest.add_argument("input", help="raw .csv, .tsv or .parquet table")
    ingest.add_argument("-o", "--output", required=True, help="validated .parquet table to write")
    ingest.add_argument("--summary", help="summary JSON (default: OUTPUT with .summary.json)")
    ingest.add_argument("--drop-unknown-places", action="store_true", help="drop unknown location codes")
    ingest.add_argument("--pad-location-codes", action="store_true", help="zero-pad one-digit codes ('1' -> '01')")
    ingest.add_argument("--sep", help="CSV delimiter (default: sniffed among , ; tab)")
    ingest.add_argument("--date-format", help="strftime format of week_enddate, e.g. '%%m/%%d/%%Y' (default: ISO)")
    ingest.add_argument("--seed", type=_seed, default=42, help="seed recorded with the table (default 42)")
    ingest.set_defaults(func=_ingest)

    run = command("run", "run the workflow: 'trainset run --cores 2 [--configfile my.yaml] [snakemake options]' is "
                         "snakemake with the checkout's Snakefile, its config files checked first")
    run.set_defaults(func=_run_workflow, snakemake_args=[])  # the arguments after 'run' go to snakemake

    check = command("check-config", "check workflow config files (YAML syntax and schema) before a run")
    check.add_argument("configfile", nargs="+", help="config overlay(s), merged in order over the defaults, as "
                       "snakemake --configfile merges them")
    check.add_argument("--defaults", default="config/config.yaml",
                       help="the workflow's defaults (default: config/config.yaml of the working directory)")
    check.add_argument("--schema", default="workflow/schemas/config.schema.yaml",
                       help="the config schema (default: workflow/schemas/config.schema.yaml)")
    check.set_defaults(func=_check_config)

    validate = command("validate", "check a stored dataset against its task type")
    validate.add_argument("path", help="a .nc or .h5 file, a .zarr folder or a -wds folder")
    validate.add_argument("--task", help="task type (default: the one stored with the dataset)")
    validate.add_argument("--format", help="force a format: netcdf, hdf5, zarr or webdataset")
    validate.add_argument("--vocab-size", type=int, help="token inputs: ids must lie in 0..vocab_size-1")
    validate.add_argument("--num-classes", type=int, help="classification labels must lie in 0..num_classes-1")
    validate.set_defaults(func=_validate)

    split = command("split", "write splits.json for a stored dataset")
    split.add_argument("dataset", help="a stored dataset (.nc, .h5, .zarr, -wds)")
    split.add_argument("-o", "--output", help="splits JSON to write (default: splits.json beside the dataset)")
    split.add_argument("--method", default="random", choices=["random", "group", "time", "extrapolation", "stored"],
                       help="random samples, whole groups, contiguous time blocks, (macro) extrapolation tests or "
                       "(sequences) the stored splits; default random")
    split.add_argument("--by", default="group", help="per-sample coordinate of the group or time (group/time "
                       "methods; default group)")
    split.add_argument("--fractions", default="train=0.8,val=0.1,test=0.1",
                       help="split shares in order, NAME=SHARE,... (default train=0.8,val=0.1,test=0.1)")
    split.add_argument("--seed", type=_seed, default=42, help="seed of the assignment (default 42)")
    split.set_defaults(func=_split)

    scalers = command("fit-scalers", "fit a dataset's scalers on its training split")
    scalers.add_argument("dataset", help="a stored dataset with splits")
    scalers.add_argument("-o", "--output", required=True, help="scalers JSON to write (results/scalers/<name>.json)")
    scalers.add_argument("--scaler", action="append", metavar="VARIABLE=KIND",
                         help="a variable's scaler kind (standard, minmax, robust, linear_max, sqrt_max, zscore, "
                         "log, identity); repeat per variable (default: the task's scalers)")
    scalers.add_argument("--split", default="train", help="split to fit on (default train)")
    scalers.add_argument("--seed", type=_seed, default=0, help="seed of any subsampling (default 0, as the workflow)")
    scalers.set_defaults(func=_fit_scalers)

    convert = command("convert", "write a stored dataset in another format")
    convert.add_argument("source", help="a stored dataset (.nc, .h5, .zarr, -wds)")
    convert.add_argument("output", help="the copy to write; its suffix picks the format (.nc, .h5, .presplit.h5, "
                         ".zarr, -wds) unless --to is given")
    convert.add_argument("--to", help="format: netcdf, hdf5, hdf5_presplit, zarr or webdataset")
    convert.add_argument("--splits", help="splits JSON (default: splits.json beside SOURCE, else the stored splits)")
    convert.add_argument("--option", action="append", metavar="KEY=VALUE",
                         help="a writer option, e.g. chunk=64, compression=4, samples_per_shard=1000; repeatable")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    convert.set_defaults(func=_convert)

    train = command("train", "train a model from a YAML run config")
    train.add_argument("--config", required=True, help="YAML training config (model, training, data sections)")
    train.add_argument("--dataset", help="stored dataset path (default: the config's dataset)")
    train.add_argument("--scalers", help="scalers JSON fitted on the training split (results/scalers/<name>.json)")
    train.add_argument("--out", help="run folder (default results/models/<name>; name: the config's, else the YAML file's stem)")
    train.add_argument("--threads", type=int, default=None,
                       help="torch threads (default: the config's training.threads, fixed so results do not depend on cores)")
    train.set_defaults(func=_train)

    lr = command("find-lr", "run the learning-rate range test of a run config")
    lr.add_argument("--config", required=True, help="YAML training config (its training.lr is not used)")
    lr.add_argument("--dataset", help="stored dataset path (default: the config's dataset)")
    lr.add_argument("--scalers", help="scalers JSON fitted on the training split")
    lr.add_argument("-o", "--output", default="lr.json", help="result JSON to write; lr.png goes beside it "
                    "(default lr.json)")
    lr.add_argument("--min-lr", type=float, help="first LR of the sweep (default 1e-6)")
    lr.add_argument("--max-lr", type=float, help="last LR of the sweep (default 1)")
    lr.add_argument("--steps", type=int, help="steps of the sweep, >= 3 (default 100)")
    lr.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    lr.set_defaults(func=_find_lr)

    evaluate = command("evaluate", "evaluate a trained run on a split (metrics.json, report.html)")
    evaluate.add_argument("run", help="run folder written by trainset train (best.pt, history.json, config.json)")
    evaluate.add_argument("--dataset", required=True, help="the stored dataset the run was trained on")
    evaluate.add_argument("--scalers", help="the scalers JSON the run was trained with")
    evaluate.add_argument("-o", "--output", help="report folder (default results/reports/<run folder name>)")
    evaluate.add_argument("--split", default="test", help="split to score, never the training split (default test)")
    evaluate.add_argument("--device", help="evaluate on this device instead of the run's training.device "
                          "(e.g. cpu for a run trained on a GPU)")
    evaluate.add_argument("--generated", type=int, default=48,
                          help="generative runs: samples to draw for the report (default 48)")
    evaluate.add_argument("--sample-steps", type=_sample_steps, default=25,
                          help="generative runs: denoising steps per sample, from 2 to the run's "
                          "model.params.steps (diffusion: default 200); a larger value is refused before "
                          "anything is drawn, never cut (default 25: pass at most the model's steps for a "
                          "smaller model)")
    evaluate.set_defaults(func=_evaluate)

    predict = command("predict", "apply a trained run to a new dataset; write predictions in data units")
    predict.add_argument("run", help="run folder written by trainset train (config.json and the checkpoint)")
    predict.add_argument("--dataset", required=True, help="a stored dataset with the variables and shapes the run "
                         "was trained on (built by the workflow or trainset convert)")
    predict.add_argument("-o", "--output", required=True, help="NetCDF file to write (pred, target, index, split)")
    predict.add_argument("--scalers", help="the scalers JSON the run was trained with (default: scalers.json in "
                         "the run folder, if there)")
    predict.add_argument("--split", action="append", help="a split to predict; repeatable (default: every split "
                         "the dataset stores)")
    predict.add_argument("--checkpoint", default="best.pt", help="checkpoint file in the run folder (default best.pt)")
    predict.add_argument("--device", help="predict on this device instead of the run's training.device (e.g. cpu)")
    predict.set_defaults(func=_predict)

    legacy = command("convert-legacy-wds", "convert legacy Glideator .pth shards (seed 002)")
    legacy.add_argument("src", help="a shard, a folder of shards, or the guide's training/ folder "
                        "(train_data/, val_data/)")
    legacy.add_argument("dst", help="the trainset WebDataset folder to write, e.g. TS_flights-wds")
    legacy.add_argument("--site-column", type=int, help="plain feature tensors: column holding the site id (moved out)")
    legacy.add_argument("--thresholds", help="comma-separated thresholds of the targets (default 0,10,...,100 for 11)")
    legacy.add_argument("--skip-unknown", action="store_true", help="skip (and log) members other than the three")
    legacy.add_argument("--overwrite", action="store_true", help="replace an existing DST")
    legacy.add_argument("--samples-per-shard", type=int, help="samples per output shard (default 10000)")
    legacy.add_argument("--samples-per-member", type=int, help="samples packed per .npy member (default 1)")
    legacy.set_defaults(func=_convert_legacy_wds)

    macro = command("import-macro-zarr", "import a seed-003 macro Zarr store (per-world folders)")
    macro.add_argument("src", help="the seed-003 dataset root (one zarr group per world, splits.json, manifest.json)")
    macro.add_argument("dst", help="the trainset Zarr store to write, e.g. TS_macro.zarr")
    macro.add_argument("--overwrite", action="store_true", help="replace an existing DST")
    from trainset.io.zarr_.format import ZarrFormat  # the Zarr writer's options, declared once

    zarr = ZarrFormat.options
    macro.add_argument("--chunk", type=int, default=zarr["chunk"], help=f"samples per chunk (default {zarr['chunk']})")
    macro.add_argument("--compression", choices=ZarrFormat.choices["compression"], default=zarr["compression"],
                       help=f"chunk codec (default {zarr['compression']})")
    macro.set_defaults(func=_import_macro_zarr)
    return parser


def _run_workflow(args: argparse.Namespace) -> None:
    """``snakemake [ARGS]`` on the checkout's Snakefile. Snakemake itself reads ``--configfile``
    before the workflow starts and answers a missing or broken file with a traceback; this
    checks the files first, so the answer is one line naming the file (and line and column)."""
    import subprocess

    from trainset.config_errors import load_yaml

    argv = list(args.snakemake_args)
    for path in _configfiles(argv):
        if not Path(path).is_file():
            raise TrainsetError(f"{path}: config file not found (relative to {Path.cwd()}). Fix: check the "
                                "path, or leave --configfile out to build the bundled demo")
        load_yaml(path)
    if not any(a in ("-s", "--snakefile") or a.startswith("--snakefile=") for a in argv):
        snakefile = Path(__file__).resolve().parents[2] / "Snakefile"
        if not snakefile.is_file():
            raise TrainsetError(f"{snakefile}: no Snakefile beside this trainset install. Fix: install trainset "
                                "from its checkout (pip install -e .), or pass -s path/to/Snakefile")
        argv = ["-s", str(snakefile), *argv]
    code = subprocess.run([sys.executable, "-m", "snakemake", *argv]).returncode
    if code:
        raise SystemExit(code)


def _configfiles(argv: list[str]) -> list[str]:
    """The values of ``--configfile(s) A [B ...]`` and ``--configfile=A`` in snakemake arguments."""
    files: list[str] = []
    taking = False
    for arg in argv:
        if arg.startswith(("--configfile=", "--configfiles=")):
            files.append(arg.split("=", 1)[1])
            taking = False
        elif arg in ("--configfile", "--configfiles"):
            taking = True
        elif taking and not arg.startswith("-"):
            files.append(arg)
        else:
            taking = False
    return files


def _split_run(argv: list[str]) -> tuple[list[str], list[str]]:
    """``trainset [-v|-q] run ARGS...``: (what trainset parses, snakemake's ARGS); other commands
    are parsed whole."""
    for i, arg in enumerate(argv):
        if not arg.startswith("-"):
            return (argv[:i + 1], argv[i + 1:]) if arg == "run" else (argv, [])
    return argv, []


def combine_logging(args: argparse.Namespace) -> argparse.Namespace:
    """-v counts and -q from before and after the subcommand, as one ``verbose``/``quiet``."""
    args.verbose = (args.verbose or 0) + getattr(args, "verbose_after", 0)
    args.quiet = bool(args.quiet or getattr(args, "quiet_after", False))
    return args


def log_level(args: argparse.Namespace) -> int:
    """WARNING, or INFO for the long-running commands; -v raises it (INFO, then DEBUG), -q lowers it."""
    if args.quiet:
        return logging.WARNING
    if args.verbose:
        return logging.DEBUG if args.verbose > 1 else logging.INFO
    return logging.INFO if args.command in LOUD_COMMANDS else logging.WARNING


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 done, 1 refused input, 2 bad options)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    head, rest = _split_run(argv)
    args = build_parser().parse_args(head)
    if args.command == "run":
        args.snakemake_args = rest  # passed through untouched: argparse would take snakemake's options
    combine_logging(args)
    if args.verbose and args.quiet:
        print("error: -v and -q contradict each other. Fix: give one", file=sys.stderr)
        return 2
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(log_level(args))  # also when a host (a test, a notebook) configured logging
    try:
        args.func(args)
    except TrainsetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
