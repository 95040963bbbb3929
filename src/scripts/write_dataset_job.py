"""Write one job's share of a WebDataset, Zarr or HDF5 dataset (rule write_dataset_job).

Outputs
-------
folder : results/datasets/{name}/jobs/{webdataset|zarr|hdf5|hdf5_presplit}/{job}/
    WebDataset: ``shard-NNNNNN.tar`` of a contiguous range of shards and ``shards.json`` (their
    index records). Zarr: a store with complete metadata and the chunk files of a contiguous
    range of sample chunks. HDF5: ``part.h5``, the whole structure with a contiguous range of
    each data variable's chunks. Every job plans the same layout, so the
    ``format_options.<format>.jobs`` jobs run at once (on different nodes of a cluster). Runs
    only for ``jobs`` > 1: the gather rule writes a single job itself (gather_dataset.py).
"""

from trainset.datasets import write_dataset_job
from trainset.workflow import run_rule


def main(snakemake) -> None:
    write_dataset_job(
        source=snakemake.input.source,
        splits_path=snakemake.input.splits,
        format_name=snakemake.wildcards.parallel_format,
        output=snakemake.output.folder,
        options=snakemake.params.options,
        job=int(snakemake.wildcards.job),
        jobs=int(snakemake.params.jobs),
    )


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821 - injected by Snakemake's script directive
