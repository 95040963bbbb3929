# Aggregate targets: `snakemake build_all_frames`, `snakemake export`.


localrules:
    build_all_frames,
    export,


rule build_all_frames:
    input:
        expand("results/frames/{mix}.parquet", mix=list(config["mixes"])),


rule export_dataset:
    input:
        netcdf=rules.write_netcdf.output.netcdf,
    output:
        netcdf="results/export/TS_{mix}_{date}.nc",
    log:
        "results/logs/export_dataset/{mix}_{date}.log",
    benchmark:
        "results/benchmarks/export_dataset/{mix}_{date}.tsv"
    conda:
        "../envs/trainset.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb,
        runtime=5,
    message:
        "Exporting {wildcards.mix} under its dated name"
    script:
        "../../src/scripts/export_dataset.py"


rule export:
    input:
        expand("results/export/TS_{mix}_{date}.nc", mix=list(config["mixes"]), date=export_date()),
