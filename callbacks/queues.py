"""Reads about queues: what waits in each, and which are paused.

A queue is a name on tasks (`CallbackTask.queue`) served by the django-q2 cluster of that name;
QueueState holds the operator's pause switch. Counts cover the statuses of work not yet finished:
counting a queue's whole history would read every task ever sent.
"""

from django.db.models import Count

from callbacks.domain.vocabulary import UNFINISHED_STATUSES
from callbacks.models import CallbackTask, QueueState


def queue_list(*, tenant=None) -> list[dict]:
    """[{"name", "paused", "counts": {status: n}}] by name: every queue with unfinished work (the tenant's
    when given) and every queue an operator has paused or resumed."""
    tasks = CallbackTask.objects.filter(status__in=UNFINISHED_STATUSES)
    if tenant is not None:
        tasks = tasks.filter(tenant=tenant)
    counts: dict[str, dict] = {}
    for row in tasks.values("queue", "status").annotate(n=Count("id")).order_by():
        counts.setdefault(row["queue"], {})[row["status"]] = row["n"]
    paused = dict(QueueState.objects.values_list("name", "paused"))
    names = sorted(set(counts) | set(paused) | {"default"})
    return [
        {
            "name": name,
            "paused": paused.get(name, False),
            "counts": {status: counts.get(name, {}).get(status, 0) for status in UNFINISHED_STATUSES},
        }
        for name in names
    ]
