"""Assign the samples of one dataset to train/val/test, seeded and leak-free.

Outputs
-------
splits : results/datasets/{name}/splits.json
    ``{"splits": {name: [global sample indices]}, "method", "by", "seed", "sizes"}``.
"""

from trainset.datasets import split_dataset
from trainset.workflow import run_rule


def main(snakemake) -> None:
    split_dataset(snakemake.input.netcdf, snakemake.output.splits, snakemake.params.splits, snakemake.params.seed)


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821 - injected by Snakemake's script directive
