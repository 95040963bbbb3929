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

Bad input prints one message naming the file, the field and the fix, exits 1, and leaves no
output file behind.
"""

from __future__ import annotations

import argparse
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


def _train(args: argparse.Namespace) -> None:
    from trainset.provenance import safe_name
    from trainset.train.config import TrainingConfig
    from trainset.train.run import train_run

    cfg = TrainingConfig.from_yaml(args.config)
    dataset = args.dataset or cfg.dataset
    if not dataset or not Path(dataset).exists():
        raise TrainsetError(f"{args.config}: dataset {dataset!r} is not a stored dataset. "
                            "Fix: set dataset: to a .nc/.h5/.zarr/-wds path, or pass --dataset")
    folder = Path(args.out or Path("results") / "models" / safe_name(cfg.name, f"{args.config}: name"))
    train_run(cfg, dataset, folder, args.scalers, threads=args.threads)
    print(f"trained {cfg.name}: checkpoints and history in {folder}")


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
    train.add_argument("--out", help="run folder (default results/models/<name>)")
    train.add_argument("--threads", type=int, default=1, help="torch threads (fixed, so results do not depend on cores)")
    train.set_defaults(func=_train)

    validate = commands.add_parser("validate", help="check a stored dataset against its task type")
    validate.add_argument("path", help="a .nc or .h5 file, a .zarr folder or a -wds folder")
    validate.add_argument("--task", help="task type (default: the one stored with the dataset)")
    validate.add_argument("--format", help="force a format: netcdf, hdf5, zarr or webdataset")
    validate.add_argument("--vocab-size", type=int, help="token inputs: ids must lie in 0..vocab_size-1")
    validate.add_argument("--num-classes", type=int, help="classification labels must lie in 0..num_classes-1")
    validate.set_defaults(func=_validate)
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
