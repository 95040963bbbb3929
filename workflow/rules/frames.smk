# Stage 2: validated table -> mixed frames of one mix (with provenance for every cell).


rule build_frames:
    input:
        unpack(mix_table_files),
    output:
        frames="results/frames/{mix}.parquet",
        summary="results/frames/{mix}.summary.json",
    log:
        "results/logs/build_frames/{mix}.log",
    benchmark:
        "results/benchmarks/build_frames/{mix}.tsv"
    priority: lambda wildcards: data_priority(wildcards.mix)
    conda:
        "../envs/trainset.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb,
        runtime=20,
    params:
        code=library_code("mixing", "rng.py", "table/io.py", "seasons.py", "locations.py"),
        mix=mix_config,
        splits=mix_splits_config,
        season_axis=canonical(config["season_axis"]),
        seed=config["seed"],
    message:
        "Mixing frames of {wildcards.mix}"
    script:
        "../../src/scripts/build_frames.py"
