# trainset: raw long tables -> mixed frames -> datasets (-> scalers -> models -> reports).
#
# This file is an index. The defaults in config/config.yaml are found from this file's folder,
# so the workflow runs from any working directory (--directory DIR); a user's --configfile is
# merged over them (see workflow/rules/common.smk).

from snakemake.utils import min_version

min_version("9.0")


report: "workflow/report/workflow.rst"


# Python helpers, config loading and validation
include: "workflow/rules/common.smk"
# Stages, in data-flow order
include: "workflow/rules/ingest.smk"
include: "workflow/rules/frames.smk"
include: "workflow/rules/domains.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
# Aggregate targets
include: "workflow/rules/targets.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
