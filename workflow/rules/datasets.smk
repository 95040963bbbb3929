# Stage 3: mixed frames -> the training dataset of each mix, in each configured format.
# The NetCDF file is always written: it is the canonical copy the other formats convert from.


rule write_netcdf:
    input:
        frames=rules.build_frames.output.frames,
        code=library_files("arrays.py", "datasets.py", "collection.py", "io", "mixing/store.py", "seasons.py"),
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


rule make_splits:
    input:
        netcdf=rules.write_netcdf.output.netcdf,
        code=library_files("splits.py", "datasets.py", "collection.py", "io"),
    output:
        splits="results/datasets/{mix}/splits.json",
    log:
        "results/logs/make_splits/{mix}.log",
    benchmark:
        "results/benchmarks/make_splits/{mix}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        splits=splits_config,
        seed=config["seed"],
    message:
        "Splitting {wildcards.mix} into train/val/test"
    script:
        "../../src/scripts/make_splits.py"


rule write_hdf5:
    input:
        unpack(conversion_inputs),
    output:
        dataset="results/datasets/{mix}/TS_{mix}.h5",
    log:
        "results/logs/write_hdf5/{mix}.log",
    benchmark:
        "results/benchmarks/write_hdf5/{mix}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        format="hdf5",
        options=format_options,
    message:
        "Writing the HDF5 dataset of {wildcards.mix}"
    script:
        "../../src/scripts/convert_dataset.py"


rule write_zarr:
    input:
        unpack(conversion_inputs),
    output:
        dataset=directory("results/datasets/{mix}/TS_{mix}.zarr"),
    log:
        "results/logs/write_zarr/{mix}.log",
    benchmark:
        "results/benchmarks/write_zarr/{mix}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        format="zarr",
        options=format_options,
    message:
        "Writing the Zarr dataset of {wildcards.mix}"
    script:
        "../../src/scripts/convert_dataset.py"


rule write_webdataset:
    input:
        unpack(conversion_inputs),
    output:
        dataset=directory("results/datasets/{mix}/TS_{mix}-wds"),
    log:
        "results/logs/write_webdataset/{mix}.log",
    benchmark:
        "results/benchmarks/write_webdataset/{mix}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        format="webdataset",
        options=format_options,
    message:
        "Writing the WebDataset shards of {wildcards.mix}"
    script:
        "../../src/scripts/convert_dataset.py"


rule validate_dataset:
    input:
        dataset=dataset_path,
        splits=rules.make_splits.output.splits,
        code=library_files("validate.py", "tasks.py", "io"),
    output:
        report="results/datasets/{mix}/validation/{format}.json",
    log:
        "results/logs/validate_dataset/{mix}_{format}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    message:
        "Validating the {wildcards.format} dataset of {wildcards.mix}"
    script:
        "../../src/scripts/validate_dataset.py"
