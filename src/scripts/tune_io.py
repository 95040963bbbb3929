"""Measure loader throughput per batch size x workers (x WebDataset packing); pick the fastest.

Batches are read through the loaders training uses. The figures are machine-dependent (cores,
disk, page cache, load), so the JSON records the machine beside the table. The train rule uses
``best`` when a run says ``batch_size: auto`` or ``num_workers: auto``; a better packing is a
dataset option (``format_options.webdataset.samples_per_member``), applied by hand.

Outputs
-------
io : results/tuning/{run}/io.json
    ``results``: one ``{batch_size, num_workers, [samples_per_member], samples_per_s, batches,
    seconds}`` per setting; ``best``: the fastest (ties: smaller batch, fewer workers);
    ``machine``: ``{cpus, torch_threads}``; the ``dataset``, ``split``, ``seconds`` and ``seed``.
"""

from trainset.errors import TrainsetError
from trainset.train.coerce import coerce_options
from trainset.train import workflow_config
from trainset.train.io_tuner import IO_TUNER_OPTIONS, tune_io, write_io_result
from trainset.workflow import run_rule


def main(snakemake) -> None:
    options = dict(getattr(snakemake.params, "io_tuner", None) or {})
    unknown = sorted(set(options) - set(IO_TUNER_OPTIONS))
    if unknown:
        raise TrainsetError(f"io_tuner: unknown key(s) {unknown}. Fix: use {list(IO_TUNER_OPTIONS)}")
    options = coerce_options(tune_io, options, "tuning.io_tuner")  # "1e-3" is a string to PyYAML
    run = workflow_config.run_config(snakemake.config, snakemake.wildcards.run)
    result = tune_io(snakemake.input.dataset, seed=getattr(snakemake.params, "seed", None) or 0,
                     device=workflow_config.run_device(run), **options)  # batches go where the run trains
    write_io_result(result, snakemake.output.io)


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821 - injected by Snakemake's script directive
