"""Validate every stored copy of a dataset against its format and task type; fail on any problem.

Outputs
-------
reports : results/datasets/{name}/validation/
    ``{format}.json`` per stored copy: ``{"path", "format", "task", "samples", "problems",
    "valid"}``. Written only when every copy is valid; a failure lists the problems of all.
"""

from pathlib import Path

from trainset.errors import TrainsetError
from trainset.io.base import get_copy
from trainset.provenance import write_json
from trainset.validate import validate_dataset
from trainset.versions import stamp
from trainset.workflow import run_rule


def main(snakemake) -> None:
    reports, problems = {}, []
    for name, path in zip(snakemake.params.formats, snakemake.input.datasets, strict=True):
        copy = get_copy(name)  # a variant copy is checked as the format it is
        reports[name] = validate_dataset(path, format=copy.format)
        if not reports[name]["valid"]:
            problems += [f"{path} is not valid:", *reports[name]["problems"]]
    if problems:
        raise TrainsetError("\n".join(problems))
    folder = Path(snakemake.output.reports)
    for name, report in reports.items():
        write_json({**report, **stamp("validation")}, folder / f"{name}.json")


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821 - injected by Snakemake's script directive
