"""Evaluate one run's best checkpoint on the held-out split.

Outputs
-------
results/reports/{run}/metrics.json : every number, machine-readable (with provenance)
results/reports/{run}/report.html : self-contained page (plots embedded), opens with no server
"""

import json
from pathlib import Path

from trainset.evaluate.stage import evaluate_run
from trainset.workflow import run_rule


def main(snakemake) -> None:
    run = json.loads(Path(snakemake.input.config).read_text())  # the config the run really used
    evaluate_run(run, Path(snakemake.input.best).parent, snakemake.input.dataset, snakemake.input.scalers,
                 Path(snakemake.output.metrics).parent, split=snakemake.params.split,
                 generated=snakemake.params.generated, sample_steps=snakemake.params.sample_steps)


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821 - injected by Snakemake's script directive
