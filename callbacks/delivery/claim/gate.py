"""What the circuit breakers let a claim take: nothing of an origin whose breaker is open until
its probe time, then exactly one task (the probe) while it is half-open.

Workers move the breakers as they record attempts (callbacks.delivery.breaker); the leading
dispatcher only reads them here when it claims, and marks the probes it took.
"""

from dataclasses import dataclass
from datetime import datetime

from callbacks.models import BreakerState, CircuitBreaker


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
