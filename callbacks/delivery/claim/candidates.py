"""Which tasks a claim may take, and in what order: the ORM's definition and the same in SQL.

`claimable_tasks` says in the ORM which tasks may be claimed; `claimable_window` says the same
in one hand-written PostgreSQL statement, because the ORM's form costs what a claim must not on
PostgreSQL (measured with `python -m bench.profile`, 20,000 callbacks due at once):

- ORDER BY priority DESC, next_attempt_at over every due row is a sort of the whole backlog:
  20 ms a read with 20,000 due, growing with the backlog, several reads per claim. Here each
  priority level (0..9, MAX_PRIORITY) is its own range scan of task_claim_order_idx under a
  LATERAL join, stopping at the window: the cost follows the window, not the backlog, and
  future tasks are never read.
- The ORM took ~10 ms of the dispatcher's CPU to build a query of that shape each time.
- An origin at its limit with a large backlog (one tenant flooding its endpoint: the common case)
  is left out of the window, but a level scan still walks all its rows to skip them. When origins
  are closed, the window is read per open origin instead (one range scan per origin and level of
  task_origin_claim_idx), the origins that have claimable tasks found with a loose index scan of
  the same index; past MAX_ORIGINS such origins the level scan is cheaper again. Read per open
  origin, an origin's rows of a level stop at the slots it has free (the claim admits no more).

What the planner believes of the due set is often wrong in the direction that hurts: a service that
keeps up has almost no claimable task whenever the table is analyzed, so its statistics (and the
partial indexes' sizes) say a backlog is a handful of rows until the next ANALYZE. A statement it
may plan either way is then planned to read every due task: `next_claimable_at` says how to read
(an index walk), and the claim locks its tasks by primary key (limits). The statistics themselves
catch up when the leader sees such a backlog (statistics.py) and, in any case, within autovacuum's
round: migration 0012 has the table analyzed after every 5,000 changed rows, not a tenth of it.

Both forms live here and return the same `Candidate` rows (the per-origin read only the first
that fit each origin's room): change them together.
tests/callbacks/delivery/claim/test_candidates.py holds them to the same answers on PostgreSQL.
"""

from contextlib import contextmanager
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q

from callbacks.domain.bounds import MAX_PRIORITY
from callbacks.domain.vocabulary import CLAIMABLE_STATUSES, FINAL_STATUSES
from callbacks.models import CallbackTask, QueueState, Tenant


class Candidate(NamedTuple):
    """One claimable task, with what the limits need to admit it."""

    id: UUID
    queue: str
    due_at: datetime | None
    status: str
    origin: str
    tenant_id: UUID
    share_limit: int | None  # the tenant's max_concurrency_per_origin
    share_rate: float | None  # the tenant's rate_limit_per_origin


# The ORM's columns of a Candidate, in its order (the SQL below selects the same).
ORM_FIELDS = (
    "id",
    "queue",
    "due_at",
    "status",
    "origin",
    "tenant_id",
    "tenant__max_concurrency_per_origin",
    "tenant__rate_limit_per_origin",
)


def claimable_tasks(now: datetime):
    """Tasks due now, except those of paused queues, of deactivated tenants (held until reactivated)
    and those waiting behind an earlier task of their ordering key."""
    due = CallbackTask.objects.filter(
        status__in=CLAIMABLE_STATUSES, next_attempt_at__lte=now, tenant__is_active=True
    )
    paused = QueueState.objects.filter(paused=True).values("name")
    # A keyed task waits while an earlier task of its (tenant, key) is not final: creation order,
    # the id breaking ties. Only the earliest unfinished task of a key is ever claimable, so one claim
    # never takes two of a key. A task without a key matches nothing here (`ordering_key <> ''`), so the
    # condition needs no OR: PostgreSQL can then plan it as an anti-join over the unfinished keyed tasks
    # (task_ordering_idx), instead of a subquery per due row.
    earlier_unfinished = (
        CallbackTask.objects.filter(
            Q(created_at__lt=OuterRef("created_at"))
            | Q(created_at=OuterRef("created_at"), id__lt=OuterRef("id")),
            tenant_id=OuterRef("tenant_id"),
            ordering_key=OuterRef("ordering_key"),
        )
        .exclude(ordering_key="")
        .exclude(status__in=FINAL_STATUSES)
    )
    return due.exclude(queue__in=paused).filter(~Exists(earlier_unfinished))


def next_claimable_at(horizon: datetime, *, after: datetime | None = None) -> datetime | None:
    """When the earliest claimable task (of those due by `horizon`, and after `after` when given)
    falls due, or None.

    Read as a walk of task_claimable_idx in due order that stops at the first task that may be
    claimed. Planned from statistics that remember the due set nearly empty, PostgreSQL would
    rather collect every due task and sort them: with 100,000 due that was ~150 ms a read
    against ~0.1 ms, at every sleep of the dispatcher."""
    tasks = claimable_tasks(horizon)
    if after is not None:
        tasks = tasks.filter(next_attempt_at__gt=after)
    earliest = tasks.order_by("next_attempt_at").values_list("next_attempt_at", flat=True)
    if connection.vendor != "postgresql":
        return earliest.first()
    with _planned_as_index_walks():
        return earliest.first()


@contextmanager
def _planned_as_index_walks():
    """The statements inside are planned without bitmap scans and sorts, so an ORDER BY ... LIMIT
    walks its index in order and stops early. The settings hold for this transaction only; inside
    someone else's they are put back afterwards (a savepoint rolled back undoes them itself)."""
    nested = connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        if nested:
            cursor.execute("SELECT current_setting('enable_bitmapscan'), current_setting('enable_sort')")
            previous = cursor.fetchone()
        cursor.execute(
            "SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true)"
        )
        yield
        if nested:
            cursor.execute(
                "SELECT set_config('enable_bitmapscan', %s, true), set_config('enable_sort', %s, true)",
                previous,
            )


def still_claimable(ids, *, now: datetime) -> set:
    """Those of `ids` still due and claimable, locked for this transaction (those another one holds
    are skipped). The rows are locked by primary key and their status checked here: with the
    conditions in the statement, PostgreSQL may fetch them through task_claimable_idx instead, all
    the due tasks for a few ids, when its statistics remember that index nearly empty (16 ms for 20
    ids with 100,000 due, against 0.06 ms). A row locked and found no longer claimable stays locked
    only until the claim commits, a few milliseconds."""
    rows = (
        CallbackTask.objects.filter(id__in=list(ids))
        .select_for_update(skip_locked=True)
        .values_list("id", "status", "next_attempt_at")
    )
    return {
        task_id
        for task_id, status, next_attempt_at in rows
        if status in CLAIMABLE_STATUSES and next_attempt_at is not None and next_attempt_at <= now
    }


def tenants_with_due_work(now: datetime, *, served_queues=None) -> set:
    """Ids of the tenants with tasks due now in a queue that is served (None: any) and not paused:
    those among whom the outstanding budget is shared, whatever their priorities. One semi-join
    per tenant on task_tenant_status_idx."""
    due = CallbackTask.objects.filter(
        tenant_id=OuterRef("pk"), status__in=CLAIMABLE_STATUSES, next_attempt_at__lte=now
    ).exclude(queue__in=QueueState.objects.filter(paused=True).values("name"))
    if served_queues is not None:
        due = due.filter(queue__in=sorted(served_queues))
    return set(Tenant.objects.filter(Exists(due)).values_list("id", flat=True))


def others_due_at(origin: str, tenant_id, *, now: datetime, served_queues=None) -> bool:
    """Has a tenant other than `tenant_id` a task due now at `origin`? (For a breaker's probe:
    task_origin_claim_idx.)"""
    due = CallbackTask.objects.filter(
        origin=origin, status__in=CLAIMABLE_STATUSES, next_attempt_at__lte=now
    ).exclude(tenant_id=tenant_id)
    if served_queues is not None:
        due = due.filter(queue__in=sorted(served_queues))
    return due.exists()


def in_claim_order(queryset):
    """Highest priority first, then the earliest next attempt; due_at last, because tasks held by
    a breaker share one next_attempt_at (its probe time)."""
    return queryset.order_by("-priority", "next_attempt_at", "due_at")


def orm_window(queryset, *, exclude, window: int) -> list[Candidate]:
    """The first `window` Candidates of `queryset` (claimable tasks in claim order, narrowed),
    leaving out the ids in `exclude`: the ORM's form of `claimable_window`."""
    rows = queryset.exclude(id__in=exclude).values_list(*ORM_FIELDS)[:window]
    return [Candidate._make(row) for row in rows]


# Highest priority first; task_priority_range keeps every task within these levels.
LEVELS = list(range(MAX_PRIORITY, -1, -1))

# Beyond this many origins with claimable tasks, finding them costs more than the level scan saves.
MAX_ORIGINS = 200

_TASKS = CallbackTask._meta.db_table
# The claimable statuses as the list of an SQL IN, for the hand-written statements of the claim.
CLAIMABLE_SQL = ", ".join(f"'{status}'" for status in CLAIMABLE_STATUSES)

# {origins}: "" for the level scan; a join on the open origins for the per-origin read.
_SQL_TEMPLATE = f"""
SELECT c.id, c.queue, c.due_at, c.status, c.origin, c.tenant_id,
       c.max_concurrency_per_origin, c.rate_limit_per_origin
FROM unnest(%(levels)s::int[]) WITH ORDINALITY AS level(priority, rank)
{{origins}}
CROSS JOIN LATERAL (
    SELECT t.id, t.queue, t.due_at, t.status, t.origin, t.tenant_id, t.next_attempt_at,
           tn.max_concurrency_per_origin, tn.rate_limit_per_origin
    FROM {_TASKS} t
    JOIN {Tenant._meta.db_table} tn ON tn.id = t.tenant_id
    WHERE t.status IN ({CLAIMABLE_SQL})
      AND tn.is_active
      AND t.priority = level.priority{{origin_condition}}
      AND t.next_attempt_at <= %(now)s
      AND t.queue NOT IN (SELECT name FROM {QueueState._meta.db_table} WHERE paused)
      AND (%(any_queue)s OR t.queue = ANY(%(served_queues)s::text[]))
      AND NOT (t.tenant_id = ANY(%(closed_tenants)s::uuid[]))
      AND NOT (t.origin = ANY(%(closed_origins)s::text[]))
      AND (t.origin, t.tenant_id) NOT IN (
          SELECT * FROM unnest(%(share_origins)s::text[], %(share_tenants)s::uuid[]))
      AND NOT (t.id = ANY(%(exclude)s::uuid[]))
      -- A keyed task waits while an earlier task of its (tenant, key) is unfinished
      -- (task_ordering_idx holds keyed tasks only, so an unkeyed task costs one empty probe).
      AND NOT EXISTS (
          SELECT 1 FROM {CallbackTask._meta.db_table} e
          WHERE e.ordering_key <> '' AND e.tenant_id = t.tenant_id AND e.ordering_key = t.ordering_key
            AND e.status NOT IN ({", ".join(f"'{status}'" for status in FINAL_STATUSES)})
            AND (e.created_at < t.created_at OR (e.created_at = t.created_at AND e.id < t.id)))
    ORDER BY t.next_attempt_at, t.due_at
    LIMIT {{level_limit}}
) c
ORDER BY level.rank, c.next_attempt_at, c.due_at
LIMIT %(window)s
"""
_SQL = _SQL_TEMPLATE.format(origins="", origin_condition="", level_limit="%(window)s")
# Per open origin, no more of a level than the origin has room for (`rooms`, at most the window):
# the claim admits no more of it, and reading an origin's whole backlog up to the window, for
# each of dozens of open origins, was 19 ms a claim with 20,000 due over 64 origins.
_SQL_BY_ORIGIN = _SQL_TEMPLATE.format(
    origins="CROSS JOIN unnest(%(origins)s::text[], %(rooms)s::int[]) AS open_origin(origin, room)",
    origin_condition="\n      AND t.origin = open_origin.origin",
    level_limit="open_origin.room",
)

# A loose index scan: each step jumps to the next origin in task_origin_claim_idx.
_ORIGINS_SQL = f"""
WITH RECURSIVE origins(origin, n) AS (
    (SELECT origin, 1 FROM {_TASKS} WHERE status IN ({CLAIMABLE_SQL}) ORDER BY origin LIMIT 1)
    UNION ALL
    SELECT (SELECT t.origin FROM {_TASKS} t
            WHERE t.status IN ({CLAIMABLE_SQL}) AND t.origin > origins.origin ORDER BY t.origin LIMIT 1),
           origins.n + 1
    FROM origins WHERE origins.origin IS NOT NULL AND origins.n <= %(limit)s
)
SELECT origin FROM origins WHERE origin IS NOT NULL
"""


def claimable_window(
    *,
    now: datetime,
    window: int,
    closed_origins=(),
    closed_shares=(),
    closed_tenants=(),
    served_queues=None,
    exclude=(),
    room_of=None,
) -> list[Candidate]:
    """Up to `window` Candidates in claim order, leaving out closed origins, closed
    (origin, tenant id) shares, tenants at their share of the outstanding budget, queues no live
    cluster serves (`served_queues`, None: any) and the ids in `exclude`. PostgreSQL only.

    `room_of(origin)`: the slots an open origin has free; when the window is read per open
    origin, each origin's rows of a priority level stop there."""
    shares = list(closed_shares)
    params = {
        "levels": LEVELS,
        "now": now,
        "any_queue": served_queues is None,
        "served_queues": sorted(served_queues or ()),
        "closed_tenants": list(closed_tenants),
        "closed_origins": list(closed_origins),
        "share_origins": [origin for origin, _tenant in shares],
        "share_tenants": [tenant for _origin, tenant in shares],
        "exclude": list(exclude),
        "window": window,
    }
    with connection.cursor() as cursor:
        sql = _SQL
        if params["closed_origins"]:
            cursor.execute(_ORIGINS_SQL, {"limit": MAX_ORIGINS})
            origins = [row[0] for row in cursor.fetchall()]
            if len(origins) <= MAX_ORIGINS:
                closed = set(params["closed_origins"])
                params["origins"] = [origin for origin in origins if origin not in closed]
                if not params["origins"]:
                    return []  # every origin with claimable tasks is closed
                params["rooms"] = [
                    max(1, min(window, room_of(origin))) if room_of else window
                    for origin in params["origins"]
                ]
                sql = _SQL_BY_ORIGIN
        cursor.execute(sql, params)
        return [Candidate._make(row) for row in cursor.fetchall()]
