"""Glue between Snakemake rule scripts and the library: logging and clean failures.

Rule scripts call :func:`run_rule`, which sends log records to the rule's ``log:`` file (and
stderr), and turns a :class:`~trainset.errors.TrainsetError` into a one-paragraph message and
exit code 1 instead of a traceback: bad input is the user's to fix, not a crash. Outputs are
written atomically by the library, so a failed rule leaves nothing behind.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Callable

from trainset.errors import TrainsetError

logger = logging.getLogger("trainset")


def configure_logging(log_path: str | None = None, level: str = "INFO") -> None:
    """Log to ``log_path`` (the rule's log file) and to stderr, at ``level``."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(
        level=level, handlers=handlers, force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )  # fmt: skip
    sys.excepthook = _log_uncaught


def _log_uncaught(kind, value, traceback) -> None:
    logger.critical("uncaught exception", exc_info=(kind, value, traceback))


def run_rule(main: Callable[[Any], None], snakemake: Any) -> None:
    """Run a rule script's ``main(snakemake)`` with logging and clean error exits."""
    log = snakemake.log[0] if len(snakemake.log) else None
    configure_logging(log)
    try:
        main(snakemake)
    except TrainsetError as error:
        logger.error("%s", error)
        sys.exit(1)
