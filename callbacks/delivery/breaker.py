"""Circuit breakers per target origin (R14): closed -> open -> half_open -> closed.

One CircuitBreaker row per origin (scheme://host:port), shared by every process through the
database, created only when an origin first fails:

- Workers move breakers as they record attempts (`attempts_recorded`, called by
  outcomes.record inside the transaction that records the attempts), so the dispatcher never
  sees an attempt's result without the breaker state it caused: thresholds are exact and
  only one probe goes out at a time.
- The leading dispatcher reads them when it claims (`gate`, `probes_started`): an open breaker's
  origin gets no claims until its probe time, then exactly one (the probe) while half-open.
  Tasks wait without using an attempt; `sweep` moves their next_attempt_at to the probe time
  (recording the hold once per task) and buries those held past BREAKER_MAX_DEFER_SECONDS.

What counts. A failure says the receiver is down or overloaded: timeout, connection, tls,
http_5xx, and 429. A response the receiver chose to give (2xx, 3xx, other 4xx, a status the
task does not accept, a body over the limit) shows it is up: it ends a streak of failures and
a probe that gets one closes the breaker. Attempts that never reached the receiver or say
nothing about it (ssrf_blocked, whitelist_denied, interrupted, error) are ignored.

Thresholds. Each attempt carries its tenant's policy (Tenant.breaker_failure_threshold and
breaker_open_seconds, else the installation's). When tenants calling one origin disagree, the
policy of the attempt that tips the breaker decides: a failure opens it when the streak
reaches that attempt's tenant's threshold, and its open period starts from that tenant's
base. Simple, and a tenant with a low threshold protects the origin for everyone.

The open period doubles at each opening without a full recovery (open_count), from the base
up to BREAKER_OPEN_MAX_SECONDS; a successful probe closes the breaker and resets open_count.
While open, late answers of attempts sent before it opened are counted as failures but never
close it: the probe decides.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from prometheus_client import Counter

from callbacks import conf
from callbacks.domain.vocabulary import CLAIMABLE_STATUSES
from callbacks.models import (
    BreakerState,
    CallbackTask,
    CircuitBreaker,
    Outcome,
    TaskEvent,
    TaskStatus,
    Tenant,
)

logger = logging.getLogger(__name__)

# Counted in the process that records the tipping attempt; /metrics sums every process's files.
# The callbacks_breakers gauge (monitoring.collectors) reads the current states at scrape time.
BREAKER_OPENINGS_TOTAL = Counter(
    "callbacks_breaker_openings_total",
    "Times a circuit breaker opened (re-openings after a failed probe too).",
)

FAILURE = "failure"
HEALTHY = "healthy"
FAILURE_OUTCOMES = frozenset({Outcome.TIMEOUT, Outcome.CONNECTION, Outcome.TLS, Outcome.HTTP_5XX})
HEALTHY_OUTCOMES = frozenset(
    {Outcome.SUCCESS, Outcome.HTTP_3XX, Outcome.HTTP_4XX, Outcome.HTTP_UNEXPECTED, Outcome.TOO_LARGE}
)
TOO_MANY_REQUESTS = 429
# Tasks moved or buried per origin and sweep: bounds one sweep's transaction; the next sweep
# (about a second later) goes on.
SWEEP_BATCH = 2000
ERROR_MAX_CHARS = 500


def verdict(outcome: str, status_code: int | None) -> str | None:
    """FAILURE, HEALTHY, or None for an attempt that says nothing about the receiver."""
    if outcome in FAILURE_OUTCOMES or (outcome == Outcome.HTTP_4XX and status_code == TOO_MANY_REQUESTS):
        return FAILURE
    if outcome in HEALTHY_OUTCOMES:
        return HEALTHY
    return None


@dataclass(frozen=True)
class Policy:
    threshold: int
    open_seconds: float  # the first open period; doubled at each re-opening


def policy_for(tenant: Tenant | None) -> Policy:
    """The tenant's thresholds, else the installation's (an empty or zero field means unset)."""
    threshold = getattr(tenant, "breaker_failure_threshold", None) or conf.get("BREAKER_FAILURE_THRESHOLD")
    open_seconds = getattr(tenant, "breaker_open_seconds", None) or conf.get("BREAKER_OPEN_SECONDS")
    return Policy(threshold=max(1, int(threshold)), open_seconds=float(open_seconds))


@dataclass(frozen=True)
class Signal:
    """What one attempt tells the breaker of its origin."""

    verdict: str
    policy: Policy | None  # for failures only
    error: str = ""


# --- the state machine (pure: tests drive it directly) -------------------------------------
def advance(breaker: CircuitBreaker, signals: list[Signal], *, now: datetime) -> bool:
    """Apply attempts' results in order; True when the breaker opened (or re-opened)."""
    opened = False
    for signal in signals:
        if signal.verdict == HEALTHY:
            if breaker.state == BreakerState.HALF_OPEN:
                close(breaker, now=now)
            elif breaker.state == BreakerState.CLOSED and breaker.consecutive_failures:
                breaker.consecutive_failures = 0
                breaker.updated_at = now
            continue
        breaker.consecutive_failures += 1
        breaker.last_error = signal.error[:ERROR_MAX_CHARS]
        breaker.updated_at = now
        tipped = (
            breaker.state == BreakerState.CLOSED and breaker.consecutive_failures >= signal.policy.threshold
        )
        if tipped or breaker.state == BreakerState.HALF_OPEN:
            open_(breaker, policy=signal.policy, now=now)
            opened = True
    return opened


def open_period(*, open_count: int, base: float) -> float:
    """Seconds open at the open_count-th opening in a row: base, 2 base, 4 base ... up to the cap."""
    cap = conf.get("BREAKER_OPEN_MAX_SECONDS")
    return min(cap, base * 2 ** min(open_count - 1, 32))


def open_(breaker: CircuitBreaker, *, policy: Policy, now: datetime) -> None:
    breaker.open_count += 1
    breaker.state = BreakerState.OPEN
    breaker.opened_at = now
    breaker.next_probe_at = now + timedelta(
        seconds=open_period(open_count=breaker.open_count, base=policy.open_seconds)
    )
    breaker.updated_at = now


def close(breaker: CircuitBreaker, *, now: datetime) -> None:
    """Closed and forgiven; opened_at stays as the time it last opened."""
    breaker.state = BreakerState.CLOSED
    breaker.consecutive_failures = 0
    breaker.open_count = 0
    breaker.next_probe_at = None
    breaker.updated_at = now


# --- workers: recording attempts -----------------------------------------------------------
_SAVED_FIELDS = (
    "state",
    "consecutive_failures",
    "open_count",
    "opened_at",
    "next_probe_at",
    "last_error",
    "updated_at",
)


def attempts_recorded(applied, *, now: datetime | None = None) -> list[str]:
    """Move the breakers of the origins these attempts went to; returns the origins that opened.

    `applied` are outcomes.Applied items (task, execution). Costs nothing for origins that only
    succeed and have no breaker row, one UPDATE for those that have one, and an upsert plus one
    locked read and one write for origins that failed. Runs in a savepoint and never raises:
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
    for item, judgement in judged:
        if judgement == HEALTHY:
            signals[item.task.origin].append(Signal(HEALTHY, None))
            continue
        policy = policy_for(tenants.get(item.task.tenant_id))
        signals[item.task.origin].append(Signal(FAILURE, policy, _error_text(item.execution)))
    return signals


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
    healthy_only = [origin for origin in signals if origin not in failing]
    if healthy_only:
        # Healthy answers close a half-open breaker and end a closed one's streak; an open one
        # waits for its probe. Origins without a row (the usual case) cost this one statement.
        CircuitBreaker.objects.filter(origin__in=healthy_only).filter(
            Q(state=BreakerState.HALF_OPEN) | Q(state=BreakerState.CLOSED, consecutive_failures__gt=0)
        ).update(
            state=BreakerState.CLOSED,
            consecutive_failures=0,
            open_count=0,
            next_probe_at=None,
            updated_at=now,
        )
    if not failing:
        return []
    # Rows in origin order, so two workers recording failures of the same origins never deadlock.
    CircuitBreaker.objects.bulk_create(
        [CircuitBreaker(origin=origin, updated_at=now) for origin in failing], ignore_conflicts=True
    )
    breakers = list(CircuitBreaker.objects.select_for_update().filter(origin__in=failing).order_by("origin"))
    opened = [breaker for breaker in breakers if advance(breaker, signals[breaker.origin], now=now)]
    CircuitBreaker.objects.bulk_update(breakers, _SAVED_FIELDS)
    return opened


def _describe(breaker: CircuitBreaker) -> dict:
    return {
        "consecutive_failures": breaker.consecutive_failures,
        "open_count": breaker.open_count,
        "next_probe_at": breaker.next_probe_at.isoformat() if breaker.next_probe_at else None,
        "last_error": breaker.last_error,
    }


def _announce_opened(origin: str, data: dict) -> None:
    """After commit: the metric, a log line, and the tenants' breaker.opened notifications."""
    from monitoring.notifications import notify_breaker_opened  # notifications import the task services

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


# --- the dispatcher: claiming --------------------------------------------------------------
@dataclass
class Gate:
    """Which origins a claim must leave alone, and which may send one probe."""

    blocked: set
    probe: set


def gate(*, now: datetime, in_flight: dict) -> Gate:
    """Read after the in-flight counts (see limits): a probe whose result was recorded between the
    two reads shows up as a closed or re-opened breaker, never as a finished probe of a
    half-open one that is still waiting, so a second probe cannot slip out.

    Half-open with nothing of the origin in flight means the probe ended without a verdict
    (interrupted, cancelled, lost with its lease): another probe may go.
    """
    blocked, probe = set(), set()
    rows = CircuitBreaker.objects.exclude(state=BreakerState.CLOSED).values_list(
        "origin", "state", "next_probe_at"
    )
    for origin, state, next_probe_at in rows:
        if state == BreakerState.OPEN:
            waiting = next_probe_at is not None and next_probe_at > now
            (blocked if waiting else probe).add(origin)
        else:
            (blocked if in_flight.get(origin) else probe).add(origin)
    return Gate(blocked=blocked, probe=probe)


def probes_started(origins, *, now: datetime) -> None:
    """The claim took one probe for each of these origins: half-open until its result is recorded."""
    if origins:
        CircuitBreaker.objects.filter(origin__in=list(origins)).exclude(state=BreakerState.CLOSED).update(
            state=BreakerState.HALF_OPEN, updated_at=now
        )


# --- the dispatcher: holding and burying ---------------------------------------------------
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
    from monitoring import recording  # metrics and dead-letter notifications, as for any dead task

    for task in tasks:
        recording.task_finished(task, TaskStatus.DEAD)
