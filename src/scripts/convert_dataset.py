"""Write a dataset in another format (write_hdf5 and write_hdf5_presplit).

Outputs
-------
dataset : results/datasets/{name}/TS_{name}.h5 | .presplit.h5
    The same samples, variables, coordinates, attributes and splits as the NetCDF source.
"""

from trainset.datasets import convert_dataset
from trainset.workflow import run_rule


def main(snakemake) -> None:
    convert_dataset(
        source=snakemake.input.source,
        splits_path=snakemake.input.splits,
        format_name=snakemake.params.format,
        output=snakemake.output.dataset,
        options=snakemake.params.options,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821 - injected by Snakemake's script directive
