"""Train one run or one search trial (model, losses, optimiser, schedule and seed from its config).

Outputs
-------
results/models/{run}/ (or results/search/{search}/{trial}/) :
    best.pt, final.pt, epoch_N.pt, last.pt, history.json, config.json, and metrics.csv
    (declared as a log: kept when a job fails, continued by the resume). Checkpoints are state
    dicts (model, optimiser, scheduler, RNG states, epoch, dataset and scaler hashes, world
    list), loadable with ``torch.load(weights_only=True)``. ``auto`` settings are read from the
    LR finder (lr.json) and the I/O tuner (io.json).
"""

from pathlib import Path

from trainset.train.config import TrainingConfig
from trainset.train.auto import resolve_auto
from trainset.train.run import train_run
from trainset.workflow import run_rule


def main(snakemake) -> None:
    run = resolve_auto(snakemake.params.run, lr_json=getattr(snakemake.input, "lr", None) or None,
                       io_json=getattr(snakemake.input, "io", None) or None)
    cfg = TrainingConfig.from_dict(run)
    train_run(cfg, snakemake.input.dataset, Path(snakemake.output.final).parent, snakemake.input.scalers,
              threads=snakemake.params.threads)


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821 - injected by Snakemake's script directive
