"""Gather the jobs' shards or chunks into one dataset (rules write_webdataset, write_zarr, write_hdf5*).

Outputs
-------
dataset : results/datasets/{name}/TS_{name}-wds/ | TS_{name}.zarr/ | TS_{name}.h5 | .presplit.h5
    The jobs' files (hard links; HDF5: raw chunk copies), the index or manifest, coordinates
    and splits: the same bytes for any number of jobs. With one job (no job folders among the
    inputs) this rule writes it first, into a scratch folder beside the output, through the
    same library call as write_dataset_job: one process instead of two, the same bytes.
"""

from trainset.datasets import gather_dataset, write_dataset_job
from trainset.workflow import job_folder, remove_stale_job_folders, run_rule


def main(snakemake) -> None:
    folders = list(snakemake.input.jobs)
    if folders:
        remove_stale_job_folders(snakemake.output.dataset)  # one a killed one-job run left
        gather(snakemake, folders)
        return
    with job_folder(snakemake.output.dataset) as folder:
        write_dataset_job(
            source=snakemake.input.source,
            splits_path=snakemake.input.splits,
            format_name=snakemake.params.format,
            output=folder,
            options=snakemake.params.options,
            job=0,
            jobs=1,
        )
        gather(snakemake, [folder])


def gather(snakemake, folders: list) -> None:
    gather_dataset(
        source=snakemake.input.source,
        splits_path=snakemake.input.splits,
        format_name=snakemake.params.format,
        job_folders=folders,
        output=snakemake.output.dataset,
        options=snakemake.params.options,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821 - injected by Snakemake's script directive
