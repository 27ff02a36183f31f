"""Leases: how a task is claimed, started, given back, and taken back when its holder vanished.

The database is the source of truth; the broker only carries work the database already
records as claimed. A claim sets status `queued`, a lease (`locked_until`) and a fresh claim
token (`locked_by`). A worker starts only tasks still `queued` under that token, so a task
whose lease expired and was claimed again is never sent by two workers. What a dead worker
held comes back when its lease runs out: not started -> due again; started -> an
`interrupted` attempt is recorded and the retry policy decides.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from math import ceil
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from callbacks import bulk, conf
from callbacks.delivery.claim import gone, lanes, limits
from callbacks.delivery.claim.candidates import claimable_tasks, in_claim_order
from callbacks.models import CallbackTask, TaskEvent, TaskStatus, Tenant


@dataclass(frozen=True)
class Claim:
    """One lane's claim: its token, its queue, its first tasks, the rate it may start more at, and
    its tenant (a worker shares its sender threads among the tenants of its lanes)."""

    token: str
    queue: str
    task_ids: list
    due_at: list  # datetimes, parallel to task_ids, for the due-to-sent lag
    rate: float | None = None
    tenant_id: str | None = None
    origin: str | None = None


class LaneGrant(NamedTuple):
    token: str
    rows: list
    refills: bool
    rate: float | None  # requests per second, for an origin or share under a rate limit
    width: int  # its slots: one per row, and those of rows of its key the claim could not lock


def new_token() -> str:
    return uuid.uuid4().hex


def claim_due(
    *,
    limit: int,
    now: datetime | None = None,
    targets: limits.TargetLimits | None = None,
    max_in_flight: int | None = None,
    sendable: int | None = None,
    served_queues: set | None = None,
) -> list[Claim]:
    """Claim up to `limit` due tasks, highest priority first, then oldest due, as lanes: one claim
    per lane, each a slot per task it carries (claim/lanes.py).

    Only what the targets have room for (limits: per-origin concurrency and rate, circuit
    breakers), and with `max_in_flight` only as many as keep the slots held everywhere under it
    (each tenant within its share, and within `sendable`, what the workers can send at once);
    with `served_queues` only tasks of queues a live cluster serves;
    `targets` is the caller's memory of rate buckets (the dispatcher's).
    SKIP LOCKED lets several claimers run without waiting on each other's rows (PostgreSQL);
    on SQLite the transaction's write lock serialises claims.
    """
    now = now or timezone.now()
    lease_until = now + timedelta(seconds=conf.get("QUEUED_LEASE_SECONDS"))
    with transaction.atomic():
        # Built only where the ORM reads the window (PostgreSQL runs the hand-written statement).
        def candidates():
            return in_claim_order(claimable_tasks(now))

        chosen = limits.claimable(
            candidates,
            limit=limit,
            now=now,
            targets=targets,
            max_in_flight=max_in_flight,
            sendable=sendable,
            served_queues=served_queues,
        )
        if not chosen.rows:
            return []
        groups = _lanes_of(chosen)
        lanes.grant(groups, now=now)
        _mark_queued(groups, lease_until=lease_until, now=now)
        bulk.insert(
            TaskEvent,
            [
                TaskEvent(task_id=row.id, at=now, from_status=row.status, to_status=TaskStatus.QUEUED)
                for row in chosen.rows
            ],
        )
    return [
        Claim(
            token=grant.token,
            queue=grant.rows[0].queue,
            task_ids=[row.id for row in grant.rows],
            due_at=[row.due_at for row in grant.rows],
            rate=grant.rate,
            tenant_id=str(grant.rows[0].tenant_id),
            origin=grant.rows[0].origin,
        )
        for grant in groups
    ]


def claim_task(*, task_id, now: datetime | None = None) -> str | None:
    """Claim one claimable task by id, whatever the limits and its origin's breaker say (an operator
    asked for this attempt now), as a lane of its own (one slot, no refills); returns its token, or None when the task is not claimable now (claimed by another,
    cancelled, finished, its queue paused, its tenant deactivated, waiting behind its ordering key).

    For an attempt made at once (delivery/immediate.py): the lane counts in its origin's slots while
    it lives, so the leader's other claims see it as they see any lane."""
    now = now or timezone.now()
    lease_until = now + timedelta(seconds=conf.get("QUEUED_LEASE_SECONDS"))
    with transaction.atomic():
        row = (
            claimable_tasks(now)
            .filter(pk=task_id)
            .select_for_update(skip_locked=True, of=("self",))
            .only("id", "queue", "origin", "tenant_id", "status")
            .first()
        )
        if row is None:
            return None
        grant = LaneGrant(new_token(), [row], False, None, 1)
        lanes.grant([grant], now=now)
        _mark_queued([grant], lease_until=lease_until, now=now)
        TaskEvent.objects.create(task_id=row.id, at=now, from_status=row.status, to_status=TaskStatus.QUEUED)
    return grant.token


def _mark_queued(groups, *, lease_until: datetime, now: datetime) -> None:
    """The claimed tasks `queued` under their lane's token; on PostgreSQL in one statement."""
    if connection.vendor != "postgresql":
        for grant in groups:
            CallbackTask.objects.filter(id__in=[row.id for row in grant.rows]).update(
                status=TaskStatus.QUEUED, locked_by=grant.token, locked_until=lease_until, updated_at=now
            )
        return
    ids = [row.id for grant in groups for row in grant.rows]
    tokens = [grant.token for grant in groups for _row in grant.rows]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {CallbackTask._meta.db_table} AS t SET status = %s, locked_by = v.token, "
            "locked_until = %s, updated_at = %s FROM unnest(%s::uuid[], %s::text[]) AS v(id, token) "
            "WHERE t.id = v.id",
            [TaskStatus.QUEUED, lease_until, now, ids, tokens],
        )


def _lanes_of(chosen: limits.Chosen) -> list[LaneGrant]:
    """The chosen rows as lanes: per (queue, origin, tenant), spread over the worker processes. A
    probe never refills (exactly one attempt). Under a rate limit (the origin's, or the tenant's
    share) the key gets one lane holding the whole rate, paced by its worker; the leader claims
    nothing more of it while that lane lives (limits.Round.load)."""
    by_key: dict[tuple, list] = {}
    for row in chosen.rows:
        by_key.setdefault(limits.key_of(row), []).append(row)
    origin_rate = conf.get("RATE_LIMIT_PER_ORIGIN")
    # Keys spread the work over the worker processes by themselves: split one key's rows into
    # several lanes only when a claim has fewer keys than there are processes (a wider lane
    # refills more tasks a statement).
    spread = max(1, ceil(conf.get("WORKER_PROCESSES") / len(by_key)))
    groups = []
    for key, rows in by_key.items():
        origin = rows[0].origin
        refills = origin not in chosen.probes
        rates = [rate for rate in (origin_rate, rows[0].share_rate) if rate]
        if rates:
            groups.append(LaneGrant(new_token(), rows, refills, min(rates), len(rows)))
            continue
        parts = lanes.split(rows, spread=spread, most=conf.get("TASKS_PER_JOB"))
        # The slots of rows the claim admitted but could not lock: a lane that refills takes tasks
        # of its key for them. (Granted as lanes of their own, such slots split an origin's limit
        # into lanes of a slot or two, each refilled for every callback or two.)
        spare = chosen.admitted[key] - len(rows) if refills else 0
        for index, part in enumerate(parts):
            extra = spare // len(parts) + (1 if index < spare % len(parts) else 0)
            groups.append(LaneGrant(new_token(), part, refills, None, len(part) + extra))
    return groups


def start_claimed(*, token: str, task_ids: list, now: datetime | None = None) -> list[CallbackTask]:
    """Mark claimed tasks `running` (one more attempt) and return them, tenant loaded, `url_gone` set.

    Tasks cancelled or reclaimed since the claim are left out: they must not be sent. Each
    task's lease runs RUNNING_LEASE_SECONDS, which its worker renews (renew_running), and never
    past its total timeout plus RUNNING_LEASE_MARGIN_SECONDS.
    """
    now = now or timezone.now()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            tasks = _start_postgres(token=token, task_ids=task_ids, now=now)
        else:
            tasks = _start_orm(token=token, task_ids=task_ids, now=now)
        if not tasks:
            return []
        tenants = bulk.in_bulk(Tenant, {task.tenant_id for task in tasks})
        for task in tasks:
            task.tenant = tenants[task.tenant_id]
        bulk.insert_rows(
            TaskEvent,
            ("task_id", "at", "from_status", "to_status", "note"),
            [
                (task.id, now, TaskStatus.QUEUED, TaskStatus.RUNNING, f"attempt {task.attempts}")
                for task in tasks
            ],
        )
    return tasks


# One statement, the task rows it changed coming back (a worker starts a chunk of a batch at a
# time, so this runs often: python -m bench.profile showed the ORM's select-then-update as a
# fifth of a worker's CPU).
_START_SQL = f"""
UPDATE {CallbackTask._meta.db_table} AS t
SET status = 'running', attempts = t.attempts + 1, updated_at = %(now)s,
    locked_until = %(now)s + make_interval(secs => LEAST(t.total_timeout_seconds + %(margin)s, %(running_lease)s))
WHERE t.id = ANY(%(ids)s::uuid[]) AND t.status = 'queued' AND t.locked_by = %(token)s
RETURNING {gone.URL_GONE_SQL.format(task="t")},
    {", ".join(f"t.{field.column}" for field in CallbackTask._meta.concrete_fields)}
"""


def _start_postgres(*, token: str, task_ids: list, now: datetime) -> list[CallbackTask]:
    params = {
        "now": now,
        "margin": float(conf.get("RUNNING_LEASE_MARGIN_SECONDS")),
        "running_lease": float(conf.get("RUNNING_LEASE_SECONDS")),
        "ids": list(task_ids),
        "token": token,
    }
    return gone.flagged(bulk.fetch_instances_after(CallbackTask, _START_SQL, params, extra=1))


def _start_orm(*, token: str, task_ids: list, now: datetime) -> list[CallbackTask]:
    tasks = list(
        CallbackTask.objects.select_for_update().filter(
            id__in=task_ids, status=TaskStatus.QUEUED, locked_by=token
        )
    )
    for task in tasks:
        task.status = TaskStatus.RUNNING
        task.attempts += 1
        task.updated_at = now
        task.locked_until = lanes.running_lease_end(task, started=now, now=now)
    CallbackTask.objects.bulk_update(tasks, ["status", "attempts", "updated_at", "locked_until"])
    gone.flag(tasks)
    return tasks


# updated_at is the attempt's start while the task runs: only the start and the recording of the
# attempt write a running task's row.
_RENEW_RUNNING_SQL = f"""
UPDATE {CallbackTask._meta.db_table} AS t
SET locked_until = LEAST(%(now)s + make_interval(secs => %(running_lease)s),
                         t.updated_at + make_interval(secs => t.total_timeout_seconds + %(margin)s))
FROM unnest(%(ids)s::uuid[], %(tokens)s::text[]) AS v(id, token)
WHERE t.id = v.id AND t.locked_by = v.token AND t.status = 'running'
"""


def renew_running(held, *, now: datetime | None = None) -> int:
    """The worker sending (or recording) these (task id, token) pairs is alive: their leases run
    RUNNING_LEASE_SECONDS more. A task whose lease already ran out and was taken back holds
    another token or status by then and is left alone."""
    held = list(held)
    if not held:
        return 0
    now = now or timezone.now()
    if connection.vendor == "postgresql":
        params = {
            "now": now,
            "running_lease": float(conf.get("RUNNING_LEASE_SECONDS")),
            "margin": float(conf.get("RUNNING_LEASE_MARGIN_SECONDS")),
            "ids": [task_id for task_id, _token in held],
            "tokens": [token for _task_id, token in held],
        }
        with connection.cursor() as cursor:
            cursor.execute(_RENEW_RUNNING_SQL, params)
            return cursor.rowcount
    renewed = 0
    with transaction.atomic():
        tokens = dict(held)
        for task in CallbackTask.objects.select_for_update().filter(
            id__in=list(tokens), status=TaskStatus.RUNNING
        ):
            if task.locked_by == tokens[task.id]:
                task.locked_until = lanes.running_lease_end(task, started=task.updated_at, now=now)
                task.save(update_fields=["locked_until"])
                renewed += 1
    return renewed


def next_lease_end(*, now: datetime | None = None) -> datetime | None:
    """When the earliest lease of work handed out runs out: the leader must look then, or a dead
    worker's callbacks would wait for its idle poll (task_leased_idx answers it)."""
    return (
        CallbackTask.objects.filter(
            status__in=[TaskStatus.QUEUED, TaskStatus.RUNNING], locked_until__isnull=False
        )
        .order_by("locked_until")
        .values_list("locked_until", flat=True)
        .first()
    )


def release_claimed(*, token: str, task_ids: list, note: str, now: datetime | None = None) -> int:
    """Give back claimed tasks that were never started: due again at once, no attempt used."""
    now = now or timezone.now()
    with transaction.atomic():
        rows = list(
            CallbackTask.objects.select_for_update()
            .filter(id__in=task_ids, status=TaskStatus.QUEUED, locked_by=token)
            .values_list("id", "attempts")
        )
        _make_due_again(rows, now=now, note=note)
    return len(rows)


def requeue_expired_queued(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Claimed tasks whose lease ran out before any worker started them (broker lost them)."""
    now = now or timezone.now()
    with transaction.atomic():
        rows = list(
            CallbackTask.objects.select_for_update(skip_locked=True)
            .filter(status=TaskStatus.QUEUED, locked_until__lt=now)
            .values_list("id", "attempts")[:limit]
        )
        _make_due_again(rows, now=now, note="lease expired before a worker started it")
    return len(rows)


def _make_due_again(rows, *, now: datetime, note: str) -> None:
    if not rows:
        return
    first = [task_id for task_id, attempts in rows if attempts == 0]
    again = [task_id for task_id, attempts in rows if attempts > 0]
    for ids, status in ((first, TaskStatus.SCHEDULED), (again, TaskStatus.RETRYING)):
        if ids:
            CallbackTask.objects.filter(id__in=ids).update(
                status=status, locked_by="", locked_until=None, next_attempt_at=now, updated_at=now
            )
    TaskEvent.objects.bulk_create(
        TaskEvent(
            task_id=task_id,
            at=now,
            from_status=TaskStatus.QUEUED,
            to_status=TaskStatus.SCHEDULED if attempts == 0 else TaskStatus.RETRYING,
            note=note,
        )
        for task_id, attempts in rows
    )


def expired_running(*, now: datetime | None = None, limit: int = 500) -> list[CallbackTask]:
    """Started tasks whose lease ran out: their worker died mid-attempt. Not locked: the
    recording of their `interrupted` attempt is conditional on the token, like a worker's."""
    now = now or timezone.now()
    return list(
        CallbackTask.objects.select_related("tenant").filter(
            Q(status=TaskStatus.RUNNING) & Q(locked_until__lt=now)
        )[:limit]
    )
