# Visual checks of the datasets.


rule plot_frames:
    input:
        unpack(past_table),
        netcdf=rules.write_netcdf.output.netcdf,
    output:
        png=report("results/plots/{mix}_us_grid.png", caption="../report/us_grid.rst", category="Datasets"),
    log:
        "results/logs/plot_frames/{mix}.log",
    benchmark:
        "results/benchmarks/plot_frames/{mix}.tsv"
    conda:
        "../envs/trainset.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb,
        runtime=20,
    params:
        code=library_code("plots", "io/netcdf.py", "locations.py", "table/io.py"),
        samples=config["plots"]["samples"],  # default filled by the schema (trainset.plots.us_grid.DEFAULT_SAMPLES)
        past_seasons=config["plots"]["past_seasons"],  # defaults: trainset.plots.past
        past_family=overlay_family(config["plots"]),  # refused at start-up without past_seasons (common.smk)
    message:
        "Plotting {wildcards.mix} on the US tile grid"
    script:
        "../../src/scripts/plot_frames.py"
