"""Mix one table into the frames of one mix.

Outputs
-------
frames : results/frames/{mix}.parquet
    One row per (frame, season_week, place): frame, datasetH1, datasetH2, fluseason, sample,
    copy, scale, split, season_week, location_code, value, fill_scale (level ratio of a filled
    place), origin (source group of the cell), fill (how the cell was made).
summary : results/frames/{mix}.summary.json
    Target vs realised share per family, frames filled and scaled, cells by kind, fill ratios,
    frames per split, the fill-share check and its warnings.
"""

from trainset.mixing.stage import mix_frames
from trainset.workflow import run_rule


def main(snakemake) -> None:
    mix_frames(
        table_path=snakemake.input.table,
        output=snakemake.output.frames,
        summary_path=snakemake.output.summary,
        mix=snakemake.wildcards.mix,
        mix_cfg=snakemake.params.mix,
        season_axis=snakemake.params.season_axis,
        seed=snakemake.params.seed,
        table_summary=snakemake.input.table_summary,
        scaling_file=getattr(snakemake.input, "scaling_targets", None),  # the local copy (object storage)
        splits_cfg=snakemake.params.splits,
    )


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821 - injected by Snakemake's script directive
