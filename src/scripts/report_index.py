"""Compare all runs in one sortable table.

Outputs
-------
results/reports/index.html : a row per run (task, split, headline metrics, best baseline), linking to each report
"""

from trainset.evaluate.stage import write_index
from trainset.workflow import run_rule


def main(snakemake) -> None:
    write_index(list(snakemake.input.metrics), snakemake.output.index)


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821 - injected by Snakemake's script directive
