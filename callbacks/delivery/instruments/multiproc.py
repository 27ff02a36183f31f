"""Housekeeping of prometheus_client's multiprocess directory (PROMETHEUS_MULTIPROC_DIR).

Counters and histograms of dead processes stay: their counts must survive worker recycling.
"live" gauges (in flight, pool connections) of a dead process must go, or its last value would
be added forever; mark_process_dead removes them when a worker exits cleanly, and the sweep
below catches processes that were killed.
"""

import os
import re
import time
from pathlib import Path

from prometheus_client import multiprocess, values

_LIVE_GAUGE_FILE = re.compile(r"^gauge_live\w*?_(\d+)\.db$")
_SWEEP_INTERVAL_SECONDS = 10.0
_last_sweep = 0.0


def directory() -> Path | None:
    """The directory, if this process's prometheus_client runs in multiprocess mode."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path or values.ValueClass is values.MutexValue:
        return None  # set after prometheus_client was imported: this process keeps its own registry
    return Path(path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def sweep_dead_processes(*, force: bool = False) -> list[int]:
    """Drop the live-gauge files of processes that no longer exist; at most every few seconds."""
    global _last_sweep
    path = directory()
    now = time.monotonic()
    if path is None or (not force and now - _last_sweep < _SWEEP_INTERVAL_SECONDS):
        return []
    _last_sweep = now
    dead = set()
    for entry in os.scandir(path):
        match = _LIVE_GAUGE_FILE.match(entry.name)
        if match and not _pid_alive(int(match.group(1))):
            dead.add(int(match.group(1)))
    for pid in dead:
        multiprocess.mark_process_dead(pid, str(path))
    return sorted(dead)


def process_exited(pid: int | None = None) -> None:
    """Call when a worker process ends (django-q2 worker exit): its live gauges stop counting."""
    path = directory()
    if path is not None:
        multiprocess.mark_process_dead(pid or os.getpid(), str(path))
