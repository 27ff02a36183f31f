"""Reads about queues: which are declared, what waits in each, and which are paused.

A queue is a name on tasks (`CallbackTask.queue`) served by the django-q2 cluster of that name.
It exists before it is used: operators declare it (`manage.py queue create NAME`, the admin),
which writes its QueueState row, and `default` always exists. A callback naming any other queue
is refused, so no tenant can park work in a queue that no cluster will ever serve. Counts cover
the statuses of work not yet finished: counting a queue's whole history would read every task
ever sent.
"""

from datetime import datetime, timedelta

from django.db.models import Count

from callbacks.domain.vocabulary import UNFINISHED_STATUSES
from callbacks.models import CallbackTask, Heartbeat, QueueState

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
    live = [info or {} for info in infos]
    if not live:
        return None
    return {info.get("queue", DEFAULT_QUEUE) for info in live}


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
