"""Frame one domain dataset's long tables into its canonical NetCDF dataset.

Outputs
-------
netcdf : results/datasets/{dataset}/TS_{dataset}.nc
    Sequences: ``data`` (sample, time, feature) float32 and ``labels`` per task type; flights:
    ``features``, ``site``, ``targets``, ``date``; macro: one group per world with ``theta``
    and ``irfs`` (sample, shock, horizon, variable).
"""

from trainset.domains.stage import frame_domain
from trainset.io.netcdf import NetCDFFormat
from trainset.workflow import run_rule


def main(snakemake) -> None:
    collection = frame_domain(snakemake.input.tables, snakemake.params.dataset, snakemake.wildcards.dataset)
    NetCDFFormat().write(collection, snakemake.output.netcdf, **snakemake.params.options)


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821 - injected by Snakemake's script directive
