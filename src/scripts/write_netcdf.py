"""Convert one mix's frames into its NetCDF training array.

Outputs
-------
netcdf : results/datasets/{mix}/TS_{mix}.nc
    float32 DataArray ``frames`` (sample, feature, season_week, place), 53 x 51 unless pad_to
    is set; per-sample provenance coordinates; attributes mix_cfg, seed, main_origins,
    input_table_sha256, trainset_version, creation_date.
"""

from trainset.datasets import write_mix_netcdf
from trainset.workflow import run_rule


def main(snakemake) -> None:
    write_mix_netcdf(
        frames_path=snakemake.input.frames,
        output=snakemake.output.netcdf,
        mix=snakemake.wildcards.mix,
        mix_cfg=snakemake.params.mix,
        season_axis=snakemake.params.season_axis,
        seed=snakemake.params.seed,
        options=snakemake.params.options,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821 - injected by Snakemake's script directive
