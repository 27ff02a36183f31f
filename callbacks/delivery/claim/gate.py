"""What the circuit breakers let a claim take: nothing of an origin whose breaker is open until
its probe time, then exactly one task (the probe) while it is half-open; and no more in flight
than a slowed-down origin's concurrency_limit (it answered 429 or 503).

Workers move the breakers as they record attempts (callbacks.delivery.breaker); the leading
dispatcher only reads them here when it claims, and marks the probes it took.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from callbacks.domain.vocabulary import LEASED_STATUSES
from callbacks.models import BreakerState, CallbackTask, CircuitBreaker


@dataclass
class Gate:
    """Which origins a claim must leave alone, and which may send one probe."""

    blocked: set
    probe: set
    slowed: dict  # origin -> its concurrency_limit, for origins slowed down


def gate(*, now: datetime) -> Gate:
    """Half-open with no task of the origin claimed or running means the probe ended without a
    verdict (interrupted, cancelled, lost with its lease): another probe may go. Tasks, not lane
    slots, tell: a probe's lane ends when its response is in, before its verdict is recorded.

    The tasks are read before the breakers: a probe whose result was recorded between the two
    reads shows up as a closed or re-opened breaker, never as a finished probe of a half-open one
    that is still waiting, so a second probe cannot slip out.
    """
    not_closed = CircuitBreaker.objects.exclude(state=BreakerState.CLOSED)
    in_flight = set(
        CallbackTask.objects.filter(status__in=LEASED_STATUSES, origin__in=not_closed.values("origin"))
        .values_list("origin", flat=True)
        .distinct()
    )
    blocked, probe, slowed = set(), set(), {}
    rows = CircuitBreaker.objects.filter(
        ~Q(state=BreakerState.CLOSED) | Q(concurrency_limit__isnull=False)
    ).values_list("origin", "state", "next_probe_at", "concurrency_limit")
    for origin, state, next_probe_at, concurrency_limit in rows:
        if concurrency_limit is not None:
            slowed[origin] = concurrency_limit
        if state == BreakerState.CLOSED:
            continue
        if state == BreakerState.OPEN:
            waiting = next_probe_at is not None and next_probe_at > now
            (blocked if waiting else probe).add(origin)
        else:
            (blocked if origin in in_flight else probe).add(origin)
    return Gate(blocked=blocked, probe=probe, slowed=slowed)


def probes_started(origins, *, now: datetime) -> None:
    """The claim took one probe for each of these origins: half-open until its result is recorded."""
    if origins:
        CircuitBreaker.objects.filter(origin__in=list(origins)).exclude(state=BreakerState.CLOSED).update(
            state=BreakerState.HALF_OPEN, updated_at=now
        )
