"""Write the long tables of one domain dataset (demo generator or the user's files).

Outputs
-------
tables : results/tables/{dataset}/
    ``inputs.parquet`` + ``labels.parquet`` (sequences), ``sitedays.parquet`` (flights) or
    ``theta.parquet`` + ``irfs.parquet`` (macro), and ``summary.json`` (rows, metadata, provenance).
"""

from trainset.domains.stage import ingest_domain
from trainset.workflow import run_rule


def main(snakemake) -> None:
    ingest_domain(snakemake.params.dataset, snakemake.params.seed, snakemake.output.tables)


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821 - injected by Snakemake's script directive
