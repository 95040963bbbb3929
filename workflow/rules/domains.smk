# Stages 1-2 of the other domains: demo generator or user tables -> long tables -> canonical
# NetCDF dataset (sequence tasks, flight forecasts, macro worlds). Splits, formats and
# validation then follow the same rules as the flu mixes (datasets.smk).


rule ingest_domain:
    input:
        files=domain_files,
    output:
        tables=directory("results/tables/{dataset}"),
    log:
        "results/logs/ingest_domain/{dataset}.log",
    benchmark:
        "results/benchmarks/ingest_domain/{dataset}.tsv"
    priority: lambda wildcards: data_priority(wildcards.dataset)
    conda:
        "../envs/trainset.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb,
        runtime=20,
    params:
        code=library_code("domains", "tasks.py", "table/io.py", "rng.py", "splits.py", "collection.py"),
        dataset=domain_config,
        seed=config["seed"],
    message:
        "Writing the long tables of {wildcards.dataset}"
    script:
        "../../src/scripts/ingest_domain.py"


rule frame_dataset:
    input:
        tables=rules.ingest_domain.output.tables,
    output:
        netcdf="results/datasets/{dataset}/TS_{dataset}.nc",
    log:
        "results/logs/frame_dataset/{dataset}.log",
    benchmark:
        "results/benchmarks/frame_dataset/{dataset}.tsv"
    priority: lambda wildcards: data_priority(wildcards.dataset)
    conda:
        "../envs/trainset.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb,
        runtime=20,
    params:
        code=library_code("domains", "tasks.py", "table/io.py", "rng.py", "splits.py", "collection.py", "io"),
        dataset=domain_config,
        options=canonical_options,
    message:
        "Framing {wildcards.dataset} into its canonical dataset"
    script:
        "../../src/scripts/frame_dataset.py"
