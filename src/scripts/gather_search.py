"""Rank the finished trials of one hyper-parameter search (each trial trained as its own run).

Outputs
-------
table : CSV, one row per trial, best first: trial, every searched key's value, best_val_loss,
    best_epoch, final_train_loss, epochs (lists in a cell are JSON-encoded).
summary : JSON with the search name, the best trial, its row and its full config, and the
    whole ranking.
"""

from trainset.errors import TrainsetError
from trainset.train.search import gather, write_search_results
from trainset.workflow import run_rule


def main(snakemake) -> None:
    search = snakemake.params.search
    trials = list(snakemake.params.trials)
    histories, configs = list(snakemake.input.histories), list(snakemake.input.configs)
    if not len(trials) == len(histories) == len(configs):
        raise TrainsetError(f"search {search}: {len(trials)} trials but {len(histories)} histories and "
                            f"{len(configs)} configs; the rule must list one of each per trial, in trial order")
    space = snakemake.params.space
    table = gather(dict(zip(trials, zip(histories, configs))), sorted(space))
    write_search_results(table, snakemake.output.table, snakemake.output.summary, search=search)


if __name__ == "__main__":
    run_rule(main, snakemake)  # noqa: F821 - injected by Snakemake's script directive
