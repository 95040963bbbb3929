# Stages 4-5: scalers fitted on the training split, then one model per run under `runs:`.


rule fit_scalers:
    input:
        netcdf=canonical_dataset,
        splits="results/datasets/{name}/splits.json",
        code=library_files("scalers.py", "transforms.py", "io", "open.py", "splits.py", "collection.py"),
    output:
        scalers="results/scalers/{name}.json",
    log:
        "results/logs/fit_scalers/{name}.log",
    benchmark:
        "results/benchmarks/fit_scalers/{name}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        spec=scaler_spec,
        seed=config["seed"],
    message:
        "Fitting the scalers of {wildcards.name} on its training split"
    script:
        "../../src/scripts/fit_scalers.py"


rule train_model:
    input:
        unpack(run_inputs),
    output:
        best="results/models/{run}/best.pt",
        final="results/models/{run}/final.pt",
        history="results/models/{run}/history.json",
        config="results/models/{run}/config.json",
    log:
        "results/logs/train_model/{run}.log",
    benchmark:
        "results/benchmarks/train_model/{run}.tsv"
    threads: run_threads
    resources:
        mem_mb=4000,
        runtime=60,
        gpus=0,
    params:
        run=run_config,
        threads=run_threads,
    message:
        "Training run {wildcards.run}"
    script:
        "../../src/scripts/train_model.py"
