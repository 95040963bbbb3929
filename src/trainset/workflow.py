"""Glue between Snakemake rule scripts and the library: logging and clean failures.

Rule scripts call :func:`run_rule`, which sends log records to the rule's ``log:`` file (and
stderr), and turns a :class:`~trainset.errors.TrainsetError` into a one-paragraph message and
exit code 1 instead of a traceback: bad input is the user's to fix, not a crash. Outputs are
written atomically by the library, so a failed rule leaves nothing behind.

Snakemake's lock (``.snakemake/locks/``) keeps two runs out of one folder, but records no
process, so a killed run leaves it behind and the next run stops until ``--unlock``. The
workflow records its process beside the lock (:func:`record_lock_owner`, at start) and releases
a lock whose recorded process is gone (:func:`release_stale_lock`, at start-up), so the plain
command resumes; a lock without that record, or of a live process or another host, is kept.
"""

from __future__ import annotations

import gc
import glob
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, NamedTuple

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
    # The job ends here, its outputs written and closed. Frozen objects are left out of the
    # interpreter's last garbage collection, which otherwise walks every object torch, xarray,
    # scikit-learn and matplotlib created (0.5-1 s of a training or evaluation job) to free
    # memory the exit frees anyway. Exit handlers and log flushing still run.
    gc.freeze()


@contextmanager
def job_folder(output: str | os.PathLike) -> Iterator[Path]:
    """A folder (not yet created) for the one job of a stored copy, in a scratch folder beside
    ``output``: the gather rule writes it there when ``jobs`` is 1, then gathers from it.

    Beside ``output`` so gathering can hard-link from it (one file system); removed afterwards,
    failed or not. Scratch folders of ``output`` left by a killed job go first: Snakemake runs
    one job per output, so none belongs to a live writer. Their names (``.<output>.job-*``)
    never match :func:`trainset.provenance.sweep_temporaries`' pattern, so writing ``output``
    leaves the job's files in place until they are gathered.
    """
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_job_folders(output)
    scratch = Path(tempfile.mkdtemp(prefix=_scratch_prefix(output), dir=output.parent))
    try:
        yield scratch / "0"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def remove_stale_job_folders(output: str | os.PathLike) -> None:
    """Remove the scratch folders (``.<output>.job-*``) a killed one-job writer of ``output`` left.
    Gathering several jobs calls it too, so a scratch folder left before ``jobs`` was raised
    does not stay for good."""
    output = Path(output)
    for stale in output.parent.glob(glob.escape(_scratch_prefix(output)) + "*"):
        shutil.rmtree(stale, ignore_errors=True)


def _scratch_prefix(output: Path) -> str:
    return f".{output.name}.job-"


ORDERED_MAPPINGS = frozenset({"families", "columns", "constants", "files", "worlds", "space", "scalers",
                              "fractions", "indices"})
"""Config mappings whose keys the user names (the schema's ``additionalProperties`` entries below a
section): their order may carry meaning (``families`` sets the frame order), so :func:`canonical`
keeps it. tests/unit/test_snakemake_conventions.py checks this set against the schema."""


def canonical(value: Any, key: str | None = None) -> Any:
    """``value`` with the keys of every fixed-key mapping sorted, recursively.

    Snakemake compares a job's params by their ``repr``, so a dict's key order counts: reordering
    YAML keys whose order changes no output (``table:`` before or after ``families:``) would rerun
    the job and everything after it. Rules pass their config slices through this, so equal configs
    compare equal; mappings in :data:`ORDERED_MAPPINGS` and lists keep their order, since it can
    change outputs.
    """
    if isinstance(value, dict):
        items = list(value.items())
        if key not in ORDERED_MAPPINGS:
            items.sort(key=lambda item: str(item[0]))
        return {name: canonical(entry, str(name)) for name, entry in items}
    if isinstance(value, (list, tuple)):
        return [canonical(entry) for entry in value]
    return value


class WorkflowCopy(NamedTuple):
    """What the rules need of a stored copy (:class:`trainset.io.base.StoredCopy`): its name,
    format, file-name suffix, whether parallel jobs write it and whether it is a folder."""

    name: str
    format: str
    suffix: str
    parallel: bool
    folder: bool


STORED_COPIES: dict[str, WorkflowCopy] = {copy.name: copy for copy in [
    WorkflowCopy("hdf5", "hdf5", ".h5", True, False),
    WorkflowCopy("netcdf", "netcdf", ".nc", False, False),
    WorkflowCopy("webdataset", "webdataset", "-wds", True, True),
    WorkflowCopy("zarr", "zarr", ".zarr", True, True),
    WorkflowCopy("hdf5_presplit", "hdf5", ".presplit.h5", True, False),
]}
"""The stored copies of :func:`trainset.io.base.stored_copies`, in its order, as plain data: the
rules are built from them when Snakemake parses the workflow, and importing the format adapters
(h5py, zarr, xarray) there would add ~0.3 s to every run, a no-op rerun included.
tests/unit/test_snakemake_conventions.py checks this copy against the adapters."""
CANONICAL_FORMAT = "netcdf"
""":data:`trainset.io.base.CANONICAL_FORMAT` (checked equal by the same test)."""
DEFAULT_JOBS = 1
""":data:`trainset.io.base.DEFAULT_JOBS` (checked equal by the same test)."""
FRAMES_MODEL = "diffusion"
"""The model of the flu mixes' task, ``frames``, the one generative task: it draws frames when
evaluated (``trainset.tasks.TASKS["frames"].model``). DIFFUSION_STEPS: its default ``steps``
(``FrameDiffusion.DEFAULTS``). Both checked equal by tests/models/test_models.py and known here
without importing torch or the task registry: the workflow's start-up check of
``evaluation.sample_steps`` needs them."""
DIFFUSION_STEPS = 200


LOCK_DIR = Path(".snakemake") / "locks"
OWNER_FILE = "trainset-owner.json"
"""Beside Snakemake's ``<n>.input.lock`` files (which Snakemake alone reads), removed with them."""


def record_lock_owner(folder: str | os.PathLike = ".") -> None:
    """Record this process (host, pid, start time) beside the lock of a run in ``folder``."""
    locks = Path(folder) / LOCK_DIR
    locks.mkdir(parents=True, exist_ok=True)
    owner = {"host": socket.gethostname(), "pid": os.getpid(), "started": _start_time(os.getpid())}
    (locks / OWNER_FILE).write_text(json.dumps(owner) + "\n")


def release_stale_lock(folder: str | os.PathLike = ".") -> bool:
    """Remove the lock of ``folder`` if the run that took it is gone; True when removed.

    Gone means: the recorded host is this one, and its pid is no longer running (or is a
    zombie, or was reused by a process started at another time). Without a record (a run
    killed before it started jobs, or another tool) the lock stays, and Snakemake's message
    says to run ``snakemake --unlock``.
    """
    locks = Path(folder) / LOCK_DIR
    if not any(locks.glob("*.lock")):
        return False
    try:
        owner = json.loads((locks / OWNER_FILE).read_text())
        host, pid, started = owner["host"], int(owner["pid"]), owner.get("started")
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if host != socket.gethostname() or _running(pid, started):
        return False
    shutil.rmtree(locks, ignore_errors=True)
    logger.warning("released the lock left by a run that is gone (pid %d on %s)", pid, host)
    return True


def _running(pid: int, started: str | None) -> bool:
    """Whether ``pid`` is a live (not zombie) process started at ``started`` (when known)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    stat = _proc_stat(pid)
    if stat is None:
        return True  # no /proc (not Linux): trust the signal check
    return stat[0] != "Z" and (started is None or stat[19] == started)


def _start_time(pid: int) -> str | None:
    """The process start time in clock ticks since boot (Linux), to tell a reused pid apart."""
    stat = _proc_stat(pid)
    return stat[19] if stat else None


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3.. of ``/proc/<pid>/stat`` (state first), or None where there is no /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()
