# Stage 3: the training dataset of each flu mix and domain dataset, in each configured format.
# The NetCDF file is always written (by write_netcdf for mixes, frame_dataset for domain
# datasets): it is the canonical copy that splits and the other formats are made from.
# HDF5, Zarr and WebDataset are written by `format_options.<format>.jobs` parallel
# write_dataset_job jobs (disjoint sample chunks or shards), then assembled by one gather rule;
# with one job (the default) the gather rule writes it itself, in the same process.


rule write_netcdf:
    input:
        frames=rules.build_frames.output.frames,
    output:
        netcdf="results/datasets/{mix}/TS_{mix}.nc",
    log:
        "results/logs/write_netcdf/{mix}.log",
    benchmark:
        "results/benchmarks/write_netcdf/{mix}.tsv"
    priority: lambda wildcards: data_priority(wildcards.mix)
    conda:
        "../envs/trainset.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb,
        runtime=20,
    params:
        code=library_code("arrays.py", "datasets.py", "collection.py", "io", "mixing/store.py", "seasons.py"),
        mix=mix_config,
        season_axis=canonical(config["season_axis"]),
        seed=config["seed"],
        options=canonical_options,
    message:
        "Writing the NetCDF dataset of {wildcards.mix}"
    script:
        "../../src/scripts/write_netcdf.py"


rule make_splits:
    input:
        netcdf=canonical_dataset,
    output:
        splits="results/datasets/{name}/splits.json",
    log:
        "results/logs/make_splits/{name}.log",
    benchmark:
        "results/benchmarks/make_splits/{name}.tsv"
    priority: lambda wildcards: data_priority(wildcards.name)
    conda:
        "../envs/trainset.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb,
        runtime=10,
    params:
        code=library_code("splits.py", "datasets.py", "collection.py", "io", "domains"),
        splits=splits_config,
        seed=config["seed"],
    message:
        "Splitting {wildcards.name} into train/val/test"
    script:
        "../../src/scripts/make_splits.py"


rule write_dataset_job:
    input:
        unpack(conversion_inputs),
    output:
        folder=temp(directory("results/datasets/{name}/jobs/{parallel_format}/{job}")),  # removed once gathered
    log:
        "results/logs/write_dataset_job/{name}_{parallel_format}_{job}.log",
    benchmark:
        "results/benchmarks/write_dataset_job/{name}_{parallel_format}_{job}.tsv"
    wildcard_constraints:
        parallel_format=alternatives(sorted((n for n, c in STORED_COPIES.items() if c.parallel), key=len, reverse=True)),
        job=r"\d+",
    priority: lambda wildcards: data_priority(wildcards.name, wildcards.parallel_format)
    conda:
        "../envs/trainset.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb,
        runtime=30,
    params:
        code=library_code(*CONVERSION_CODE),
        options=job_options,
        jobs=job_count,
    message:
        "Writing {wildcards.parallel_format} job {wildcards.job} of {wildcards.name}"
    script:
        "../../src/scripts/write_dataset_job.py"


# One gather rule, write_<copy>, per stored copy written in jobs (trainset.io.base.stored_copies):
# a format, or a variant of one with its own file-name suffix and fixed writer options.
# (not `copy`: the Snakefile runs in snakemake.workflow's globals, where `copy` is the module)
for stored_copy in (c for c in STORED_COPIES.values() if c.parallel):

    rule:
        name:
            f"write_{stored_copy.name}"
        input:
            unpack(conversion_inputs),
            jobs=job_folders(stored_copy.name),
        output:
            dataset=gathered_output(stored_copy),
        log:
            f"results/logs/write_{stored_copy.name}/{{name}}.log",
        benchmark:
            f"results/benchmarks/write_{stored_copy.name}/{{name}}.tsv"
        priority: copy_priority(stored_copy.name)
        conda:
            "../envs/trainset.yaml"
        threads: 1
        resources:
            mem_mb=mem_mb,
            runtime=gather_runtime(stored_copy.name),
        params:
            code=library_code(*CONVERSION_CODE),
            format=stored_copy.name,
            options=writer_options(stored_copy.name),
        message:
            f"Writing the {stored_copy.name} copy of {{wildcards.name}} (gathering its jobs when there are several)"
        script:
            "../../src/scripts/gather_dataset.py"


# One job checks every stored copy of a dataset (one process start instead of one per copy);
# the reports are leaves, so revalidating the other copies when one changes costs seconds.
rule validate_dataset:
    input:
        datasets=validated_datasets,
        splits=rules.make_splits.output.splits,
    output:
        reports=directory("results/datasets/{name}/validation"),  # <format>.json of every stored copy
    log:
        "results/logs/validate_dataset/{name}.log",
    benchmark:
        "results/benchmarks/validate_dataset/{name}.tsv"
    conda:
        "../envs/trainset.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb,
        runtime=validation_runtime,
    params:
        code=library_code("validate.py", "tasks.py", "tokens.py", "splits.py", "collection.py", "io"),
        formats=validated_formats,
    message:
        "Validating the stored copies of {wildcards.name}: {params.formats}"
    script:
        "../../src/scripts/validate_dataset.py"
