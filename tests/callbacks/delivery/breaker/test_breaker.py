"""Circuit breakers: transitions driven by recorded attempts, claims held back, one probe, sweeps."""

from datetime import timedelta

import pytest
from django.utils import timezone

from callbacks.delivery.breaker import holding, machine, recording
from callbacks.delivery.claim import leases
from callbacks.delivery.instruments.metrics import BREAKER_OPENINGS_TOTAL
from callbacks.models import BreakerState, CallbackTask, CircuitBreaker, TaskEvent, TaskStatus
from tests.callbacks.delivery.attempts import (
    FAIL,
    OK,
    ORIGIN_A,
    ORIGIN_B,
    A,
    B,
    claim,
    deliver,
    finish,
    later,
    result,
)
from tests.factories import make_task, make_tasks, past

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_breaker(callbacks_settings):
    callbacks_settings(
        BREAKER_FAILURE_THRESHOLD=3,
        BREAKER_OPEN_SECONDS=30.0,
        BREAKER_OPEN_MAX_SECONDS=100.0,
        MAX_CONCURRENCY_PER_ORIGIN=100,
    )


def state_of(origin):
    return CircuitBreaker.objects.get(origin=origin)


def open_breaker(tenant, *, now):
    """Three failing attempts at `now`: the breaker of origin A opens."""
    make_tasks(3, tenant=tenant, url=A, max_retries=10, run_at=past(1))
    deliver(FAIL, now=now)
    assert state_of(ORIGIN_A).state == BreakerState.OPEN


@pytest.mark.parametrize(
    ("outcome", "status_code", "expected"),
    [
        ("timeout", None, machine.FAILURE),
        ("connection", None, machine.FAILURE),
        ("tls", None, machine.FAILURE),
        ("http_5xx", 503, machine.FAILURE),
        ("http_4xx", 429, machine.FAILURE),
        ("success", 200, machine.HEALTHY),
        ("http_4xx", 404, machine.HEALTHY),
        ("http_3xx", 302, machine.HEALTHY),
        ("http_unexpected", 204, machine.HEALTHY),
        ("too_large", 200, machine.HEALTHY),
        ("ssrf_blocked", None, None),
        ("whitelist_denied", None, None),
        ("interrupted", None, None),
        ("error", None, None),
    ],
)
def test_what_counts_as_a_failure(outcome, status_code, expected):
    assert machine.verdict(outcome, status_code) == expected


def test_open_period_doubles_per_opening_up_to_the_cap():
    periods = [machine.open_period(open_count=n, base=30.0) for n in (1, 2, 3, 4, 50)]

    assert periods == [30.0, 60.0, 100.0, 100.0, 100.0]


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


def test_an_open_breaker_holds_claims_back_without_using_attempts(tenant):
    now = timezone.now()
    open_breaker(tenant, now=now)
    waiting = make_tasks(4, tenant=tenant, url=A, run_at=past(1))
    other = make_task(tenant=tenant, url=B, run_at=past(1))

    claimed = claim(now=later(now, 10))

    assert [task_id for task_id, _ in claimed] == [other.id]
    assert set(
        CallbackTask.objects.filter(id__in=[t.id for t in waiting]).values_list("status", "attempts")
    ) == {(TaskStatus.SCHEDULED, 0)}


def test_the_sweep_moves_held_tasks_to_the_probe_time_and_says_so_once(tenant):
    now = timezone.now()
    open_breaker(tenant, now=now)
    probe_at = state_of(ORIGIN_A).next_probe_at
    waiting = make_tasks(2, tenant=tenant, url=A, run_at=past(1))
    elsewhere = make_task(tenant=tenant, url=B, run_at=past(1))

    held, buried = holding.sweep(now=later(now, 1))
    holding.sweep(now=later(now, 2))

    assert (held, buried) == (5, 0)  # the two new tasks and the three that failed (their retries are due)
    for task in waiting:
        task.refresh_from_db()
        assert task.next_attempt_at == probe_at and task.status == TaskStatus.SCHEDULED and task.attempts == 0
        notes = list(
            TaskEvent.objects.filter(task=task, note__startswith="held").values_list("note", flat=True)
        )
        assert notes == [
            f"held: the circuit breaker of {ORIGIN_A} is open; next probe at {probe_at.isoformat(timespec='seconds')}"
        ]
    elsewhere.refresh_from_db()
    assert elsewhere.next_attempt_at < now


def test_half_open_lets_exactly_one_probe_through(tenant):
    now = timezone.now()
    open_breaker(tenant, now=now)
    make_tasks(5, tenant=tenant, url=A, run_at=past(1))
    other = make_tasks(2, tenant=tenant, url=B, run_at=past(1))
    at_probe_time = later(now, 31)

    first = claim(now=at_probe_time)
    second = claim(now=later(at_probe_time, 1))

    first_origins = sorted(CallbackTask.objects.get(id=task_id).origin for task_id, _ in first)
    assert first_origins == [ORIGIN_A, ORIGIN_B, ORIGIN_B]
    assert second == []  # the probe is in flight: nothing else for A
    assert state_of(ORIGIN_A).state == BreakerState.HALF_OPEN
    assert {t.id for t in other} <= {task_id for task_id, _ in first}


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


def test_tasks_held_past_the_maximum_deferral_go_dead(tenant, callbacks_settings):
    callbacks_settings(BREAKER_MAX_DEFER_SECONDS=3600.0)
    now = timezone.now()
    open_breaker(tenant, now=now)
    overdue = make_task(tenant=tenant, url=A, run_at=now - timedelta(hours=2))
    recent = make_task(tenant=tenant, url=A, run_at=now - timedelta(minutes=5))
    elsewhere = make_task(tenant=tenant, url=B, run_at=now - timedelta(hours=2))

    held, buried = holding.sweep(now=later(now, 1))

    assert buried == 1
    overdue.refresh_from_db()
    assert overdue.status == TaskStatus.DEAD and overdue.attempts == 0 and overdue.finished_at is not None
    assert f"the circuit breaker of {ORIGIN_A} held it for more than 3600 s" in overdue.last_error
    assert TaskEvent.objects.filter(task=overdue, to_status=TaskStatus.DEAD).exists()
    recent.refresh_from_db()
    elsewhere.refresh_from_db()
    assert recent.status == TaskStatus.SCHEDULED and elsewhere.status == TaskStatus.SCHEDULED


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
