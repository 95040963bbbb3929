"""Draw the US tile-grid visual check of one mix's dataset.

Outputs
-------
png : results/plots/{mix}_us_grid.png
    One panel per state in its map position and a national-sum panel, N samples spread evenly
    through the mix as thin lines; provenance (dataset hash, trainset version) in the PNG's text chunks.
    With ``plots.past_seasons: N`` the N most recent seasons of ``plots.past_family`` (ground
    truth, from the mix's validated table: input ``table``) are drawn as thin grey lines behind.
"""

from trainset.io.netcdf import open_netcdf_array
from trainset.plots.past import past_seasons
from trainset.plots.us_grid import evenly_spaced, plot_us_grid
from trainset.provenance import code_version, file_sha256
from trainset.workflow import run_rule


def main(snakemake) -> None:
    data = open_netcdf_array(snakemake.input.netcdf)
    total = data.sizes["sample"]
    shown = evenly_spaced(total, int(snakemake.params.samples))
    count = int(snakemake.params.past_seasons)
    past = None
    if count:
        past = past_seasons(snakemake.input.table, count, data["season_week"].values, data["place"].values,
                            family=snakemake.params.past_family)
    plot_us_grid(
        data,
        snakemake.output.png,
        sample_idx=shown,
        past=past,
        title=f"{snakemake.wildcards.mix}: samples spread evenly through the mix",  # counts added by the plot
        metadata={"dataset_sha256": file_sha256(snakemake.input.netcdf), "trainset_version": code_version()},
    )


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821 - injected by Snakemake's script directive
