"""Helpers for the breaker tests: a breaker's row, and origin A's breaker opened by three failures."""

from callbacks.models import BreakerState, CircuitBreaker
from tests.callbacks.delivery.attempts import (
    FAIL,
    ORIGIN_A,
    A,
    deliver,
)
from tests.factories import make_tasks, past


def state_of(origin):
    return CircuitBreaker.objects.get(origin=origin)


def open_breaker(tenant, *, now):
    """Three failing attempts at `now`: the breaker of origin A opens."""
    make_tasks(3, tenant=tenant, url=A, max_retries=10, run_at=past(1))
    deliver(FAIL, now=now)
    assert state_of(ORIGIN_A).state == BreakerState.OPEN
