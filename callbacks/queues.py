"""Reads about queues: which are declared, what waits in each, and which are paused.

A queue is a name on tasks (`CallbackTask.queue`) served by the django-q2 cluster of that name.
It exists before it is used: operators declare it (`manage.py queue create NAME`, the admin),
which writes its QueueState row, and `default` always exists. A callback naming any other queue
is refused, so no tenant can park work in a queue that no cluster will ever serve. Counts cover
the statuses of work not yet finished: counting a queue's whole history would read every task
ever sent.
"""

import threading
import time
from datetime import datetime, timedelta

from django.db.models import Count
from django.utils import timezone
from django_q.conf import Conf

from callbacks.domain.vocabulary import UNFINISHED_STATUSES
from callbacks.models import CallbackTask, Heartbeat, QueueState

# How long a process keeps the set of queues operators run, and for how long a cluster, once seen,
# keeps its queue in that set (so a restart does not rename its series "other" for a moment).
OPERATOR_QUEUES_CACHE_SECONDS = 30.0
OPERATOR_QUEUE_MEMORY = timedelta(days=1)

DEFAULT_QUEUE = "default"


def declared_queues() -> list[str]:
    """Every declared queue, by name; `default` always."""
    return sorted(set(QueueState.objects.values_list("name", flat=True)) | {DEFAULT_QUEUE})


def undeclared_queues(names) -> set[str]:
    """Those of `names` that are no declared queue."""
    wanted = set(names) - {DEFAULT_QUEUE}
    if not wanted:
        return set()
    return wanted - set(QueueState.objects.filter(name__in=wanted).values_list("name", flat=True))


def served_queues(*, now: datetime, within_seconds: float) -> set[str] | None:
    """Queues a live worker process serves (its heartbeat, within `within_seconds`, names its
    cluster's queue); None when no worker is alive at all (nothing is delivered then, for anyone)."""
    since = now - timedelta(seconds=within_seconds)
    infos = Heartbeat.objects.filter(role="worker", seen_at__gte=since).values_list("info", flat=True)
    live = [info if isinstance(info, dict) else {} for info in infos]
    if not live:
        return None
    return {info.get("queue") or DEFAULT_QUEUE for info in live}


def queue_list(*, tenant=None) -> list[dict]:
    """[{"name", "paused", "counts": {status: n}}] by name: every declared queue, with its unfinished
    work (the tenant's when given)."""
    tasks = CallbackTask.objects.filter(status__in=UNFINISHED_STATUSES)
    if tenant is not None:
        tasks = tasks.filter(tenant=tenant)
    counts: dict[str, dict] = {}
    for row in tasks.values("queue", "status").annotate(n=Count("id")).order_by():
        counts.setdefault(row["queue"], {})[row["status"]] = row["n"]
    paused = dict(QueueState.objects.values_list("name", "paused"))
    names = sorted(set(counts) | set(paused) | {DEFAULT_QUEUE})
    return [
        {
            "name": name,
            "paused": paused.get(name, False),
            "counts": {status: counts.get(name, {}).get(status, 0) for status in UNFINISHED_STATUSES},
        }
        for name in names
    ]


class _OperatorQueues:
    def __init__(self):
        self.lock = threading.Lock()
        self.names: frozenset[str] = frozenset()
        self.loaded_at = float("-inf")


_operator_queues = _OperatorQueues()


def operator_queues() -> frozenset[str]:
    """The queues operators run: `default`, those they declared, the one this process's cluster serves, and
    those of the worker clusters seen lately (each names its queue in its heartbeat). A tenant can put any name on a task, but
    only an operator starts a cluster, so these names are the operators'. Read at most every
    OPERATOR_QUEUES_CACHE_SECONDS; on a database error the names known so far."""
    if time.monotonic() - _operator_queues.loaded_at > OPERATOR_QUEUES_CACHE_SECONDS:
        with _operator_queues.lock:
            if time.monotonic() - _operator_queues.loaded_at > OPERATOR_QUEUES_CACHE_SECONDS:
                _operator_queues.names = _load_operator_queues()
                _operator_queues.loaded_at = time.monotonic()
    return _operator_queues.names


def forget_operator_queues() -> None:
    """Read the operators' queues again at the next call (tests; a cluster just started)."""
    _operator_queues.loaded_at = float("-inf")


def served_here() -> str:
    """The queue this process's django-q2 cluster serves (Q_CLUSTER_NAME, else Q_CLUSTER["name"])."""
    return Conf.CLUSTER_NAME or "default"


def _load_operator_queues() -> frozenset[str]:
    own = {"default", served_here()}
    try:
        seen = (
            served_queues(now=timezone.now(), within_seconds=OPERATOR_QUEUE_MEMORY.total_seconds()) or set()
        )
        declared = set(QueueState.objects.values_list("name", flat=True))
    except Exception:  # the database is away: keep labelling with what was known
        return _operator_queues.names | own
    return frozenset(own | declared | {name for name in seen if isinstance(name, str) and name})
