# Stage 1: raw long table (file or demo generator) -> validated Parquet table.


rule ingest_table:
    input:
        raw=table_inputs,
    output:
        table="results/tables/{table}.parquet",
        summary="results/tables/{table}.summary.json",
    log:
        "results/logs/ingest_table/{table}.log",
    benchmark:
        "results/benchmarks/ingest_table/{table}.tsv"
    priority: lambda wildcards: table_priority(wildcards.table)
    conda:
        "../envs/trainset.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb,
        runtime=20,
    params:
        code=library_code("table", "demo", "seasons.py", "locations.py", "data/locations.csv"),
        table=table_config,
        season_axis=canonical(config["season_axis"]),
        seed=config["seed"],
    message:
        "Validating table {wildcards.table}"
    script:
        "../../src/scripts/ingest_table.py"
