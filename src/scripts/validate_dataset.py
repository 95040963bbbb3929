"""Validate one stored dataset against its format and task type; fail on any problem.

Outputs
-------
report : results/datasets/{name}/validation/{format}.json
    ``{"path", "format", "task", "samples", "problems", "valid"}`` (written only when valid).
"""

from trainset.errors import TrainsetError
from trainset.io.base import get_copy
from trainset.provenance import write_json
from trainset.validate import validate_dataset
from trainset.versions import stamp
from trainset.workflow import run_rule


def main(snakemake) -> None:
    copy = get_copy(snakemake.wildcards.format)  # a variant copy is checked as the format it is
    report = validate_dataset(snakemake.input.dataset, format=copy.format)
    if not report["valid"]:
        raise TrainsetError("\n".join([f"{snakemake.input.dataset} is not valid:", *report["problems"]]))
    write_json({**report, **stamp("validation")}, snakemake.output.report)


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821 - injected by Snakemake's script directive
