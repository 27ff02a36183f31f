"""Writes on queues: declare, pause, resume, purge.

A queue exists before it is used: queue_create declares it (its QueueState row), and only
declared queues (and `default`, always) are accepted on a callback (queue_check).

Pausing a queue keeps its tasks: the dispatcher stops claiming them (leases.claimable_tasks) and
takes them up again on resume. Tasks already handed to a worker finish. Pause and resume act on a
queue for every tenant, so they are operator actions (`manage.py queue`, admin); a purge may be
narrowed to one tenant, which is how the API offers it.
"""

from django.db import transaction
from django.utils import timezone

from callbacks import queues
from callbacks.domain.callback import clean_queue_name
from callbacks.domain.vocabulary import WAITING_STATUSES
from callbacks.errors import ApplicationError
from callbacks.models import CallbackTask, QueueState, TaskEvent, TaskStatus, Tenant
from callbacks.services.audit import audit_record
from callbacks.wakeup import notify_dispatcher

PURGE_BATCH = 1000


UNKNOWN_QUEUE = "no such queue: an operator declares it first (manage.py queue create NAME, or the admin)"


def queue_create(*, name: str, actor_type: str, actor: str) -> tuple[QueueState, bool]:
    """Declare a queue (running); (its row, False) when it was declared already."""
    _check_name(name)
    with transaction.atomic():
        state, created = QueueState.objects.get_or_create(name=name)
        if created:
            audit_record(
                actor_type=actor_type,
                actor=actor,
                tenant=None,
                action="queue.create",
                obj=state,
                before=None,
                after={"paused": state.paused},
            )
    return state, created


def queue_check(names, *, field: str = "queue") -> None:
    """400 naming `field` when a callback names a queue nobody declared."""
    unknown = queues.undeclared_queues(names)
    if unknown:
        raise ApplicationError(
            "Invalid input.",
            code="queue_unknown",
            fields={field: [f"{UNKNOWN_QUEUE}: {', '.join(sorted(unknown))}"]},
        )


def queue_pause(*, name: str, actor_type: str, actor: str) -> QueueState:
    return _set_paused(name=name, paused=True, actor_type=actor_type, actor=actor)


def queue_resume(*, name: str, actor_type: str, actor: str) -> QueueState:
    return _set_paused(name=name, paused=False, actor_type=actor_type, actor=actor)


def _set_paused(*, name: str, paused: bool, actor_type: str, actor: str) -> QueueState:
    _check_declared(name)
    with transaction.atomic():
        state, _ = QueueState.objects.select_for_update().get_or_create(name=name)
        if state.paused == paused:
            return state
        state.paused = paused
        state.updated_at = timezone.now()
        state.save(update_fields=["paused", "updated_at"])
        audit_record(
            actor_type=actor_type,
            actor=actor,
            tenant=None,
            action="queue.pause" if paused else "queue.resume",
            obj=state,
            before={"paused": not paused},
            after={"paused": paused},
        )
        if not paused:
            transaction.on_commit(notify_dispatcher)  # its waiting tasks are claimable again
    return state


def queue_purge(*, name: str, actor_type: str, actor: str, tenant: Tenant | None = None) -> int:
    """Cancel every task of the queue not handed to a worker yet (scheduled, retrying, queued: a
    queued task's worker starts it only if it is still queued, so none of them is sent). Running
    tasks finish. Only `tenant`'s tasks when given. Returns how many were cancelled."""
    _check_declared(name)
    state, _ = QueueState.objects.get_or_create(name=name)  # `default` may have no row yet
    cancelled = 0
    while True:
        # Short transactions of PURGE_BATCH rows: a purge of millions never holds locks for long.
        count = _purge_batch(name=name, tenant=tenant, actor=actor)
        cancelled += count
        if count < PURGE_BATCH:
            break
    audit_record(
        actor_type=actor_type,
        actor=actor,
        tenant=tenant,
        action="queue.purge",
        obj=state,
        before=None,
        after={"cancelled": cancelled, "tenant": str(tenant.pk) if tenant else None},
    )
    if cancelled:
        notify_dispatcher()  # keyed tasks elsewhere may have been waiting for these
    return cancelled


def _purge_batch(*, name: str, tenant: Tenant | None, actor: str) -> int:
    with transaction.atomic():
        waiting = CallbackTask.objects.filter(queue=name, status__in=WAITING_STATUSES)
        if tenant is not None:
            waiting = waiting.filter(tenant=tenant)
        rows = list(waiting.select_for_update().values_list("id", "status")[:PURGE_BATCH])
        if not rows:
            return 0
        now = timezone.now()
        CallbackTask.objects.filter(id__in=[task_id for task_id, _ in rows]).update(
            status=TaskStatus.CANCELLED, finished_at=now, updated_at=now, locked_until=None, locked_by=""
        )
        TaskEvent.objects.bulk_create(
            TaskEvent(
                task_id=task_id,
                at=now,
                from_status=status,
                to_status=TaskStatus.CANCELLED,
                note=f"queue {name} purged by {actor}"[:500],
            )
            for task_id, status in rows
        )
    return len(rows)


def _check_name(name: str) -> None:
    try:
        clean_queue_name(name)
    except ValueError:
        raise ApplicationError(
            "Invalid input.",
            fields={"name": ["a queue name: lower-case letters, digits, _ and -, at most 64"]},
        ) from None


def _check_declared(name: str) -> None:
    _check_name(name)
    queue_check([name], field="name")
