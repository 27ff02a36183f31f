"""Workers move the breakers of the origins their attempts went to, inside the transaction that
records the attempts, and announce the breakers that opened once it commits."""

import logging
from collections import defaultdict
from datetime import datetime
from functools import partial

from django.db import connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from callbacks import conf, wakeup
from callbacks.delivery.breaker.machine import (
    FAILURE,
    HEALTHY,
    SLOW_DOWN_STATUSES,
    Signal,
    advance,
    policy_for,
    verdict,
)
from callbacks.delivery.instruments.metrics import BREAKER_OPENINGS_TOTAL
from callbacks.domain.vocabulary import ActorType, Outcome
from callbacks.models import BreakerState, CallbackTask, CircuitBreaker, Tenant
from callbacks.services.audit import audit_record
from callbacks.services.notifications import notify_breaker_opened

logger = logging.getLogger(__name__)


def attempts_recorded(applied, *, now: datetime | None = None) -> list[str]:
    """Move the breakers of the origins these attempts went to; returns the origins that opened.

    `applied` are outcomes.Applied items (task, execution). Costs nothing for origins that only
    succeed and have no breaker row, one UPDATE for those that have one, and an upsert plus one
    locked read and one write for origins that failed. A 429 or 503 also slows its origin down
    (CircuitBreaker.concurrency_limit, which the claim and the lanes' refills obey), and healthy
    answers bring a slowed-down origin back, in the same statements. Runs in a savepoint and never raises:
    a breaker problem must not undo the recording of attempts.
    """
    now = now or timezone.now()
    signals = _signals_by_origin(applied)
    if not signals:
        return []
    try:
        with transaction.atomic():
            opened = _apply(signals, now=now)
    except Exception:
        logger.exception("updating circuit breakers failed for %d origins", len(signals))
        return []
    for breaker in opened:
        transaction.on_commit(partial(_announce_opened, breaker.origin, _describe(breaker)))
    return [breaker.origin for breaker in opened]


def _signals_by_origin(applied) -> dict[str, list[Signal]]:
    judged = [(item, verdict(item.execution.outcome, item.execution.status_code)) for item in applied]
    judged = [(item, judgement) for item, judgement in judged if judgement is not None]
    tenants = _tenants_of([item.task for item, judgement in judged if judgement == FAILURE])
    signals: dict[str, list[Signal]] = defaultdict(list)
    floor = conf.get("BREAKER_TIMEOUT_FLOOR_SECONDS")
    for item, judgement in judged:
        if judgement == HEALTHY:
            signals[item.task.origin].append(Signal(HEALTHY, None))
            continue
        if _own_timeout(item, floor):
            continue
        policy = policy_for(tenants.get(item.task.tenant_id))
        slow_down = item.execution.status_code in SLOW_DOWN_STATUSES
        signals[item.task.origin].append(Signal(FAILURE, policy, _error_text(item.execution), slow_down))
    return signals


def _own_timeout(item, floor: float) -> bool:
    """A timeout of an attempt given less time than the floor says nothing of the receiver: it is
    the tenant's own failure (its retry policy handles it), and it must not open the breaker that
    every tenant calling the origin shares. A half-open breaker whose probe it was lets another
    probe go (claim.gate)."""
    if item.execution.outcome != Outcome.TIMEOUT:
        return False
    task = item.task
    return min(task.total_timeout_seconds, task.connect_timeout_seconds) < floor


def _error_text(execution) -> str:
    """Short and about the receiver only: a breaker is shown to every tenant calling its origin."""
    if execution.status_code:
        return f"HTTP {execution.status_code}"
    return f"{execution.outcome}: {execution.error}" if execution.error else execution.outcome


def _tenants_of(tasks) -> dict:
    """Tenants of failing attempts: from the tasks when loaded (workers load them), else one query."""
    found = {task.tenant_id: task.tenant for task in tasks if CallbackTask.tenant.is_cached(task)}
    missing = {task.tenant_id for task in tasks} - set(found)
    if missing:
        found.update(Tenant.objects.in_bulk(missing))
    return found


def _apply(signals: dict[str, list[Signal]], *, now: datetime) -> list[CircuitBreaker]:
    failing = sorted(origin for origin, items in signals.items() if any(s.verdict == FAILURE for s in items))
    healthy_only = {origin: len(items) for origin, items in signals.items() if origin not in failing}
    configured = conf.get("MAX_CONCURRENCY_PER_ORIGIN")
    if healthy_only:
        _healthy_answers(healthy_only, configured=configured, now=now)
    if not failing:
        return []
    # Rows in origin order, so two workers recording failures of the same origins never deadlock.
    CircuitBreaker.objects.bulk_create(
        [CircuitBreaker(origin=origin, updated_at=now) for origin in failing], ignore_conflicts=True
    )
    breakers = list(CircuitBreaker.objects.select_for_update().filter(origin__in=failing).order_by("origin"))
    opened = [
        breaker
        for breaker in breakers
        if advance(breaker, signals[breaker.origin], now=now, configured=configured)
    ]
    CircuitBreaker.objects.bulk_update(breakers, CircuitBreaker.STATE_FIELDS)
    # The breaker's history (its origin page): an opening is rare, so a row each costs nothing.
    for breaker in opened:
        audit_record(
            actor_type=ActorType.SYSTEM,
            actor="engine",
            tenant=None,
            action="breaker.opened",
            obj=breaker,
            before=None,
            after={"state": breaker.state, "open_count": breaker.open_count, **_describe(breaker)},
        )
    return opened


def _healthy_answers(answers: dict[str, int], *, configured: int, now: datetime) -> None:
    """Origins that answered healthily `answers[origin]` times: a half-open breaker closes and a
    closed one's streak ends (an open one waits for its probe); a slowed-down origin gets one more
    in flight per answer, up to the configured limit. Origins without a row (the usual case) cost
    this one statement."""
    if connection.vendor == "postgresql":
        changed = _healthy_answers_postgres(answers, configured=configured, now=now)
    else:
        changed = _healthy_answers_orm(answers, configured=configured, now=now)
    if changed:
        # Room grew (lanes never widen): the leader may grant more at once, not at its next poll.
        wakeup.notify_dispatcher()


_RECOVERING = f"(b.state = '{BreakerState.HALF_OPEN}' OR (b.state = '{BreakerState.CLOSED}' AND b.consecutive_failures > 0))"
# _healthy_answers_orm in one constant statement, the answers as two arrays: the ORM built a CASE
# per origin at every flush, 4 % of a worker's CPU at the defaults (python -m bench.profile --defaults).
_HEALTHY_SQL = f"""
UPDATE {CircuitBreaker._meta.db_table} AS b SET
    state = CASE WHEN {_RECOVERING} THEN '{BreakerState.CLOSED}' ELSE b.state END,
    consecutive_failures = CASE WHEN {_RECOVERING} THEN 0 ELSE b.consecutive_failures END,
    open_count = CASE WHEN {_RECOVERING} THEN 0 ELSE b.open_count END,
    next_probe_at = CASE WHEN {_RECOVERING} THEN NULL ELSE b.next_probe_at END,
    concurrency_limit = CASE WHEN b.concurrency_limit >= %s - a.answers THEN NULL
                             ELSE b.concurrency_limit + a.answers END,
    updated_at = %s
FROM unnest(%s::text[], %s::int[]) AS a(origin, answers)
WHERE b.origin = a.origin AND ({_RECOVERING} OR b.concurrency_limit IS NOT NULL)
"""


def _healthy_answers_postgres(answers: dict[str, int], *, configured: int, now: datetime) -> int:
    with connection.cursor() as cursor:
        cursor.execute(_HEALTHY_SQL, [configured, now, list(answers), list(answers.values())])
        return cursor.rowcount


def _healthy_answers_orm(answers: dict[str, int], *, configured: int, now: datetime) -> int:
    recovering = Q(state=BreakerState.HALF_OPEN) | Q(state=BreakerState.CLOSED, consecutive_failures__gt=0)

    def on_recovery(value, field):
        return Case(When(recovering, then=value), default=F(field), output_field=_field(field))

    return (
        CircuitBreaker.objects.filter(origin__in=list(answers))
        .filter(recovering | Q(concurrency_limit__isnull=False))
        .update(
            state=on_recovery(Value(BreakerState.CLOSED), "state"),
            consecutive_failures=on_recovery(Value(0), "consecutive_failures"),
            open_count=on_recovery(Value(0), "open_count"),
            next_probe_at=on_recovery(Value(None), "next_probe_at"),
            concurrency_limit=Case(
                *(
                    When(origin=origin, concurrency_limit__gte=configured - count, then=Value(None))
                    for origin, count in answers.items()
                ),
                *(
                    When(origin=origin, then=F("concurrency_limit") + count)
                    for origin, count in answers.items()
                ),
                default=F("concurrency_limit"),
                output_field=_field("concurrency_limit"),
            ),
            updated_at=now,
        )
    )


def _field(name: str):
    return CircuitBreaker._meta.get_field(name)


def _describe(breaker: CircuitBreaker) -> dict:
    return {
        "consecutive_failures": breaker.consecutive_failures,
        "open_count": breaker.open_count,
        "next_probe_at": breaker.next_probe_at.isoformat() if breaker.next_probe_at else None,
        "last_error": breaker.last_error,
    }


def _announce_opened(origin: str, data: dict) -> None:
    """After commit: the metric, a log line, and the tenants' breaker.opened notifications."""
    try:
        BREAKER_OPENINGS_TOTAL.inc()
        logger.warning(
            "circuit breaker of %s opened after %d consecutive failures (last: %s); next probe at %s",
            origin,
            data["consecutive_failures"],
            data["last_error"],
            data["next_probe_at"],
        )
        notify_breaker_opened(origin=origin, data=data)
    except Exception:
        logger.exception("announcing the opened breaker of %s failed", origin)
