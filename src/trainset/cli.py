"""``python -m trainset``: the library's stages without Snakemake.

Subcommands
-----------
demo
    Write a bundled demo table (e.g. the ~2.6M-row flu table) to CSV or Parquet.
ingest
    Validate a raw table and write the canonical Parquet table and its summary.
train
    Train a model from a YAML run config (the same trainer the ``train_model`` rule runs).
validate
    Check a stored dataset (NetCDF, HDF5, Zarr or WebDataset) against its task type and print
    every problem with its fix.
convert-legacy-wds
    Convert legacy Glideator shards (``features.pth``/``targets.pth``/``date.pth`` members, seed
    002) into a trainset WebDataset, decoding them with ``torch.load(weights_only=True)`` only.
import-macro-zarr
    Import a seed-003 Zarr store (a folder per world with ``theta``/``irfs``, ``splits.json``,
    a manifest) as a trainset Zarr store, refusing what it cannot map with the reason.

Bad input prints one message naming the file, the field and the fix, exits 1, and leaves no
output file behind.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

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


def _ingest(args: argparse.Namespace) -> None:
    from trainset.table.ingest import ingest_table

    output = Path(args.output)
    summary = args.summary or output.with_suffix(".summary.json")
    table_cfg = {"path": args.input, "drop_unknown_places": args.drop_unknown_places,
                 "pad_location_codes": args.pad_location_codes}
    table_cfg |= {key: value for key, value in (("sep", args.sep), ("date_format", args.date_format)) if value}
    ingest_table(table_cfg, {}, args.seed, output, summary, name=Path(args.input).stem)


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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m trainset``."""
    parser = argparse.ArgumentParser(prog="trainset", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="write the bundled flu demo table")
    demo.add_argument("output", help="target .parquet or .csv file")
    demo.add_argument("--size", choices=["small", "full"], default="small")
    demo.add_argument("--seed", type=_seed, default=42)
    demo.set_defaults(func=_demo)

    ingest = commands.add_parser("ingest", help="validate a raw combined table")
    ingest.add_argument("input", help="raw .csv, .tsv or .parquet table")
    ingest.add_argument("-o", "--output", required=True, help="validated .parquet table to write")
    ingest.add_argument("--summary", help="summary JSON (default: OUTPUT with .summary.json)")
    ingest.add_argument("--drop-unknown-places", action="store_true", help="drop unknown location codes")
    ingest.add_argument("--pad-location-codes", action="store_true", help="zero-pad one-digit codes ('1' -> '01')")
    ingest.add_argument("--sep", help="CSV delimiter (default: sniffed among , ; tab)")
    ingest.add_argument("--date-format", help="strftime format of week_enddate, e.g. '%%m/%%d/%%Y' (default: ISO)")
    ingest.add_argument("--seed", type=_seed, default=42)
    ingest.set_defaults(func=_ingest)

    train = commands.add_parser("train", help="train a model from a YAML run config")
    train.add_argument("--config", required=True, help="YAML training config (model, training, data sections)")
    train.add_argument("--dataset", help="stored dataset path (default: the config's dataset)")
    train.add_argument("--scalers", help="scalers JSON fitted on the training split (results/scalers/<name>.json)")
    train.add_argument("--out", help="run folder (default results/models/<name>; name: the config's, else the YAML file's stem)")
    train.add_argument("--threads", type=int, default=None,
                       help="torch threads (default: the config's training.threads, fixed so results do not depend on cores)")
    train.set_defaults(func=_train)

    validate = commands.add_parser("validate", help="check a stored dataset against its task type")
    validate.add_argument("path", help="a .nc or .h5 file, a .zarr folder or a -wds folder")
    validate.add_argument("--task", help="task type (default: the one stored with the dataset)")
    validate.add_argument("--format", help="force a format: netcdf, hdf5, zarr or webdataset")
    validate.add_argument("--vocab-size", type=int, help="token inputs: ids must lie in 0..vocab_size-1")
    validate.add_argument("--num-classes", type=int, help="classification labels must lie in 0..num_classes-1")
    validate.set_defaults(func=_validate)

    legacy = commands.add_parser("convert-legacy-wds", help="convert legacy Glideator .pth shards (seed 002)")
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

    macro = commands.add_parser("import-macro-zarr", help="import a seed-003 macro Zarr store (per-world folders)")
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


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except TrainsetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
