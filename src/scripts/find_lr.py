"""Find one run's learning rate with an LR range test (seed 002's LR sweep, done the standard way).

A fresh copy of the run's model (same seed, data, scalers, objective and optimiser) trains while
the LR grows geometrically from ``min_lr`` to ``max_lr``; the suggestion is the steepest descent
of the smoothed training loss. The train rule uses it when the run says ``lr: auto``.

Outputs
-------
lr : results/tuning/{run}/lr.json
    ``suggested_lr``, ``min_loss_lr_div10``, per step ``lrs``, ``losses`` and ``smoothed``
    (bias-corrected EMA), ``stopped_early``, ``steps``, ``config_hash`` (the run without its
    lr) and the sweep ``settings``.
plot : results/tuning/{run}/lr.png
    Training loss against learning rate (log x), the suggestion marked.
"""

from trainset.errors import TrainsetError
from trainset.train.coerce import coerce_options
from trainset.train.lr_finder import LR_FINDER_OPTIONS, find_lr, search_config, write_lr_result
from trainset.workflow import run_rule


def main(snakemake) -> None:
    options = dict(getattr(snakemake.params, "lr_finder", None) or {})
    unknown = sorted(set(options) - set(LR_FINDER_OPTIONS))
    if unknown:
        raise TrainsetError(f"lr_finder: unknown key(s) {unknown}. Fix: use {list(LR_FINDER_OPTIONS)}")
    options = coerce_options(find_lr, options, "tuning.lr_finder")  # "1e-3" is a string to PyYAML
    cfg = search_config(snakemake.params.run, io_json=getattr(snakemake.input, "io", None) or None)
    result = find_lr(cfg, snakemake.input.dataset, getattr(snakemake.input, "scalers", None) or None,
                     threads=getattr(snakemake.params, "threads", None) or 1, **options)
    write_lr_result(result, snakemake.output.lr)


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821 - injected by Snakemake's script directive
