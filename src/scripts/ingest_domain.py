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
    cfg = snakemake.params.dataset
    # the user's files as read here: their configured paths, or local copies from a storage provider
    local_files = dict(zip(cfg.get("files") or {}, snakemake.input.files))
    ingest_domain(cfg, snakemake.params.seed, snakemake.output.tables, local_files=local_files)


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821 - injected by Snakemake's script directive
