"""Gather the shards of every job into the indexed WebDataset folder (rule write_webdataset).

Outputs
-------
dataset : results/datasets/{name}/TS_{name}-wds/
    The shards (hard links to the jobs' files), ``index.json``, ``splits.json`` and the
    coordinates: byte-identical to a folder written in one job.
"""

from trainset.datasets import gather_webdataset
from trainset.workflow import run_rule


def main(snakemake) -> None:
    gather_webdataset(
        source=snakemake.input.source,
        splits_path=snakemake.input.splits,
        job_folders=list(snakemake.input.jobs),
        output=snakemake.output.dataset,
        options=snakemake.params.options,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821 - injected by Snakemake's script directive
