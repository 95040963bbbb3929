"""Validate one raw long table and write it as Parquet.

Outputs
-------
table : results/tables/{table}.parquet
    Columns datasetH1, datasetH2, sample, fluseason, location_code, season_week, value,
    week_enddate; one row per key, sorted; only places on the season axis.
summary : results/tables/{table}.summary.json
    Rows in/out, rows dropped (places off the axis, missing values), rows per family.
"""

from trainset.table.ingest import ingest_table
from trainset.workflow import run_rule


def main(snakemake) -> None:
    raw = list(snakemake.input.raw)  # the configured path, or its local copy from a storage provider
    ingest_table(
        table_cfg=snakemake.params.table,
        season_axis=snakemake.params.season_axis,
        seed=snakemake.params.seed,
        output=snakemake.output.table,
        summary=snakemake.output.summary,
        raw_file=raw[0] if raw else None,
        name=snakemake.wildcards.table,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821 - injected by Snakemake's script directive
