# Stage 3: mixed frames -> the training dataset files of each mix.


rule write_netcdf:
    input:
        frames=rules.build_frames.output.frames,
        code=library_files("arrays.py", "datasets.py", "io/netcdf.py", "mixing/store.py", "seasons.py"),
    output:
        netcdf="results/datasets/{mix}/TS_{mix}.nc",
    log:
        "results/logs/write_netcdf/{mix}.log",
    benchmark:
        "results/benchmarks/write_netcdf/{mix}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        mix=mix_config,
        season_axis=config["season_axis"],
        seed=config["seed"],
    message:
        "Writing the NetCDF dataset of {wildcards.mix}"
    script:
        "../../src/scripts/write_netcdf.py"
