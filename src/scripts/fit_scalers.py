"""Fit the scalers of one dataset on its training split only.

Outputs
-------
scalers : results/scalers/{name}.json
    Per-variable, per-feature statistics (per world for several parts), the dataset's sha256,
    the split and sizes, and ``scaler_hash``; JSON, never pickle.
"""

from trainset.scalers import fit_dataset_scalers
from trainset.workflow import run_rule


def main(snakemake) -> None:
    fit_dataset_scalers(snakemake.input.netcdf, snakemake.output.scalers, snakemake.params.spec,
                        seed=snakemake.params.seed)


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821 - injected by Snakemake's script directive
