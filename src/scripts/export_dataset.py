"""Copy a dataset to its dated name, TS_<NAME>_<YYYY-MM-DD>.nc, as users of the old notebooks expect.

Outputs
-------
netcdf : results/export/TS_{mix}_{date}.nc
    A byte-for-byte copy of results/datasets/{mix}/TS_{mix}.nc.
"""

from trainset.provenance import copy_file
from trainset.workflow import run_rule


def main(snakemake) -> None:
    copy_file(snakemake.input.netcdf, snakemake.output.netcdf)


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821 - injected by Snakemake's script directive
