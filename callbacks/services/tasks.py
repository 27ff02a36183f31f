"""Writes on callback tasks: create (one or a batch), cancel, retry.

Every callback is checked here with the domain's rules (callbacks.domain.callback), whoever calls:
the API, a command, a schedule's fire.
"""

import contextlib
import uuid
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from callbacks import conf, tracing, whitelist
from callbacks.domain import encoding, tracecontext
from callbacks.domain.bounds import MAX_BATCH
from callbacks.domain.callback import clean_callback, request_fingerprint
from callbacks.domain.statuses import DEFAULT as DEFAULT_SUCCESS_STATUSES
from callbacks.domain.urls import url_origin, url_path_and_query
from callbacks.domain.vocabulary import RETRYABLE_STATUSES, UNFINISHED_STATUSES, ActorType
from callbacks.errors import ApplicationError, ConflictError
from callbacks.models import CallbackTask, TaskEvent, TaskOrigin, TaskSearchPath, TaskStatus, Tenant
from callbacks.queues import DEFAULT_QUEUE, undeclared_queues
from callbacks.services.audit import audit_record
from callbacks.services.queues import UNKNOWN_QUEUE
from callbacks.wakeup import notify_dispatcher, notify_due


def task_create(
    *,
    tenant: Tenant,
    data: dict,
    actor_type: str = ActorType.TENANT,
    actor: str = "",
    strict_idempotency: bool = True,
) -> tuple[CallbackTask, bool]:
    """A new scheduled task, or (the tenant's existing task, False) when its idempotency_key repeats.

    With `strict_idempotency` the key must come back with the same request, else ConflictError
    `idempotency_key_reused`: a client reusing a key for another callback would otherwise lose it without a
    word. The system's own keys (a schedule's fire, a failure notification) name an event whose details
    may differ when it is made again; those callers pass False and get the task already made.
    """
    data = clean_callback(data)
    _refuse_undeclared_queues(items=[data], batch=False)
    _refuse_unlisted_urls(tenant=tenant, items=[data], batch=False)
    key = data.get("idempotency_key")
    with transaction.atomic():
        task = _build_task(tenant=tenant, data=data, now=timezone.now())
        existing = _existing_task(tenant=tenant, key=key)
        if existing is not None:
            return _repeated(existing, task, strict=strict_idempotency), False
        try:
            # A savepoint, so that losing the race for the key leaves the outer transaction usable.
            with transaction.atomic(), _creation_span("callback create", tenant=tenant, tasks=[task]):
                task.save(force_insert=True)
                task_search_entries_create(tasks=[task])
        except IntegrityError:
            if key is None:
                raise
            # Another request registered the key between our read and our insert.
            existing = CallbackTask.objects.get(tenant=tenant, idempotency_key=key)
            return _repeated(existing, task, strict=strict_idempotency), False
        TaskEvent.objects.create(
            task=task, at=task.created_at, from_status="", to_status=task.status, note="created"
        )
        audit_record(
            actor_type=actor_type,
            actor=actor,
            tenant=tenant,
            action="task.create",
            obj=task,
            before=None,
            after=_audit_state(task),
        )
        _notify_if_due_soon([task])
    return task, True


def _refuse_unlisted_urls(*, tenant: Tenant, items: list[dict], batch: bool) -> None:
    """400 on `url` (per index in a batch) for targets outside the whitelist of a tenant that enforces it."""
    denied = whitelist.creation_denial(tenant=tenant, urls=[item["url"] for item in items])
    if not denied:
        return
    message = "The URL is not on the tenant's whitelist."
    if batch:
        fields = {"callbacks": {str(index): {"url": [reason]} for index, reason in denied.items()}}
    else:
        fields = {"url": [denied[0]]}
    raise ApplicationError(message, code="whitelist_denied", fields=fields)


KEY_REUSED = "idempotency_key_reused"


def _repeated(existing: CallbackTask, asked: CallbackTask, *, strict: bool) -> CallbackTask:
    """The task that has the key already, if `asked` is the request that made it."""
    if strict and not _same_request(existing, asked):
        raise ConflictError(
            "The idempotency_key was used for a different request; use a new key for a new callback.",
            code=KEY_REUSED,
            fields={"idempotency_key": [f"already used by task {existing.id} with a different request"]},
        )
    return existing


def _same_request(existing: CallbackTask, asked: CallbackTask) -> bool:
    # Tasks made before fingerprints were recorded cannot be compared: the key alone decides, as it did.
    return not existing.request_fingerprint or existing.request_fingerprint == asked.request_fingerprint


def _refuse_undeclared_queues(*, items: list[dict], batch: bool) -> None:
    """400 on `queue` (per index in a batch) for a queue no operator declared: work parked where no
    cluster serves it would wait for ever."""
    unknown = undeclared_queues({item.get("queue", DEFAULT_QUEUE) for item in items})
    if not unknown:
        return
    reason = [UNKNOWN_QUEUE]
    if batch:
        fields = {
            "callbacks": {
                str(index): {"queue": reason}
                for index, item in enumerate(items)
                if item.get("queue", DEFAULT_QUEUE) in unknown
            }
        }
    else:
        fields = {"queue": reason}
    raise ApplicationError("Invalid input.", code="queue_unknown", fields=fields)


def _existing_task(*, tenant: Tenant, key: str | None) -> CallbackTask | None:
    if key is None:
        return None
    return CallbackTask.objects.filter(tenant=tenant, idempotency_key=key).first()


def task_create_batch(
    *,
    tenant: Tenant,
    items: list[dict],
    actor_type: str = ActorType.TENANT,
    actor: str = "",
    traceparent: str = "",
) -> list[CallbackTask]:
    """All the items as tasks, in order, or none (one transaction). A repeated idempotency_key, in the batch
    or against an existing task, yields the task that already has it in that position; a key repeated with
    a different request refuses the batch (409 `idempotency_key_reused`, by index). `traceparent`: the
    request's, the parent of the batch's creation span when traces are exported."""
    if len(items) > MAX_BATCH:
        raise ApplicationError(
            f"At most {MAX_BATCH} callbacks per batch.", fields={"callbacks": ["too many"]}
        )
    items = _clean_batch(items)
    _refuse_undeclared_queues(items=items, batch=True)
    _refuse_unlisted_urls(tenant=tenant, items=items, batch=True)
    for attempt in range(3):
        try:
            with transaction.atomic():
                tasks, new_tasks = _batch_insert(tenant=tenant, items=items, traceparent=traceparent)
                _batch_record(tenant=tenant, new_tasks=new_tasks, actor_type=actor_type, actor=actor)
                _notify_if_due_soon(new_tasks)
                return tasks
        except IntegrityError:
            # Another request took one of the keys between our read and our insert: read again.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _clean_batch(items: list[dict]) -> list[dict]:
    """Every item checked; the refusals by index, as {"callbacks": {"3": {"url": [...]}}}."""
    cleaned, errors, status = [], {}, None
    for index, item in enumerate(items):
        try:
            cleaned.append(clean_callback(item))
        except ApplicationError as exc:
            errors[str(index)] = exc.fields
            status = max(status or 0, exc.status)
    if errors:
        raise ApplicationError("Invalid input.", fields={"callbacks": errors}, status=status)
    return cleaned


def _batch_insert(
    *, tenant: Tenant, items: list[dict], traceparent: str
) -> tuple[list[CallbackTask], list[CallbackTask]]:
    keys = {item["idempotency_key"] for item in items if item.get("idempotency_key") is not None}
    by_key = {
        task.idempotency_key: task
        for task in CallbackTask.objects.filter(tenant=tenant, idempotency_key__in=keys)
    }
    now = timezone.now()
    tasks, new_tasks, reused = [], [], {}
    for index, item in enumerate(items):
        key = item.get("idempotency_key")
        asked = _build_task(tenant=tenant, data=item, now=now)
        task = by_key.get(key) if key is not None else None
        if task is None:
            task = asked
            # One microsecond apart: ordering keys deliver in creation order, and that is the batch's order.
            task.created_at = task.updated_at = now + timedelta(microseconds=index)
            new_tasks.append(task)
            if key is not None:
                by_key[key] = task
        elif not _same_request(task, asked):
            reused[str(index)] = {"idempotency_key": ["already used with a different request"]}
        tasks.append(task)
    if reused:
        raise ConflictError(
            "An idempotency_key was used for a different request; use a new key for a new callback.",
            code=KEY_REUSED,
            fields={"callbacks": reused},
        )
    # _clean_batch has checked every field; full_clean would add a query per row for the key constraint.
    with _creation_span("callback create_batch", tenant=tenant, tasks=new_tasks, parent=traceparent):
        CallbackTask.objects.bulk_create(new_tasks)
        task_search_entries_create(tasks=new_tasks)
    return tasks, new_tasks


def task_search_entries_create(*, tasks: list[CallbackTask]) -> None:
    """What task_search looks URL fragments up in, once: a task's URL never changes."""
    TaskSearchPath.objects.bulk_create(
        [TaskSearchPath(task=task, path=url_path_and_query(task.url).lower()) for task in tasks]
    )
    TaskOrigin.objects.bulk_create(
        [TaskOrigin(origin=origin) for origin in sorted({task.origin for task in tasks})],
        ignore_conflicts=True,
    )


def task_search_entries_backfill(*, batch_size: int = 1000) -> int:
    """Write the search rows of the tasks that have none, in batches by id: tasks the previous release
    made while an upgrade to this one ran (its migration wrote those of the tasks already there). Returns
    how many tasks it wrote them for."""
    done, last = 0, None
    while True:
        tasks = CallbackTask.objects.exclude(pk__in=TaskSearchPath.objects.values("task_id")).order_by("pk")
        batch = list((tasks.filter(pk__gt=last) if last else tasks).only("pk", "url", "origin")[:batch_size])
        if not batch:
            return done
        with transaction.atomic():
            task_search_entries_create(tasks=batch)
        done, last = done + len(batch), batch[-1].pk


@contextlib.contextmanager
def _creation_span(name: str, *, tenant: Tenant, tasks: list[CallbackTask], parent: str | None = None):
    """When traces are exported, a span around the insert, and the tasks of its trace continue from it
    (their attempts become its children). One task: the span continues the task's own traceparent,
    else starts its trace. A batch: the request's traceparent (`parent`), else a trace of its own."""
    if not tracing.enabled() or not tasks:
        yield
        return
    first = tasks[0]
    if parent is None:
        parent, trace_id = first.traceparent, tracecontext.trace_id_of(first.trace_id)
    else:
        trace_id = ""
    attributes = {"callbacks.tenant": tenant.name, "callbacks.tasks": len(tasks)}
    if len(tasks) == 1:
        attributes["callbacks.task_id"] = str(first.id)
    with tracing.span(name, kind="internal", parent=parent, trace_id=trace_id, attributes=attributes) as span:
        created = tracing.traceparent_of(span)
        created_trace = tracecontext.parse_traceparent(created).trace_id
        for task in tasks:
            if tracecontext.trace_id_of(task.trace_id) == created_trace:
                task.traceparent = created
        yield


def _batch_record(*, tenant: Tenant, new_tasks: list[CallbackTask], actor_type: str, actor: str) -> None:
    TaskEvent.objects.bulk_create(
        TaskEvent(task=task, at=task.created_at, from_status="", to_status=task.status, note="created")
        for task in new_tasks
    )
    if new_tasks:
        audit_record(
            actor_type=actor_type,
            actor=actor,
            tenant=tenant,
            action="task.create_batch",
            obj=new_tasks[0],
            before=None,
            after={"count": len(new_tasks), "ids": [str(task.id) for task in new_tasks]},
        )


def task_cancel(*, task: CallbackTask, actor_type: str = ActorType.TENANT, actor: str) -> CallbackTask:
    """Cancel a task that is not final yet; cancelling a cancelled task changes nothing."""
    with transaction.atomic():
        current = CallbackTask.objects.select_for_update().get(pk=task.pk)
        if current.status == TaskStatus.CANCELLED:
            return current
        if current.status not in UNFINISHED_STATUSES:
            raise ConflictError(
                f"The task is {current.status} and can no longer be cancelled.", code="task_final"
            )
        before = _audit_state(current)
        now = timezone.now()
        changes = {
            "status": TaskStatus.CANCELLED,
            "finished_at": now,
            "updated_at": now,
            "locked_until": None,
            "locked_by": "",
        }
        # Conditional on the status just read: a worker's writes are conditional too, so whichever of the
        # two comes second changes nothing. For a running task the attempt may still reach the receiver;
        # its result is recorded as an execution but the task stays cancelled.
        _conditional_update(current, from_status=current.status, changes=changes)
        _record_change(current, before, at=now, action="task.cancel", actor_type=actor_type, actor=actor)
        if current.ordering_key:
            transaction.on_commit(notify_dispatcher)  # the next task of its key may go now
    return current


def task_retry(*, task: CallbackTask, actor_type: str = ActorType.TENANT, actor: str) -> CallbackTask:
    """Send a failed, dead or retrying task again now."""
    with transaction.atomic():
        current = CallbackTask.objects.select_for_update().get(pk=task.pk)
        if current.status not in RETRYABLE_STATUSES:
            raise ConflictError(
                f"The task is {current.status}; only failed, dead or retrying tasks can be retried.",
                code="task_not_retryable",
            )
        before = _audit_state(current)
        now = timezone.now()
        changes = {
            "status": TaskStatus.SCHEDULED,
            "next_attempt_at": now,
            "due_at": now,
            "finished_at": None,
            "updated_at": now,
            "locked_until": None,
            "locked_by": "",
            # A dead task has used its whole budget (attempts > max_retries). Raising max_retries to the
            # attempts made so far grants exactly one more attempt, and keeps any budget it still has
            # (a failed or retrying task): the retry policy then decides from there as usual.
            "max_retries": max(current.max_retries, current.attempts),
        }
        _conditional_update(current, from_status=current.status, changes=changes)
        _record_change(current, before, at=now, action="task.retry", actor_type=actor_type, actor=actor)
        origins = set() if current.ordering_key else {current.origin}
        transaction.on_commit(lambda: notify_due(origins))  # due now: a lane of its origin may take it
    return current


_EVENT_NOTES = {"task.cancel": "cancelled by {actor}", "task.retry": "retried by {actor}"}


def _record_change(task: CallbackTask, before: dict, *, at, action: str, actor_type: str, actor: str) -> None:
    """What an operator or tenant changed: a status-history row and an audit row."""
    TaskEvent.objects.create(
        task=task,
        at=at,
        from_status=before["status"],
        to_status=task.status,
        note=_EVENT_NOTES[action].format(actor=actor),
    )
    audit_record(
        actor_type=actor_type,
        actor=actor,
        tenant=task.tenant,
        action=action,
        obj=task,
        before=before,
        after=_audit_state(task),
    )


def _conditional_update(task: CallbackTask, *, from_status: str, changes: dict) -> None:
    updated = CallbackTask.objects.filter(pk=task.pk, status=from_status).update(**changes)
    if updated != 1:
        # Only possible without a row lock (SQLite has none, but serialises writers): report it as a conflict.
        raise ConflictError("The task changed state meanwhile; try again.", code="task_changed")
    for name, value in changes.items():
        setattr(task, name, value)


def _build_task(*, tenant: Tenant, data: dict, now: datetime) -> CallbackTask:
    body_format = data.get("body_format", "json")
    payload = encoding.encode(
        data.get("body"), body_format
    )  # clean_callback checked it encodes, and its size
    run_at = _run_at(data, now)
    return CallbackTask(
        tenant=tenant,
        url=data["url"],
        origin=url_origin(data["url"]),
        method=data.get("method", "POST"),
        headers=data.get("headers") or {},
        body_format=body_format,
        payload=payload,
        run_at=run_at,
        priority=data.get("priority", 5),
        queue=data.get("queue", DEFAULT_QUEUE),
        ordering_key=data.get("ordering_key", ""),
        schedule=data.get("schedule"),  # set by a schedule's fire, never by API input
        business_id=data.get("business_id", ""),
        trace_id=data.get("trace_id") or _trace_of(data.get("traceparent")) or uuid.uuid4().hex,
        traceparent=data.get("traceparent") or "",
        idempotency_key=data.get("idempotency_key"),
        request_fingerprint=request_fingerprint(data),
        status=TaskStatus.SCHEDULED,
        next_attempt_at=run_at,
        due_at=run_at,
        created_at=now,
        updated_at=now,
        **resolve_policy(tenant=tenant, data=data),
    )


def _trace_of(traceparent: str | None) -> str:
    return tracecontext.parse_traceparent(traceparent).trace_id if traceparent else ""


def _run_at(data: dict, now: datetime) -> datetime:
    if data.get("run_at") is not None:
        return data["run_at"]
    if data.get("delay_seconds") is not None:
        return now + timedelta(seconds=data["delay_seconds"])
    return now


def resolve_policy(*, tenant: Tenant, data: dict) -> dict:
    """The task's retry and timeout policy: its own values over the tenant's over the installation's."""
    backoff = data.get("backoff") or {}
    timeout = data.get("timeout") or {}

    def pick(given, tenant_value, default_key):
        if given is not None:
            return given
        return tenant_value if tenant_value is not None else conf.get(default_key)

    initial = pick(backoff.get("initial_seconds"), tenant.backoff_initial_seconds, "BACKOFF_INITIAL")
    connect = pick(timeout.get("connect_seconds"), tenant.connect_timeout_seconds, "CONNECT_TIMEOUT")
    return {
        "max_retries": pick(data.get("max_retries"), tenant.max_retries, "MAX_RETRIES"),
        "backoff_initial_seconds": initial,
        "backoff_multiplier": pick(
            backoff.get("multiplier"), tenant.backoff_multiplier, "BACKOFF_MULTIPLIER"
        ),
        # A task's own value may sit on the other side of an inherited one (a first delay of 120 s under a
        # 60 s default cap): the value the caller chose wins, so the cap never falls below the first delay
        # and the total time never below the connect time.
        "backoff_max_seconds": max(
            initial, pick(backoff.get("max_seconds"), tenant.backoff_max_seconds, "BACKOFF_MAX")
        ),
        "connect_timeout_seconds": connect,
        "total_timeout_seconds": max(
            connect, pick(timeout.get("total_seconds"), tenant.total_timeout_seconds, "TOTAL_TIMEOUT")
        ),
        "success_statuses": data.get("success_statuses")
        or tenant.success_statuses
        or DEFAULT_SUCCESS_STATUSES,
    }


def _notify_if_due_soon(tasks: list[CallbackTask]) -> None:
    # Every creation wakes the dispatcher, delayed ones too: it then computes its sleep again, so a task
    # due before the time it meant to wake at is not late, whatever poll interval its process runs with.
    # The origins of those due now are named, so that a lane of theirs waiting for work takes them
    # (callbacks.delivery.worker). The dispatcher serves all pending wake-ups with one step.
    if not tasks:
        return
    now = timezone.now()
    origins = {task.origin for task in tasks if task.next_attempt_at <= now and not task.ordering_key}
    transaction.on_commit(lambda: notify_due(origins))


def _audit_state(task: CallbackTask) -> dict:
    return {
        "status": task.status,
        "attempts": task.attempts,
        "max_retries": task.max_retries,
        "next_attempt_at": task.next_attempt_at.isoformat() if task.next_attempt_at else None,
        "finished_at": task.finished_at.isoformat() if task.finished_at else None,
    }


REPLAY_BATCH = 500


def task_replay_dead(
    *,
    tenant: Tenant | None = None,
    since: datetime | None = None,
    task_ids=None,
    actor_type: str,
    actor: str,
    batch_size: int = REPLAY_BATCH,
    progress=None,
) -> int:
    """Send dead letters again now, as task_retry does; returns how many were re-queued.

    Narrowed to a tenant, to tasks that died at or after `since`, and/or to `task_ids`. Works in
    batches of one short transaction each, so a replay of thousands never holds locks for long;
    `progress(n)` is called after each batch with the tasks it re-queued. One audit row per batch.
    """
    dead = dead_letters(tenant=tenant, since=since, task_ids=task_ids)
    replayed, last = 0, None
    while True:
        # Keyset pagination by id: replayed rows leave the dead set, so offsets would skip some.
        page = dead if last is None else dead.filter(pk__gt=last)
        ids = list(page.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return replayed
        count = _replay_batch(ids, actor_type=actor_type, actor=actor)
        replayed += count
        last = ids[-1]
        if progress is not None:
            progress(count)


def dead_letters(*, tenant: Tenant | None = None, since: datetime | None = None, task_ids=None):
    """The dead tasks task_replay_dead would replay (a queryset; count it for a progress bar)."""
    dead = CallbackTask.objects.filter(status=TaskStatus.DEAD)
    if tenant is not None:
        dead = dead.filter(tenant=tenant)
    if since is not None:
        dead = dead.filter(finished_at__gte=since)
    if task_ids is not None:
        dead = dead.filter(pk__in=list(task_ids))
    return dead


def _replay_batch(ids: list, *, actor_type: str, actor: str) -> int:
    with transaction.atomic():
        # Locked and re-checked: a task retried meanwhile by someone else is left alone.
        tasks = list(CallbackTask.objects.select_for_update().filter(pk__in=ids, status=TaskStatus.DEAD))
        if not tasks:
            return 0
        now = timezone.now()
        updated = CallbackTask.objects.filter(
            pk__in=[task.pk for task in tasks], status=TaskStatus.DEAD
        ).update(
            status=TaskStatus.SCHEDULED,
            next_attempt_at=now,
            due_at=now,
            finished_at=None,
            updated_at=now,
            locked_until=None,
            locked_by="",
            # As in task_retry: exactly one more attempt for a task that used its whole budget.
            max_retries=Greatest(F("max_retries"), F("attempts")),
        )
        TaskEvent.objects.bulk_create(
            TaskEvent(
                task=task,
                at=now,
                from_status=TaskStatus.DEAD,
                to_status=TaskStatus.SCHEDULED,
                note=f"replayed by {actor}",
            )
            for task in tasks
        )
        groups = _by_tenant(tasks)
        tenants = Tenant.objects.in_bulk(list(groups))
        for tenant_id, group in groups.items():
            audit_record(
                actor_type=actor_type,
                actor=actor,
                tenant=tenants.get(tenant_id),
                action="task.replay_dead",
                obj=group[0],
                before={"status": TaskStatus.DEAD},
                after={
                    "status": TaskStatus.SCHEDULED,
                    "count": len(group),
                    "ids": [str(t.pk) for t in group],
                },
            )
        origins = {task.origin for task in tasks if not task.ordering_key}
        transaction.on_commit(lambda: notify_due(origins))  # due now: a lane of theirs may take them
    return updated


def _by_tenant(tasks: list[CallbackTask]) -> dict:
    groups: dict = {}
    for task in tasks:
        groups.setdefault(task.tenant_id, []).append(task)
    return groups
