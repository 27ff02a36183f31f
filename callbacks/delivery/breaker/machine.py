"""The breaker's state machine, pure: what an attempt's result says about its receiver, and how
a breaker moves on it. Tests drive it directly; recording.py applies it to the rows."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from callbacks import conf
from callbacks.models import BreakerState, CircuitBreaker, Outcome, Tenant

FAILURE = "failure"
HEALTHY = "healthy"
FAILURE_OUTCOMES = frozenset({Outcome.TIMEOUT, Outcome.CONNECTION, Outcome.TLS, Outcome.HTTP_5XX})
HEALTHY_OUTCOMES = frozenset(
    {Outcome.SUCCESS, Outcome.HTTP_3XX, Outcome.HTTP_4XX, Outcome.HTTP_UNEXPECTED, Outcome.TOO_LARGE}
)
TOO_MANY_REQUESTS = 429
# Answers by which a receiver asks for less: its origin is slowed down (slow_down).
SLOW_DOWN_STATUSES = frozenset({TOO_MANY_REQUESTS, 503})
ERROR_MAX_CHARS = 500


def verdict(outcome: str, status_code: int | None) -> str | None:
    """FAILURE, HEALTHY, or None for an attempt that says nothing about the receiver."""
    if outcome in FAILURE_OUTCOMES or (outcome == Outcome.HTTP_4XX and status_code == TOO_MANY_REQUESTS):
        return FAILURE
    if outcome in HEALTHY_OUTCOMES:
        return HEALTHY
    if outcome == Outcome.GONE and status_code is not None:
        return HEALTHY  # it answered (410); a callback not sent because of it says nothing
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
    slow_down: bool = False  # the receiver asked for less (429, 503)


def slow_down(concurrency_limit: int | None, *, configured: int) -> int:
    """The origin's concurrency after a 429 or 503: half of what it had, at least one."""
    current = min(configured, concurrency_limit or configured)
    return max(1, current // 2)


def speed_up(concurrency_limit: int | None, *, configured: int) -> int | None:
    """After a healthy answer: one more, and None (no longer slowed) once back at the configured limit."""
    if concurrency_limit is None or concurrency_limit + 1 >= configured:
        return None
    return concurrency_limit + 1


def advance(breaker: CircuitBreaker, signals: list[Signal], *, now: datetime, configured: int) -> bool:
    """Apply attempts' results in order; True when the breaker opened (or re-opened). `configured`
    is the origin's concurrency limit in force, which a slowed-down origin grows back to."""
    opened = False
    for signal in signals:
        if signal.slow_down:
            breaker.concurrency_limit = slow_down(breaker.concurrency_limit, configured=configured)
        elif signal.verdict == HEALTHY and breaker.concurrency_limit is not None:
            breaker.concurrency_limit = speed_up(breaker.concurrency_limit, configured=configured)
        if signal.verdict == HEALTHY:
            if breaker.state == BreakerState.HALF_OPEN:
                breaker.close(now=now)
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
