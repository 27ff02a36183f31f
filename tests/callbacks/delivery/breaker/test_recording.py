"""Breakers moved by recorded attempts (callbacks/delivery/breaker/recording.py): opening at the threshold,
streaks ended by answers the receiver chose, probes closing or reopening, tenants' own thresholds, and
the announcement of an opening."""

import pytest
from django.utils import timezone

from callbacks.delivery.breaker import recording
from callbacks.delivery.claim import leases
from callbacks.delivery.instruments.metrics import BREAKER_OPENINGS_TOTAL
from callbacks.models import AuditLog, BreakerState, CallbackTask, CircuitBreaker
from tests.callbacks.delivery.attempts import (
    FAIL,
    OK,
    ORIGIN_A,
    A,
    claim,
    deliver,
    finish,
    later,
    result,
)
from tests.callbacks.delivery.breaker.breakers import open_breaker, state_of
from tests.factories import make_task, make_tasks, past

pytestmark = pytest.mark.django_db


def test_opens_at_the_threshold_of_consecutive_failures(tenant):
    now = timezone.now()
    make_tasks(2, tenant=tenant, url=A, backoff_initial_seconds=100, backoff_max_seconds=100, run_at=past(1))
    deliver(FAIL, now=now)
    assert state_of(ORIGIN_A).state == BreakerState.CLOSED
    assert state_of(ORIGIN_A).consecutive_failures == 2

    make_task(tenant=tenant, url=A, run_at=past(1))
    deliver(result("timeout", error="timed out after 5.0 s waiting for the response"), now=later(now, 1))

    opened = state_of(ORIGIN_A)
    assert opened.state == BreakerState.OPEN
    assert opened.consecutive_failures == 3 and opened.open_count == 1
    assert opened.opened_at == later(now, 1)
    assert opened.next_probe_at == later(now, 31)
    assert opened.last_error == "timeout: timed out after 5.0 s waiting for the response"


def test_an_origin_that_only_succeeds_gets_no_breaker_row(tenant):
    make_tasks(3, tenant=tenant, url=A, run_at=past(1))

    deliver(OK)

    assert not CircuitBreaker.objects.exists()


def test_success_of_an_origin_without_a_breaker_costs_one_statement(tenant, django_assert_max_num_queries):
    make_task(tenant=tenant, url=A, run_at=past(1))
    ((task_id, token),) = claim()
    (started,) = leases.start_claimed(token=token, task_ids=[task_id])
    applied = [_applied(started, OK)]

    with django_assert_max_num_queries(3):  # savepoint, one UPDATE, release
        assert recording.attempts_recorded(applied) == []
    assert not CircuitBreaker.objects.exists()


def _applied(task, attempt_result):
    from callbacks.delivery.outcomes import Applied, Finished, _execution_row
    from callbacks.delivery.retry import decide

    execution = _execution_row(Finished(task=task, token="", result=attempt_result))
    return Applied(
        task=task,
        execution=execution,
        decision=decide(task, attempt_result, now=timezone.now()),
        updated=True,
    )


def test_a_response_the_receiver_chose_ends_the_streak_and_blocked_attempts_are_ignored(tenant):
    now = timezone.now()
    make_tasks(2, tenant=tenant, url=A, max_retries=10, run_at=past(1))
    deliver(FAIL, now=now)
    make_task(tenant=tenant, url=A, run_at=past(1))
    deliver(result("http_4xx", 404, error="HTTP 404"), now=now)
    assert state_of(ORIGIN_A).consecutive_failures == 0

    make_tasks(2, tenant=tenant, url=A, max_retries=10, run_at=past(1))
    deliver(FAIL, now=now)
    make_task(tenant=tenant, url=A, run_at=past(1))
    deliver(result("ssrf_blocked", error="refused: loopback"), now=now)
    assert state_of(ORIGIN_A).state == BreakerState.CLOSED
    assert state_of(ORIGIN_A).consecutive_failures == 2

    make_task(tenant=tenant, url=A, run_at=past(1))
    deliver(result("http_4xx", 429, error="HTTP 429"), now=now)  # overloaded: counts
    assert state_of(ORIGIN_A).state == BreakerState.OPEN


def test_a_successful_probe_closes_the_breaker_and_the_rest_go(tenant):
    now = timezone.now()
    open_breaker(tenant, now=now)
    make_tasks(5, tenant=tenant, url=A, run_at=past(1))
    at_probe_time = later(now, 31)

    (probe,) = claim(now=at_probe_time)
    finish([probe], lambda task: OK, now=at_probe_time)

    closed = state_of(ORIGIN_A)
    assert closed.state == BreakerState.CLOSED
    assert (closed.consecutive_failures, closed.open_count, closed.next_probe_at) == (0, 0, None)
    assert len(claim(now=later(at_probe_time, 1))) == 7  # 4 new ones left, and the 3 that failed


def test_a_failed_probe_reopens_for_longer_up_to_the_cap(tenant):
    now = timezone.now()
    open_breaker(tenant, now=now)
    make_tasks(5, tenant=tenant, url=A, run_at=past(1))
    periods = []
    at = later(now, 30)
    for _ in range(3):
        at = state_of(ORIGIN_A).next_probe_at
        (probe,) = claim(now=at)
        finish([probe], lambda task: FAIL, now=at)
        reopened = state_of(ORIGIN_A)
        assert reopened.state == BreakerState.OPEN
        periods.append((reopened.next_probe_at - at).total_seconds())
        assert claim(now=later(at, 1)) == []

    assert periods == [60.0, 100.0, 100.0]
    assert state_of(ORIGIN_A).open_count == 4
    # Each opening is in the breaker's history, by the engine; the failures that did not open it are not.
    openings = AuditLog.objects.filter(object_type="circuitbreaker", object_id=str(state_of(ORIGIN_A).pk))
    assert list(openings.values_list("action", "actor_type", flat=False).distinct()) == [
        ("breaker.opened", "system")
    ]
    assert [row.after["open_count"] for row in openings.order_by("at", "id")] == [1, 2, 3, 4]


def test_a_probe_that_ends_without_a_verdict_lets_another_probe_go(tenant):
    now = timezone.now()
    open_breaker(tenant, now=now)
    make_tasks(3, tenant=tenant, url=A, run_at=past(1))
    at = later(now, 31)

    (probe,) = claim(now=at)
    finish([probe], lambda task: result("interrupted", error="the worker vanished"), now=at)
    assert state_of(ORIGIN_A).state == BreakerState.HALF_OPEN

    again = claim(now=later(at, 1))  # nothing of A in flight: the probe ended; another goes
    assert len(again) == 1
    assert claim(now=later(at, 2)) == []


def test_a_tenant_threshold_and_open_period_decide_for_its_attempts(tenant):
    tenant.breaker_failure_threshold = 2
    tenant.breaker_open_seconds = 5.0
    tenant.save()
    now = timezone.now()
    make_tasks(2, tenant=tenant, url=A, max_retries=10, run_at=past(1))

    deliver(FAIL, now=now)

    opened = state_of(ORIGIN_A)
    assert opened.state == BreakerState.OPEN
    assert opened.next_probe_at == later(now, 5)


def test_the_tenant_whose_attempt_tips_it_decides(tenant, other_api):
    lenient = other_api.tenant
    lenient.breaker_failure_threshold = 10
    lenient.save()
    now = timezone.now()
    make_tasks(2, tenant=lenient, url=A, max_retries=10, run_at=past(1))
    deliver(FAIL, now=now)
    assert state_of(ORIGIN_A).state == BreakerState.CLOSED  # 2 < 10

    make_task(tenant=tenant, url=A, max_retries=10, run_at=past(1))
    deliver(FAIL, now=now)  # the third failure in a row, of a tenant with the default threshold 3

    assert state_of(ORIGIN_A).state == BreakerState.OPEN


def test_an_opening_notifies_tenants_and_counts(tenant, django_capture_on_commit_callbacks):
    tenant.notification_url = "http://127.0.0.2:9999/events"  # a host other than the origin
    tenant.save()
    before = BREAKER_OPENINGS_TOTAL._value.get()
    make_tasks(4, tenant=tenant, url=A, max_retries=10, run_at=past(1))

    with django_capture_on_commit_callbacks(execute=True):
        deliver(FAIL)

    assert BREAKER_OPENINGS_TOTAL._value.get() == before + 1
    notification = CallbackTask.objects.get(business_id="tc-notification:breaker.opened")
    assert f'"origin":"{ORIGIN_A}"' in notification.payload.replace(" ", "")


def test_429_and_503_slow_the_origin_down_and_healthy_answers_bring_it_back(tenant, callbacks_settings):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=8, BREAKER_FAILURE_THRESHOLD=100)
    now = timezone.now()
    waits = {"max_retries": 5, "backoff_initial_seconds": 100, "backoff_max_seconds": 100}
    make_tasks(2, tenant=tenant, url=A, run_at=past(1), **waits)
    deliver(result("http_4xx", 429, error="HTTP 429"), now=now)
    assert state_of(ORIGIN_A).concurrency_limit == 2  # 8 -> 4 -> 2

    make_task(tenant=tenant, url=A, run_at=past(1), **waits)
    deliver(result("http_5xx", 500, error="HTTP 500"), now=later(now, 1))
    assert state_of(ORIGIN_A).concurrency_limit == 2  # a 500 is a failure, not a request for less

    make_task(tenant=tenant, url=A, run_at=past(1), **waits)
    deliver(FAIL, now=later(now, 2))  # a 503
    assert state_of(ORIGIN_A).concurrency_limit == 1

    make_tasks(20, tenant=tenant, url=A, run_at=past(1))
    sent = [len(deliver(OK, now=later(now, step))) for step in range(3, 7)]
    # The claim takes what the lowered limit allows; each healthy answer allows one more, up to the
    # configured limit, where the origin is no longer slowed down.
    assert sent == [1, 2, 4, 8]
    assert state_of(ORIGIN_A).concurrency_limit is None
    assert state_of(ORIGIN_A).state == BreakerState.CLOSED


def test_timeouts_of_attempts_given_less_than_the_floor_never_move_the_shared_breaker(
    tenant, callbacks_settings
):
    """A tenant's 0.1 s timeouts to a healthy receiver are its own failures: they cannot open the
    breaker every tenant calling that origin shares."""
    callbacks_settings(BREAKER_TIMEOUT_FLOOR_SECONDS=1.0)
    make_tasks(5, tenant=tenant, url=A, total_timeout_seconds=0.1, max_retries=10, run_at=past(1))

    deliver(result("timeout", error="timed out after 0.1 s"))

    assert not CircuitBreaker.objects.exists()
    make_tasks(3, tenant=tenant, url=A, total_timeout_seconds=5, max_retries=10, run_at=past(1))
    deliver(result("timeout", error="timed out after 5.0 s"))
    assert state_of(ORIGIN_A).state == BreakerState.OPEN  # the receiver's own slowness still counts
