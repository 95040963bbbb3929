# Stage 6: every run evaluated on its held-out split into metrics.json + report.html, and one
# index comparing all runs. Outputs are declared with report() so `snakemake --report
# report.zip` packages them with the workflow's own provenance.


rule evaluate_model:
    input:
        unpack(evaluation_inputs),
    output:
        metrics="results/reports/{run}/metrics.json",
        report=report(
            "results/reports/{run}/report.html",
            caption="../report/run_report.rst",
            category="Runs",
            labels={"run": "{run}"},
        ),
    log:
        "results/logs/evaluate_model/{run}.log",
    benchmark:
        "results/benchmarks/evaluate_model/{run}.tsv"
    priority: lambda wildcards: run_priority(wildcards.run)
    conda:
        "../envs/trainset.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb,
        runtime=30,
        gpu=run_gpus,
    params:
        code=library_code(*EVALUATION_CODE),
        split=config["evaluation"]["split"],  # defaults filled by the schema (those of evaluate_run)
        generated=sampling_setting("generated_frames"),  # None for runs that draw no frames
        sample_steps=sampling_setting("sample_steps"),
    message:
        "Evaluating run {wildcards.run}"
    script:
        "../../src/scripts/evaluate_model.py"


rule report_index:
    input:
        metrics=expand("results/reports/{run}/metrics.json", run=list(config.get("runs", {}))),
    output:
        index=report("results/reports/index.html", caption="../report/index.rst", category="Runs"),
    log:
        "results/logs/report_index/index.log",
    benchmark:
        "results/benchmarks/report_index/index.tsv"
    conda:
        "../envs/trainset.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb,
        runtime=5,
    params:
        code=library_code("evaluate", "tasks.py"),
    message:
        "Comparing all runs in results/reports/index.html"
    script:
        "../../src/scripts/report_index.py"
