"""A cluster's processes die with the process that started them.

django-q2's sentinel is forked by the qcluster's main process and forks the workers, the pusher
and the monitor. When the main process is killed (`kill -9`, the OOM killer) nothing tells them:
they went on claiming batches from the broker and delivering, so a supervisor restarting the
cluster made two of it. Each of them asks the kernel for SIGKILL when its parent dies
(prctl PR_SET_PDEATHSIG, Linux): the sentinel when the main process dies, its children when the
sentinel dies. What they had under way comes back by its lease, as from any killed worker.
"""

import ctypes
import logging
import os
import signal
import sys

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent(parent_pid: int) -> None:
    """SIGKILL this process when its parent dies; exit now if it died before this was asked."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            logger.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    # The parent may have died between the fork and the prctl: then no signal ever comes.
    if os.getppid() != parent_pid:
        os._exit(1)


def install() -> None:
    """Make the cluster's sentinel die with the main process and its children with the sentinel
    (in the main process, before the cluster starts; after crashsafe_queue.install, whose worker
    it wraps)."""
    import django_q.cluster

    cluster = django_q.cluster
    # The sentinel is forked by this (the main) process.
    cluster.Sentinel = _sentinel(cluster.Sentinel)
    # The sentinel's children are forked by the sentinel: the parent's pid is read in it, at fork
    # time. Sentinel.spawn_process tells a worker by `target == worker`, with the module's name.
    for name in ("worker", "pusher", "monitor"):
        setattr(cluster, name, _child(getattr(cluster, name)))


# In the sentinel's process, its own pid: its children, forked from it, inherit it.
_sentinel_pid: int | None = None


def _sentinel(sentinel_class):
    main_pid = os.getpid()

    def sentinel(*args, **kwargs):
        global _sentinel_pid
        die_with_parent(main_pid)
        _sentinel_pid = os.getpid()
        return sentinel_class(*args, **kwargs)

    return sentinel


def _child(target):
    def child(*args, **kwargs):
        die_with_parent(_sentinel_pid if _sentinel_pid is not None else os.getppid())
        return target(*args, **kwargs)

    return child
