"""Workers move the breakers of the origins their attempts went to, inside the transaction that
records the attempts, and announce the breakers that opened once it commits."""

import logging
from collections import defaultdict
from datetime import datetime
from functools import partial

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from callbacks import conf
from callbacks.delivery.breaker.machine import FAILURE, HEALTHY, Signal, advance, policy_for, verdict
from callbacks.delivery.instruments.metrics import BREAKER_OPENINGS_TOTAL
from callbacks.domain.vocabulary import Outcome
from callbacks.models import BreakerState, CallbackTask, CircuitBreaker, Tenant
from callbacks.services.notifications import notify_breaker_opened

logger = logging.getLogger(__name__)


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
    floor = conf.get("BREAKER_TIMEOUT_FLOOR_SECONDS")
    for item, judgement in judged:
        if judgement == HEALTHY:
            signals[item.task.origin].append(Signal(HEALTHY, None))
            continue
        if _own_timeout(item, floor):
            continue
        policy = policy_for(tenants.get(item.task.tenant_id))
        signals[item.task.origin].append(Signal(FAILURE, policy, _error_text(item.execution)))
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
    CircuitBreaker.objects.bulk_update(breakers, CircuitBreaker.STATE_FIELDS)
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
