"""The leader holds the due tasks of open breakers until the probe time, and buries those held
past BREAKER_MAX_DEFER_SECONDS."""

from collections import defaultdict
from datetime import datetime, timedelta
from functools import partial

from django.db import transaction
from django.utils import timezone

from callbacks import conf
from callbacks.delivery.instruments import accounting
from callbacks.domain.vocabulary import CLAIMABLE_STATUSES
from callbacks.models import BreakerState, CallbackTask, CircuitBreaker, TaskEvent, TaskStatus

# Tasks moved or buried per origin and sweep: bounds one sweep's transaction; the next sweep
# (about a second later) goes on.
SWEEP_BATCH = 2000


def sweep(*, now: datetime | None = None) -> tuple[int, int]:
    """Bury tasks held past the maximum deferral, hold the due tasks of open breakers until the
    probe time. Returns (held, buried). The leader runs it about once a second.

    Holding moves next_attempt_at to the probe time, so held tasks leave the dispatcher's claim
    scan (a broken receiver may gather a large backlog) and the task shows when it will be tried;
    due_at keeps the time it became due, from which the maximum deferral counts. The first hold of
    a task since it became due writes one event saying why (next_attempt_at == due_at marks a task
    not held yet); later holds, after failed probes, write none.
    """
    now = now or timezone.now()
    rows = list(
        CircuitBreaker.objects.exclude(state=BreakerState.CLOSED).values_list(
            "origin", "state", "next_probe_at"
        )
    )
    if not rows:
        return 0, 0
    buried = bury_overdue(origins=[origin for origin, _state, _at in rows], now=now)
    held = sum(
        _hold(origin, until=probe_at, now=now)
        for origin, state, probe_at in rows
        if state == BreakerState.OPEN and probe_at is not None and probe_at > now
    )
    return held, buried


def _hold(origin: str, *, until: datetime, now: datetime) -> int:
    note = (
        f"held: the circuit breaker of {origin} is open; next probe at {until.isoformat(timespec='seconds')}"
    )
    with transaction.atomic():
        rows = list(
            CallbackTask.objects.select_for_update(skip_locked=True)
            .filter(origin=origin, status__in=CLAIMABLE_STATUSES, next_attempt_at__lte=now)
            .values_list("id", "status", "next_attempt_at", "due_at")[:SWEEP_BATCH]
        )
        if not rows:
            return 0
        CallbackTask.objects.filter(id__in=[row[0] for row in rows]).update(
            next_attempt_at=until, updated_at=now
        )
        TaskEvent.objects.bulk_create(
            TaskEvent(task_id=task_id, at=now, from_status=status, to_status=status, note=note[:500])
            for task_id, status, next_attempt_at, due_at in rows
            if next_attempt_at == due_at
        )
    return len(rows)


def bury_overdue(*, origins: list, now: datetime) -> int:
    """Tasks of these (breaker-held) origins due longer ago than BREAKER_MAX_DEFER_SECONDS go dead."""
    max_defer = conf.get("BREAKER_MAX_DEFER_SECONDS")
    with transaction.atomic():
        tasks = list(
            CallbackTask.objects.select_for_update(skip_locked=True).filter(
                origin__in=origins,
                status__in=CLAIMABLE_STATUSES,
                due_at__lte=now - timedelta(seconds=max_defer),
            )[:SWEEP_BATCH]
        )
        if not tasks:
            return 0
        was = {task.id: task.status for task in tasks}
        by_origin = defaultdict(list)
        for task in tasks:
            by_origin[task.origin].append(task)
        for origin, group in by_origin.items():
            error = (
                f"the circuit breaker of {origin} held it for more than {max_defer:g} s past its due "
                f"time (BREAKER_MAX_DEFER_SECONDS); not attempted again"
            )
            CallbackTask.objects.filter(id__in=[task.id for task in group]).update(
                status=TaskStatus.DEAD,
                next_attempt_at=None,
                finished_at=now,
                last_error=error,
                updated_at=now,
            )
            for task in group:
                task.status, task.next_attempt_at, task.last_error, task.finished_at = (
                    TaskStatus.DEAD,
                    None,
                    error,
                    now,
                )
        TaskEvent.objects.bulk_create(
            TaskEvent(
                task_id=task.id,
                at=now,
                from_status=was[task.id],
                to_status=TaskStatus.DEAD,
                note=task.last_error[:500],
            )
            for task in tasks
        )
        transaction.on_commit(partial(_buried, tasks))
    return len(tasks)


def _buried(tasks) -> None:
    """Metrics and dead-letter notifications, as for any dead task."""
    for task in tasks:
        accounting.task_finished(task, TaskStatus.DEAD)
