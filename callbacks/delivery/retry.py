"""What happens after an attempt: done, failed, retried later, or dead.

The wait between attempts is computed here and persisted by the caller as next_attempt_at,
so a retry survives a restart; urllib3's own retries (http/connect_retry.py) only cover the connection
phase inside one attempt.
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from callbacks import conf
from callbacks.models import Outcome, TaskStatus


def backoff_seconds(
    *, retry_number: int, initial: float, multiplier: float, maximum: float, jitter: float, rand=random.random
) -> float:
    """The wait before retry number `retry_number` (1 for the first retry).

    initial, initial*multiplier, initial*multiplier**2, ... capped at maximum; then moved by up
    to +/- jitter (a fraction) at random so that tasks failing together do not retry together.
    """
    exponent = max(retry_number - 1, 0)
    try:
        base = min(initial * multiplier**exponent, maximum)
    except OverflowError:
        base = maximum
    spread = base * jitter * (2 * rand() - 1)
    return max(base + spread, 0.0)


@dataclass
class Decision:
    status: str  # TaskStatus value: succeeded | retrying | failed | dead
    next_attempt_at: datetime | None


def decide(task, result, *, now: datetime) -> Decision:
    """The task's next state after `result`; task.attempts already counts this attempt."""
    if result.outcome == Outcome.SUCCESS:
        return Decision(TaskStatus.SUCCEEDED, None)
    if not result.retryable:
        return Decision(TaskStatus.FAILED, None)
    if task.attempts >= 1 + task.max_retries:
        return Decision(TaskStatus.DEAD, None)
    return Decision(TaskStatus.RETRYING, now + timedelta(seconds=retry_delay(task, result)))


def retry_delay(task, result) -> float:
    """Our backoff, or the receiver's Retry-After when it asks for longer (within a bound)."""
    delay = backoff_seconds(
        retry_number=task.attempts,
        initial=task.backoff_initial_seconds,
        multiplier=task.backoff_multiplier,
        maximum=task.backoff_max_seconds,
        jitter=conf.get("BACKOFF_JITTER"),
    )
    if result.retry_after is not None:
        delay = max(delay, min(result.retry_after, conf.get("RETRY_AFTER_MAX")))
    return delay
