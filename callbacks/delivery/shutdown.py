"""Graceful shutdown of a worker cluster.

django-q2 stops its workers with "STOP" pills after they finish the batches they prefetched,
and never tells them that the cluster is stopping. Our `qcluster` command creates one
`multiprocessing.Event` before the cluster forks, so every worker process inherits it, and
sets it on SIGTERM/SIGINT. A worker that sees it starts nothing new: the rest of its batches go
back to the database at once; callbacks already in flight get SHUTDOWN_GRACE_SECONDS to finish.
"""

import multiprocessing

_stopping = None


def prepare() -> None:
    """In the cluster's main process, before it forks."""
    global _stopping
    _stopping = multiprocessing.get_context("fork").Event()


def begin() -> None:
    if _stopping is not None:
        _stopping.set()


def stopping() -> bool:
    return _stopping is not None and _stopping.is_set()
