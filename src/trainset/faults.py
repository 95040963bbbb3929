"""A test-only fault hook: kill the run at a named point, to prove recovery from a real crash.

``TRAINSET_FAULT=<point>:<index>`` (for example ``netcdf_block:3``) makes :func:`maybe_fail`
send SIGKILL to its whole process group when the library reaches that point for that index,
as a power cut, the OOM killer or a lost node would: no ``finally`` block, no cleanup and no
Snakemake bookkeeping runs. ``<point>:<index>:SIGINT`` sends SIGINT instead, as Ctrl-C in a
terminal does to the foreground group: Snakemake and the job stop the way they do on a Ctrl-C. The kill tests (tests/hostile/test_kill_recovery.py) start
Snakemake in a session of its own, so the group is that run and nothing else. Points:

``netcdf_block``
    after block ``index`` (counted from 1) is written into a NetCDF file's temporary;
``zarr_gather``
    after an array's chunk file ``index`` (counted from 1) is linked into a gathered Zarr
    temporary;
``checkpoint``
    after epoch ``index``'s checkpoints are saved, while ``last.pt`` is being written.

Unset (always, outside those tests) it costs one environment lookup.
"""

from __future__ import annotations

import os
import signal

FAULT_VARIABLE = "TRAINSET_FAULT"


def maybe_fail(point: str, index: int) -> None:
    """SIGKILL (or the signal it names) this process group if ``TRAINSET_FAULT`` names ``point``
    and ``index``."""
    fault = os.environ.get(FAULT_VARIABLE)
    if not fault:
        return
    where, _, name = fault.partition(f"{point}:{index}")
    if where == "" and name in ("", ":SIGINT"):
        os.killpg(os.getpgrp(), signal.SIGINT if name else signal.SIGKILL)
