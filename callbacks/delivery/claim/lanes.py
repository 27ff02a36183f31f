"""Lanes: slots of an origin's concurrency limit, granted by the leader to one worker, reused by that
worker the moment a response is in.

A slot handed back only when its attempt was recorded and claimed again costs a round trip through
the recorder, the dispatcher and the broker (about 100 ms) per callback: 20 slots then carry ~200
callbacks/s to a receiver that could take thousands. So the leader does not hand out tasks one slot
at a time; it grants a lane, `width` slots of (queue, origin, tenant) with the first tasks for them,
and the worker holding the lane takes the next due tasks of that key itself (`refill`) as its
sends end, in one statement, without the dispatcher or the broker.

Why the limit stays exact:
- The leader counts slots, not tasks: an origin's in-flight is the sum of its live lanes' widths,
  and it grants only what keeps that sum within the limit (and a tenant's share within its own).
- A lane never widens. Its worker starts a send only while the lane's sends in flight stay within
  the width it last read in the database, and narrows the lane (never below what it has in flight)
  when it has nothing to send, when the limit was lowered, and when its time is up (LANE_SECONDS),
  so an ended lane's slots are free for the leader to weigh every key's due work again. A stale
  read of other lanes' widths can only overstate them, so no lock across lanes is needed.
- A lowered limit (by an operator, or an origin slowed down because it answered 429 or 503):
  each lane, at its next refill, keeps only what the new limit leaves it beside
  the others; the refill and the leader's claim read the limit in force from the database, not
  from the few-seconds cache of run-time settings. Sends already under way finish; no new one
  starts until the origin is under the new limit.
- A worker that dies stops renewing its lanes (every third of LANE_LEASE_SECONDS); they expire and
  their slots count no more after LANE_LEASE_SECONDS. The dead worker's connections died with it,
  so the receiver holds nothing of it. (A worker cut off from the database for longer than the
  lease, but alive, may still have sends under way that started before; they end by their total
  timeout.)
- A breaker that opens, a queue paused, the lane's tasks cancelled: the refill finds nothing, the
  lane narrows and ends. A breaker's probe is a lane of width 1 that does not refill.
- A rate limit (the origin's, or a tenant's share): the key gets one lane holding the whole rate,
  which its worker paces with a token bucket of its own; the leader claims nothing more of it while
  that lane lives (limits.Round.load).
Tasks with an ordering key are claimed only by the leader (one of a key at a time).
"""

from datetime import datetime, timedelta
from math import ceil

from django.db import connection, transaction
from django.db.models import Count, Q, Sum

from callbacks import bulk, conf, wakeup
from callbacks.delivery.claim import gone
from callbacks.delivery.claim.candidates import CLAIMABLE_SQL, claimable_tasks, in_claim_order
from callbacks.domain.bounds import MAX_PRIORITY
from callbacks.models import (
    BreakerState,
    CallbackTask,
    CircuitBreaker,
    Lane,
    QueueState,
    RuntimeSetting,
    TaskEvent,
    TaskStatus,
    Tenant,
)


def in_use(*, now: datetime):
    """(origin, tenant id, the tenant's share limit and rate, slots, paced lanes) of every live lane,
    summed."""
    return (
        Lane.objects.filter(expires_at__gt=now)
        .values_list(
            "origin", "tenant_id", "tenant__max_concurrency_per_origin", "tenant__rate_limit_per_origin"
        )
        .annotate(slots=Sum("width"), paced=Count("token", filter=Q(rate__isnull=False)))
        .order_by()
    )


def sendable() -> int:
    """Callbacks the workers can have in flight at once: processes x their sender slots."""
    return conf.get("WORKER_PROCESSES") * conf.get("CONCURRENCY")


def budget() -> int:
    """The slots the leader grants in all: DISPATCH_MAX_OUTSTANDING, else twice what the workers can send."""
    return conf.get("DISPATCH_MAX_OUTSTANDING") or 2 * sendable()


# Fewer tasks than this per lane are not worth spreading over more worker processes.
SPREAD_AT = 8


def split(rows: list, *, spread: int, most: int) -> list[list]:
    """The claimed rows of one (queue, origin, tenant) as lanes: over up to `spread` worker processes
    when there are enough rows, none carrying more than `most` tasks (one django-q2 task each)."""
    count = max(1, ceil(len(rows) / most), min(spread, len(rows) // SPREAD_AT))
    size = ceil(len(rows) / count)
    return [rows[start : start + size] for start in range(0, len(rows), size)]


def grant(groups: list, *, now: datetime) -> None:
    """Write the lanes of a claim (leases.LaneGrant: token, claimed rows, refills, rate, width).
    Inside the claim's transaction, so the lanes and their tasks' claim appear together."""
    expires_at = now + timedelta(seconds=conf.get("QUEUED_LEASE_SECONDS"))  # until a worker takes it
    Lane.objects.bulk_create(
        Lane(
            token=grant.token,
            queue=grant.rows[0].queue,
            origin=grant.rows[0].origin,
            tenant_id=grant.rows[0].tenant_id,
            width=grant.width,
            refills=grant.refills,
            rate=grant.rate,
            created_at=now,
            expires_at=expires_at,
        )
        for grant in groups
    )


def renew(tokens, *, now: datetime) -> int:
    """The worker holding these lanes is alive: push their expiry out by a lease."""
    if not tokens:
        return 0
    until = now + timedelta(seconds=conf.get("LANE_LEASE_SECONDS"))
    return Lane.objects.filter(token__in=list(tokens), expires_at__gt=now).update(expires_at=until)


def end(token: str) -> None:
    """The lane is done (its worker stopping, or its first tasks given back): free its slots."""
    with transaction.atomic():
        if Lane.objects.filter(token=token).delete()[0]:
            wakeup.notify_dispatcher()


def drain(tenant_ids, *, keep: int, now: datetime) -> int:
    """Stop the refills of the widest live lanes of each of these tenants until the lanes still
    refilling hold at most `keep` slots: a lane that no longer refills narrows as each of its
    sends ends and closes when empty (a probe's lane is the same). Returns the lanes stopped."""
    stopped = []
    rows = (
        Lane.objects.filter(tenant_id__in=list(tenant_ids), refills=True, expires_at__gt=now)
        .order_by("tenant_id", "-width")
        .values_list("tenant_id", "token", "width")
    )
    refilling: dict = {}
    for tenant_id, _token, width in rows:
        refilling[tenant_id] = refilling.get(tenant_id, 0) + width
    for tenant_id, token, width in rows:
        if refilling[tenant_id] > keep:
            stopped.append(token)
            refilling[tenant_id] -= width
    if stopped:
        Lane.objects.filter(token__in=stopped).update(refills=False)
    return len(stopped)


def expire(*, now: datetime) -> int:
    """Forget lanes whose worker stopped renewing them (their slots already count no more)."""
    return Lane.objects.filter(expires_at__lte=now).delete()[0]


class Refill:
    """What one refill gave the lane: tasks to send now (their tenant not loaded: the worker keeps
    the lane's; `url_gone` set), its width from now on (0: the lane has ended) and, when it kept
    slots with nothing to send (`keep`), when the next task of its key falls due within the
    linger (None: none does)."""

    __slots__ = ("tasks", "width", "next_due")

    def __init__(self, tasks, width, next_due=None):
        self.tasks, self.width, self.next_due = tasks, width, next_due


def refill(*, token: str, want: int, in_flight: int, taking: bool, now: datetime, keep: int = 0) -> Refill:
    """Start up to `want` more due tasks of the lane (fewer if its width, the origin's limit or the
    tenant's share leaves less room beside the lane's `in_flight`), and narrow the lane to what it
    holds when it has nothing more to send or `taking` is False (its time is up, its worker is
    stopping). Renews the lane's lease.

    With `keep`, a lane that has nothing more to send lingers: it keeps up to `keep` slots (no more
    than the limits in force leave it) for what its key brings next, unless the leader has granted its
    whole budget, a task of another key (tenant, queue, ordering) waits due for the same origin, its
    breaker is not closed or its queue is paused; then it narrows as without. Lingering, it is told when its key's next task falls due
    before `now + LANE_LINGER_SECONDS`.

    Only the lane's own worker (one thread) changes its row, and the leader only reads it, so the
    row needs no lock. On PostgreSQL all of it is one statement (_REFILL_SQL), one round trip where
    the ORM's form below takes seven: a refill runs every few callbacks."""
    if connection.vendor == "postgresql":
        return _refill_postgres(
            token=token, want=want, in_flight=in_flight, taking=taking, now=now, keep=keep
        )
    with transaction.atomic():
        lane = Lane.objects.filter(token=token, expires_at__gt=now).first()
        if lane is None:
            return Refill([], 0)  # expired: its slots may be another lane's already
        allowed = _allowed(lane, now=now)
        want = max(0, min(want, allowed - in_flight)) if taking and lane.refills else 0
        tasks = _start_due(lane, want, now=now) if want else []
        gone.flag(tasks)
        held = in_flight + len(tasks)
        next_due = None
        if not taking or not lane.refills:
            width = held
        elif len(tasks) < want:
            kept = min(keep, allowed) if keep and _may_linger(lane, now=now) else 0
            width = max(held, kept)
            if width > held:
                next_due = _next_due(lane, now=now)
        else:
            width = max(held, allowed)
        width = min(lane.width, width)
        if width == 0:
            lane.delete()
        else:
            Lane.objects.filter(token=token).update(
                width=width, expires_at=now + timedelta(seconds=conf.get("LANE_LEASE_SECONDS"))
            )
        if width < lane.width:
            wakeup.notify_dispatcher()  # slots came free: the leader may grant them elsewhere
    return Refill(tasks, width, next_due)


def _may_linger(lane: Lane, *, now: datetime) -> bool:
    """Whether a lane with nothing of its key due may keep its slots: the leader has not granted its
    whole budget, no other key's task waits due for its origin (the slots are theirs first), its
    breaker is closed and its queue not paused. (The ORM's form of _REFILL_SQL's `lingers`.)"""
    granted = Lane.objects.filter(expires_at__gt=now).aggregate(slots=Sum("width"))["slots"] or 0
    if granted >= budget():
        return False
    if QueueState.objects.filter(name=lane.queue, paused=True).exists():
        return False
    if CircuitBreaker.objects.filter(origin=lane.origin).exclude(state=BreakerState.CLOSED).exists():
        return False
    own_key = Q(tenant_id=lane.tenant_id, queue=lane.queue, ordering_key="")
    return not claimable_tasks(now).filter(origin=lane.origin).exclude(own_key).exists()


def _next_due(lane: Lane, *, now: datetime) -> datetime | None:
    """When the lane's key's next task falls due, within the linger."""
    horizon = now + timedelta(seconds=conf.get("LANE_LINGER_SECONDS"))
    return (
        claimable_tasks(horizon)
        .filter(
            origin=lane.origin,
            tenant_id=lane.tenant_id,
            queue=lane.queue,
            ordering_key="",
            next_attempt_at__gt=now,
        )
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )


def _allowed(lane: Lane, *, now: datetime) -> int:
    """The lane's width, or less where the origin's limit (lower while it is slowed down) or the
    tenant's share, as they are now, leave it less beside the other live lanes (which can only have narrowed since they were read)."""
    others = (
        Lane.objects.filter(origin=lane.origin, expires_at__gt=now)
        .exclude(token=lane.token)
        .aggregate(all=Sum("width"), share=Sum("width", filter=Q(tenant_id=lane.tenant_id)))
    )
    limit = conf.current("MAX_CONCURRENCY_PER_ORIGIN")
    slowed = CircuitBreaker.objects.filter(origin=lane.origin).values_list("concurrency_limit", flat=True)
    limit = min(limit, slowed.first() or limit)
    allowed = min(lane.width, limit - (others["all"] or 0))
    # Only the share: loading the whole tenant would open its sealed secrets, which need not open here.
    share_limit = Tenant.objects.filter(pk=lane.tenant_id).values_list(
        "max_concurrency_per_origin", flat=True
    )
    share_limit = share_limit.first()
    if share_limit:
        allowed = min(allowed, share_limit - (others["share"] or 0))
    return max(0, allowed)


def _start_due(lane: Lane, want: int, *, now: datetime) -> list[CallbackTask]:
    """Mark up to `want` due tasks of the lane's key `running` under its token, highest priority
    first, then the earliest; their status history says so. (The ORM's form of _REFILL_SQL.)"""
    started = _start_due_orm(lane, want, now=now)
    bulk.insert(
        TaskEvent,
        [
            TaskEvent(
                task_id=task.id,
                at=now,
                from_status=previous,
                to_status=TaskStatus.RUNNING,
                note=f"attempt {task.attempts}",
            )
            for task, previous in started
        ],
    )
    return [task for task, _previous in started]


_TASKS = CallbackTask._meta.db_table
_LANES = Lane._meta.db_table
_COLUMNS = ", ".join(f"t.{field.column}" for field in CallbackTask._meta.concrete_fields)
_STARTED_COLUMNS = ", ".join(f"started.{field.column}" for field in CallbackTask._meta.concrete_fields)
# The refill in one statement. `room`: what the lane may hold beside the other live lanes of its
# origin and tenant under the limits in force (the run-time setting's row, else the default; less
# while the origin's breaker row says it is slowed down), and
# how many it may start. `picked`: each priority level is its own range scan of
# task_origin_claim_idx (origin, priority, next_attempt_at, due_at), as in the claim's window:
# ORDER BY priority DESC, next_attempt_at would sort the origin's whole backlog at every refill.
# Then the tasks start, their history is written and the lane narrows (or ends at width 0, which
# NOTIFYs the leader, as any narrowing does).
_REFILL_SQL = f"""
WITH room AS (
    SELECT l.token, l.width, l.origin, l.queue, l.tenant_id, l.refills, a.allowed,
           CASE WHEN l.refills AND %(taking)s THEN GREATEST(0, LEAST(%(want)s, a.allowed - %(in_flight)s))
                ELSE 0 END AS want
    FROM {_LANES} l
    JOIN {Tenant._meta.db_table} tn ON tn.id = l.tenant_id
    CROSS JOIN LATERAL (
        SELECT GREATEST(0, LEAST(
            l.width,
            LEAST(
                COALESCE((SELECT (r.value #>> '{{}}')::int FROM {RuntimeSetting._meta.db_table} r
                          WHERE r.key = 'MAX_CONCURRENCY_PER_ORIGIN'), %(limit)s),
                COALESCE((SELECT b.concurrency_limit FROM {CircuitBreaker._meta.db_table} b
                          WHERE b.origin = l.origin), %(limit)s)
            ) - COALESCE(SUM(o.width), 0),
            COALESCE(tn.max_concurrency_per_origin - COALESCE(SUM(o.width) FILTER (WHERE o.tenant_id = l.tenant_id), 0),
                     l.width)
        )) AS allowed
        FROM {_LANES} o WHERE o.origin = l.origin AND o.token <> l.token AND o.expires_at > %(now)s
    ) a
    WHERE l.token = %(token)s AND l.expires_at > %(now)s
),
picked AS (
    SELECT p.id, p.status FROM room
    CROSS JOIN unnest(%(levels)s::int[]) WITH ORDINALITY AS level(priority, rank)
    CROSS JOIN LATERAL (
        SELECT t.id, t.status, t.next_attempt_at, t.due_at FROM {_TASKS} t
        WHERE t.origin = room.origin AND t.priority = level.priority
          AND t.status IN ({CLAIMABLE_SQL}) AND t.next_attempt_at <= %(now)s
          AND t.tenant_id = room.tenant_id AND t.queue = room.queue AND t.ordering_key = ''
        ORDER BY t.next_attempt_at, t.due_at
        LIMIT room.want
        FOR UPDATE OF t SKIP LOCKED
    ) p
    WHERE room.want > 0
      AND NOT EXISTS (SELECT 1 FROM {QueueState._meta.db_table} q WHERE q.name = room.queue AND q.paused)
      AND NOT EXISTS (
          SELECT 1 FROM {CircuitBreaker._meta.db_table} b
          WHERE b.origin = room.origin AND b.state <> '{BreakerState.CLOSED}')
    ORDER BY level.rank, p.next_attempt_at, p.due_at
    LIMIT (SELECT want FROM room)
),
-- May a lane with nothing of its key due keep its slots? Not while the leader has granted its whole
-- budget (due work elsewhere may be waiting for it), nor while a task of another key waits due for its
-- origin (each priority level a range scan of the due part of task_origin_claim_idx), nor while its
-- breaker is not closed or its queue paused. Read only when the refill came back short.
lingers AS (
    SELECT (SELECT COALESCE(SUM(o.width), 0) FROM {_LANES} o WHERE o.expires_at > %(now)s) < %(budget)s
       AND NOT EXISTS (SELECT 1 FROM {QueueState._meta.db_table} q WHERE q.name = room.queue AND q.paused)
       AND NOT EXISTS (
           SELECT 1 FROM {CircuitBreaker._meta.db_table} b
           WHERE b.origin = room.origin AND b.state <> '{BreakerState.CLOSED}')
       AND NOT EXISTS (
           SELECT 1 FROM unnest(%(levels)s::int[]) AS level(priority)
           CROSS JOIN LATERAL (
               SELECT 1 FROM {_TASKS} t
               WHERE t.origin = room.origin AND t.priority = level.priority
                 AND t.status IN ({CLAIMABLE_SQL}) AND t.next_attempt_at <= %(now)s
                 AND (t.tenant_id <> room.tenant_id OR t.queue <> room.queue OR t.ordering_key <> '')
               LIMIT 1
           ) other) AS ok
    FROM room
),
started AS (
    UPDATE {_TASKS} AS t
    SET status = '{TaskStatus.RUNNING}', attempts = t.attempts + 1, locked_by = %(token)s,
        updated_at = %(now)s,
        locked_until = %(now)s + make_interval(secs => LEAST(t.total_timeout_seconds + %(margin)s, %(running_lease)s))
    FROM picked WHERE t.id = picked.id
    RETURNING {_COLUMNS}
),
history AS (
    INSERT INTO {TaskEvent._meta.db_table} (task_id, at, from_status, to_status, note)
    SELECT started.id, %(now)s, picked.status, '{TaskStatus.RUNNING}', 'attempt ' || started.attempts
    FROM started JOIN picked ON picked.id = started.id
),
sized AS (
    SELECT room.token, room.width AS was, %(in_flight)s + s.n AS held,
           s.n < room.want AND %(taking)s AND room.refills AS dry, LEAST(room.width, CASE
        WHEN NOT %(taking)s OR NOT room.refills THEN %(in_flight)s + s.n
        WHEN s.n < room.want THEN GREATEST(%(in_flight)s + s.n,
            CASE WHEN %(keep)s > 0 AND (SELECT ok FROM lingers) THEN LEAST(%(keep)s, room.allowed) ELSE 0 END)
        ELSE GREATEST(%(in_flight)s + s.n, room.allowed) END) AS width
    FROM room CROSS JOIN (SELECT count(*) AS n FROM started) s
),
narrowed AS (
    UPDATE {_LANES} l SET width = sized.width, expires_at = %(now)s + make_interval(secs => %(lease)s)
    FROM sized WHERE l.token = sized.token AND sized.width > 0
),
ended AS (
    DELETE FROM {_LANES} l USING sized WHERE l.token = sized.token AND sized.width = 0
),
woken AS (
    SELECT pg_notify('{wakeup.CHANNEL}', '') FROM sized WHERE sized.width < sized.was
)
SELECT sized.width AS lane_width, (SELECT count(*) FROM woken) AS woken,
       CASE WHEN sized.dry AND sized.width > sized.held THEN (
           SELECT min(n.next_attempt_at) FROM room
           CROSS JOIN unnest(%(levels)s::int[]) AS level(priority)
           CROSS JOIN LATERAL (
               SELECT t.next_attempt_at FROM {_TASKS} t
               WHERE t.origin = room.origin AND t.priority = level.priority
                 AND t.status IN ({CLAIMABLE_SQL})
                 AND t.next_attempt_at > %(now)s AND t.next_attempt_at <= %(horizon)s
                 AND t.tenant_id = room.tenant_id AND t.queue = room.queue AND t.ordering_key = ''
               ORDER BY t.next_attempt_at
               LIMIT 1
           ) n) END AS next_due,
       {gone.URL_GONE_SQL.format(task="started")}, {_STARTED_COLUMNS}
FROM sized LEFT JOIN started ON true
"""
_LEVELS = list(range(MAX_PRIORITY, -1, -1))


def _refill_postgres(
    *, token: str, want: int, in_flight: int, taking: bool, now: datetime, keep: int
) -> Refill:
    params = {
        "token": token,
        "want": want,
        "in_flight": in_flight,
        "taking": taking,
        "keep": keep,
        "now": now,
        "horizon": now + timedelta(seconds=conf.get("LANE_LINGER_SECONDS")),
        "limit": conf.get("MAX_CONCURRENCY_PER_ORIGIN"),  # settings.CALLBACKS unless a row overrides it
        "levels": _LEVELS,
        "budget": budget(),
        "margin": float(conf.get("RUNNING_LEASE_MARGIN_SECONDS")),
        "running_lease": float(conf.get("RUNNING_LEASE_SECONDS")),
        "lease": float(conf.get("LANE_LEASE_SECONDS")),
    }
    # Prepared: planning this statement took three times as long as running it, at every refill.
    rows = bulk.fetch_instances_after(CallbackTask, _REFILL_SQL, params, extra=4, prepare=True)
    if not rows:
        return Refill([], 0)  # expired: its slots may be another lane's already
    width, _woken, next_due = rows[0][0][:3]
    return Refill(
        gone.flagged([(extra[3:], task) for extra, task in rows if task is not None]), width, next_due
    )


def _start_due_orm(lane: Lane, want: int, *, now: datetime) -> list[tuple[CallbackTask, str]]:
    if QueueState.objects.filter(name=lane.queue, paused=True).exists():
        return []
    if CircuitBreaker.objects.filter(origin=lane.origin).exclude(state=BreakerState.CLOSED).exists():
        return []
    due = claimable_tasks(now).filter(
        origin=lane.origin, tenant_id=lane.tenant_id, queue=lane.queue, ordering_key=""
    )
    tasks = list(in_claim_order(due).select_for_update()[:want])
    started = []
    for task in tasks:
        started.append((task, task.status))
        task.status = TaskStatus.RUNNING
        task.attempts += 1
        task.locked_by = lane.token
        task.updated_at = now
        task.locked_until = running_lease_end(task, started=now, now=now)
    CallbackTask.objects.bulk_update(tasks, ["status", "attempts", "locked_by", "updated_at", "locked_until"])
    return started


def running_lease_end(task: CallbackTask, *, started: datetime, now: datetime) -> datetime:
    """A running task's lease from `now`: short (RUNNING_LEASE_SECONDS), so a dead worker's
    callbacks come back within seconds, renewed by its live worker (leases.renew_running); never
    past its attempt's total timeout plus the margin from `started`, by when its own worker has
    given up on it anyway. The ORM's form of the SQL's LEAST (_REFILL_SQL, leases._START_SQL,
    leases._RENEW_RUNNING_SQL)."""
    deadline = started + timedelta(
        seconds=task.total_timeout_seconds + conf.get("RUNNING_LEASE_MARGIN_SECONDS")
    )
    return min(now + timedelta(seconds=conf.get("RUNNING_LEASE_SECONDS")), deadline)
