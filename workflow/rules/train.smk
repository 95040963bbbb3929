# Stages 4-5: scalers fitted on the training split, then one model per run under `runs:`.


rule fit_scalers:
    input:
        netcdf=canonical_dataset,
        splits="results/datasets/{name}/splits.json",
    output:
        scalers="results/scalers/{name}.json",
    log:
        "results/logs/fit_scalers/{name}.log",
    benchmark:
        "results/benchmarks/fit_scalers/{name}.tsv"
    priority: lambda wildcards: data_priority(wildcards.name)
    conda:
        "../envs/trainset.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb,
        runtime=10,
    params:
        code=library_code("scalers", "tasks.py", "transforms.py", "io", "open.py", "splits.py", "collection.py"),
        spec=scaler_spec,
        seed=config["seed"],
    message:
        "Fitting the scalers of {wildcards.name} on its training split"
    script:
        "../../src/scripts/fit_scalers.py"


rule tune_io:
    input:
        unpack(run_inputs),
    output:
        io="results/tuning/{run}/io.json",
    log:
        "results/logs/tune_io/{run}.log",
    benchmark:
        "results/benchmarks/tune_io/{run}.tsv"
    priority: lambda wildcards: run_priority(wildcards.run)
    conda:
        "../envs/trainset.yaml"
    # The cores its training job will reserve, not more: Snakemake keeps no core free for a
    # waiting job, so a two-core tuner on two cores waited for the rest of the workflow to end.
    # Its loader workers then share those cores (and the machine's load), as training's will:
    # the figures in io.json are of the machine as the workflow uses it.
    threads: run_threads
    resources:
        mem_mb=mem_mb,
        runtime=20,
        gpu=run_gpus,
    params:
        code=library_code(*RUN_CODE),
        seed=config["seed"],
        io_tuner=canonical(config.get("tuning", {}).get("io_tuner", {})),
    message:
        "Measuring loader throughput for {wildcards.run} (batch size x workers)"
    script:
        "../../src/scripts/tune_io.py"


rule find_lr:
    input:
        unpack(lr_finder_inputs),
    output:
        lr="results/tuning/{run}/lr.json",
        plot=report(
            "results/tuning/{run}/lr.png", caption="../report/lr.rst", category="Tuning", labels={"run": "{run}"}
        ),
    log:
        "results/logs/find_lr/{run}.log",
    benchmark:
        "results/benchmarks/find_lr/{run}.tsv"
    priority: lambda wildcards: run_priority(wildcards.run)
    conda:
        "../envs/trainset.yaml"
    threads: run_threads
    resources:
        mem_mb=mem_mb,
        runtime=30,
        gpu=run_gpus,
    params:
        code=library_code(*RUN_CODE),
        run=run_config,
        threads=run_threads,
        lr_finder=canonical(config.get("tuning", {}).get("lr_finder", {})),
    message:
        "LR range test for {wildcards.run}"
    script:
        "../../src/scripts/find_lr.py"


rule train_model:
    input:
        unpack(run_inputs),
        unpack(tuning_inputs),
    output:
        best="results/models/{run}/best.pt",
        final="results/models/{run}/final.pt",
        history="results/models/{run}/history.json",
        config="results/models/{run}/config.json",
    log:
        # metrics.csv is a log: Snakemake keeps it when a job fails, as the resume continues it
        python="results/logs/train_model/{run}.log",
        metrics="results/models/{run}/metrics.csv",
    benchmark:
        "results/benchmarks/train_model/{run}.tsv"
    priority: lambda wildcards: run_priority(wildcards.run)
    conda:
        "../envs/trainset.yaml"
    threads: run_threads
    resources:
        mem_mb=mem_mb,
        runtime=60,
        gpu=run_gpus,
    params:
        code=library_code(*RUN_CODE),
        run=run_config,
        threads=run_threads,
    message:
        "Training run {wildcards.run}"
    script:
        "../../src/scripts/train_model.py"


rule train_trial:
    input:
        unpack(trial_inputs),
    output:
        best="results/search/{search}/{trial}/best.pt",
        final="results/search/{search}/{trial}/final.pt",
        history="results/search/{search}/{trial}/history.json",
        config="results/search/{search}/{trial}/config.json",
    log:
        python="results/logs/train_trial/{search}_{trial}.log",
        metrics="results/search/{search}/{trial}/metrics.csv",
    benchmark:
        "results/benchmarks/train_trial/{search}_{trial}.tsv"
    priority: lambda wildcards: run_priority(config["searches"][wildcards.search]["run"])
    conda:
        "../envs/trainset.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb,
        runtime=60,
        gpu=run_gpus,
    params:
        code=library_code(*RUN_CODE),
        run=trial_config,
        threads=1,
    message:
        "Search {wildcards.search}: trial {wildcards.trial}"
    script:
        "../../src/scripts/train_model.py"


rule gather_search:
    input:
        unpack(search_results),
    output:
        table="results/search/{search}/results.csv",
        summary="results/search/{search}/summary.json",
    log:
        "results/logs/gather_search/{search}.log",
    benchmark:
        "results/benchmarks/gather_search/{search}.tsv"
    conda:
        "../envs/trainset.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb,
        runtime=5,
    params:
        search=search_name,
        trials=trial_names,
        space=search_space,
    message:
        "Gathering the trials of search {wildcards.search}"
    script:
        "../../src/scripts/gather_search.py"
