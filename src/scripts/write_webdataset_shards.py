"""Write one job's share of a dataset's WebDataset shards (rule write_webdataset_shards).

Outputs
-------
shards : results/datasets/{name}/wds-jobs/{job}/
    ``shard-NNNNNN.tar`` files of a contiguous range of shards, and ``shards.json`` (their
    index records). Every job plans the same layout, so ``format_options.webdataset.jobs``
    jobs can run at once, on different nodes of a cluster.
"""

from trainset.datasets import write_webdataset_job
from trainset.workflow import run_rule


def main(snakemake) -> None:
    write_webdataset_job(
        source=snakemake.input.source,
        output=snakemake.output.shards,
        options=snakemake.params.options,
        job=int(snakemake.wildcards.job),
        jobs=int(snakemake.params.jobs),
    )


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821 - injected by Snakemake's script directive
