"""Attempts recorded without HTTP, for breaker and limit tests.

The engine's claim and recording code runs for real against the database; only the HTTP exchange
is replaced by the result a test chooses, so breaker transitions can be driven step by step and
at chosen times. The end-to-end tests (tests/e2e/test_protection_limits.py) send for real.
"""

from datetime import timedelta

from django.utils import timezone

from callbacks.delivery import outcomes
from callbacks.delivery.claim import lanes, leases
from callbacks.delivery.results import AttemptResult
from callbacks.domain.vocabulary import LEASED_STATUSES
from callbacks.models import CallbackTask

A = "http://127.0.0.1:9001/hook"
B = "http://127.0.0.1:9002/hook"
ORIGIN_A = "http://127.0.0.1:9001"
ORIGIN_B = "http://127.0.0.1:9002"


def result(outcome="success", status_code=None, *, error="", retryable=None, retry_after=None):
    """An attempt's result without HTTP; retryable follows the outcome unless given."""
    if retryable is None:
        retryable = outcome not in ("success", "http_4xx") or status_code == 429
    if status_code is None and outcome == "success":
        status_code = 200
    return AttemptResult(
        outcome=outcome,
        status_code=status_code,
        started_at=timezone.now(),
        duration_ms=1.0,
        request_method="POST",
        request_url="http://127.0.0.1/",
        request_headers={},
        response_headers={},
        response_body="",
        response_truncated=False,
        error=error,
        retryable=retryable,
        retry_after=retry_after,
    )


FAIL = result("http_5xx", 503, error="HTTP 503")
OK = result()


def claim(*, now=None, limit=100, targets=None) -> list:
    """One claim; returns the claimed task ids with their claim token."""
    return [
        (task_id, c.token)
        for c in leases.claim_due(limit=limit, now=now or timezone.now(), targets=targets)
        for task_id in c.task_ids
    ]


def finish(claimed, respond, *, now=None) -> list:
    """Start the claimed tasks and record `respond(task)` for each, as a worker would, and narrow
    their lanes to what is still out (the worker does so as the responses come in)."""
    now = now or timezone.now()
    by_token: dict = {}
    for task_id, token in claimed:
        by_token.setdefault(token, []).append(task_id)
    done = []
    for token, ids in by_token.items():
        tasks = leases.start_claimed(token=token, task_ids=ids, now=now)
        outcomes.record([outcomes.Finished(task=t, token=token, result=respond(t)) for t in tasks], now=now)
        out = CallbackTask.objects.filter(locked_by=token, status__in=LEASED_STATUSES).count()
        lanes.refill(token=token, want=0, in_flight=out, taking=False, now=now)
        done.extend(tasks)
    return done


def deliver(respond, *, now=None, limit=100, targets=None) -> list:
    """Claim what is due at `now` and record `respond(task)` for each (respond may be a result)."""
    now = now or timezone.now()
    answer = respond if callable(respond) else (lambda task: respond)
    return finish(claim(now=now, limit=limit, targets=targets), answer, now=now)


def later(now, seconds):
    return now + timedelta(seconds=seconds)
