"""Gather the jobs' shards or chunks into one dataset (rules write_webdataset, write_zarr, write_hdf5*).

Outputs
-------
dataset : results/datasets/{name}/TS_{name}-wds/ | TS_{name}.zarr/ | TS_{name}.h5 | .presplit.h5
    The jobs' files (hard links; HDF5: raw chunk copies), the index or manifest, coordinates
    and splits: the same bytes for any number of jobs.
"""

from trainset.datasets import gather_dataset
from trainset.workflow import run_rule


def main(snakemake) -> None:
    gather_dataset(
        source=snakemake.input.source,
        splits_path=snakemake.input.splits,
        format_name=snakemake.params.format,
        job_folders=list(snakemake.input.jobs),
        output=snakemake.output.dataset,
        options=snakemake.params.options,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821 - injected by Snakemake's script directive
